#!/usr/bin/env bash
# Starts the development stack as native processes: Redis (redis/redis.conf, its
# own port and data dir) and one replica of the socket tier. Idempotent: what is
# already running is left alone. Stop it with tools/dev-down.sh (make dev-down).
#
#   PORT=8000 REDIS_PORT=6380 APP_VERSION=blue tools/dev-up.sh
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=${PORT:-8000}
REDIS_PORT=${REDIS_PORT:-6380}
APP_VERSION=${APP_VERSION:-blue}
REPLICA=replica-$APP_VERSION-1

start_redis() {
  if pid_alive redis; then
    log "redis already running (pid $(<"$PID_DIR/redis.pid"))"
    return
  fi
  mkdir -p "$RUN_DIR/redis"
  start_process redis redis-server "$REPO_ROOT/redis/redis.conf" \
    --port "$REDIS_PORT" --dir "$RUN_DIR/redis"
  wait_for_redis "$REDIS_PORT" 5 || die "redis did not answer on port $REDIS_PORT (see $LOG_DIR/redis.log)"
  log "redis ready on 127.0.0.1:$REDIS_PORT"
}

start_replica() {
  if pid_alive "$REPLICA"; then
    log "$REPLICA already running (pid $(<"$PID_DIR/$REPLICA.pid"))"
    return
  fi
  local started
  started=$(now_ms)
  (
    export PORT APP_VERSION REDIS_URL=redis://127.0.0.1:$REDIS_PORT REPLICA_ID=$REPLICA
    # A bad variable fails here, with the replica's own one-line message, before anything starts.
    node "$REPO_ROOT/dist/services/gateway/main.js" --check-config >/dev/null
    start_process "$REPLICA" node "$REPO_ROOT/dist/services/gateway/main.js"
  )
  wait_for_http "http://127.0.0.1:$PORT/readyz" 200 10 ||
    die "$REPLICA not ready after 10s (see $LOG_DIR/$REPLICA.log)"
  log "$REPLICA ready in $(($(now_ms) - started)) ms (config check, start, Redis connect)"
}

start_redis
start_replica
cat <<INFO

  plain WebSocket  ws://127.0.0.1:$PORT/ws/chat/
  socket.io        http://127.0.0.1:$PORT  (path /socket.io/)
  probes           http://127.0.0.1:$PORT/healthz  /readyz  /version  /metrics
  logs             $LOG_DIR/
  pids             $PID_DIR/
  stop             make dev-down

INFO
