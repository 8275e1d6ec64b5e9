#!/usr/bin/env bash
# CI's stack check: bring the native stack up in a run folder of its own, watch it
# with tools/monitor.sh for 20 s, keep every log under reports/ci-stack/, and take
# the stack down again whatever happened.
set -euo pipefail
tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Always a folder of its own: never a RUN_DIR the caller may have exported.
export RUN_DIR=$tools_dir/../.run/ci
# Ports of its own, so that it runs beside a developer's stack on the defaults.
export STACK_PORT=18000 NGINX_STATUS_PORT=18099 REDIS_PORT=16380 PROMETHEUS_PORT=19090 ALERTMANAGER_PORT=19095 \
  BLUE_PORT_BASE=18100 GREEN_PORT_BASE=18200
# shellcheck source=tools/stack/lib.sh
source "$tools_dir/stack/lib.sh"

readonly ARTIFACTS=$REPO_ROOT/reports/ci-stack

finish() {
  local status=$?
  "$tools_dir/dev-down.sh" || status=1
  mkdir -p "$ARTIFACTS"
  cp -r "$LOG_DIR/." "$ARTIFACTS/" 2>/dev/null || true
  log "logs kept in $ARTIFACTS"
  exit "$status"
}
trap finish EXIT

# Whatever an earlier run left is stopped through its pidfiles before its folder goes.
"$tools_dir/dev-down.sh" >/dev/null 2>&1 || true
rm -rf "$RUN_DIR"
"$tools_dir/dev-up.sh"
"$tools_dir/monitor.sh" --duration 20 | tee "$REPO_ROOT/reports/monitor.txt"
grep -q 'top counters over [1-9]' "$REPO_ROOT/reports/monitor.txt" || die "monitor read no replica's counters"
