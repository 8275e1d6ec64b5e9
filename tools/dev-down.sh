#!/usr/bin/env bash
# Stops what tools/dev-up.sh and tools/promote.sh started, and nothing else:
# replicas first (they drain against a live Redis and Nginx), then Prometheus,
# Nginx and Redis.
set -euo pipefail
# shellcheck source=tools/stack-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack-lib.sh"

shopt -s nullglob
replicas=()
for pidfile in "$PID_DIR"/replica-*.pid; do
  replicas+=("$(basename "$pidfile" .pid)")
done
((${#replicas[@]} == 0)) || stop_processes 10 "${replicas[@]}" || true
stop_process prometheus 10
stop_process nginx 10
stop_process redis 10
rm -f "$STACK_ENV"
log "stack stopped"
