#!/usr/bin/env bash
# Stops what tools/dev-up.sh started (and nothing else): replicas first, so they
# can drain against a live Redis, then Redis.
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

shopt -s nullglob
for pidfile in "$PID_DIR"/replica-*.pid; do
  stop_process "$(basename "$pidfile" .pid)" 10
done
stop_process redis 10
log "dev stack stopped"
