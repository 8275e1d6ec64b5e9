#!/usr/bin/env bash
# Stops what tools/dev-up.sh and tools/promote.sh started, and nothing else:
# replicas first (they drain against a live Redis and Nginx), then Prometheus,
# Nginx and Redis.
set -euo pipefail
# shellcheck source=tools/stack/stack-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack/stack-lib.sh"

take_lock
shopt -s nullglob
status=0
replicas=()
for pidfile in "$PID_DIR"/replica-*.pid; do
  replicas+=("$(basename "$pidfile" .pid)")
done
# Each stop is attempted whatever the one before did; the exit status says if any failed.
if ((${#replicas[@]} > 0)); then stop_processes 10 "${replicas[@]}" || status=1; fi
for name in prometheus alertmanager nginx redis; do
  stop_process "$name" 10 || status=1
done
rm -f "$STACK_ENV"
log "stack stopped"
exit "$status"
