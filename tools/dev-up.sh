#!/usr/bin/env bash
# Brings up the whole stack as native processes: Redis (redis/redis.conf), Nginx
# (nginx/, on STACK_ADDRESS:STACK_PORT) and the live colour with REPLICAS replicas: blue
# on a first start, else the colour last made live (promote.sh), which the run folder
# keeps in nginx/conf/active-colour.conf across dev-down. Idempotent: what already runs
# is left alone. Stop it with tools/dev-down.sh (make dev-down).
#
#   STACK_PORT=8000 REPLICAS=2 HEARTBEAT_INTERVAL_MS=30000 tools/dev-up.sh
#
# Settings are saved in $RUN_DIR/stack.env on first start; later runs, promote.sh
# and status.sh read them from there.
set -euo pipefail
# shellcheck source=tools/stack/stack-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack/stack-lib.sh"

start_redis() {
  if pid_alive redis; then
    log "redis already running (pid $(pid_of redis))"
    return
  fi
  mkdir -p "$RUN_DIR/redis"
  require_free_port "$REDIS_PORT" redis
  start_process redis redis-server "$REPO_ROOT/redis/redis.conf" --port "$REDIS_PORT" --dir "$RUN_DIR/redis"
  wait_for_redis "$REDIS_PORT" 5 || die "redis did not answer on port $REDIS_PORT (see $LOG_DIR/redis.log)"
}

start_live_colour() {
  local colour=$1
  if ! colour_running "$colour" && release_stale "$colour"; then
    log "building the $colour release"
    build_release "$colour"
  fi
  start_colour "$colour" 10 || die "the $colour colour is not ready (see $LOG_DIR/replica-$colour-*.log)"
}

# preflight COLOUR: every port the stack is about to take must be free, checked
# before anything starts (a process of ours already running keeps its port).
# Prometheus is optional: a taken port only skips it, with a warning.
preflight() {
  local i
  pid_alive redis || require_free_port "$REDIS_PORT" redis
  if ! pid_alive nginx; then
    require_free_port "$STACK_PORT" "nginx, public side"
    require_free_port "$NGINX_STATUS_PORT" "nginx, internal side"
  fi
  for ((i = 1; i <= REPLICAS; i++)); do
    pid_alive "replica-$1-$i" || require_free_port "$(replica_port "$1" "$i")" "replica-$1-$i"
  done
}

# public_note: what the public side's address means, for the summary.
public_note() {
  case $STACK_ADDRESS in
    127.*) echo " (this machine only; STACK_ADDRESS=0.0.0.0 on the first dev-up publishes it)" ;;
    0.0.0.0) echo " (every interface: reachable from other machines)" ;;
    *) echo "" ;;
  esac
}

main() {
  local started colour
  started=$(now_ms)
  load_stack_settings
  check_stack_address
  take_lock
  save_stack_settings
  render_nginx
  colour=$(live_colour)
  preflight "$colour"
  start_redis
  start_live_colour "$colour"
  nginx_start
  wait_for_http "$(stack_url)/readyz" 200 10 || die "the stack is not ready through nginx"
  render_prometheus
  render_alertmanager
  alertmanager_start
  prometheus_start
  log "stack ready through nginx in $(($(now_ms) - started)) ms"
  cat <<INFO

  live colour      $colour ($REPLICAS replicas; kept in $ACTIVE_COLOUR_FILE, so the next dev-up starts it again; make promote goes to $(other_colour "$colour"))
  the page         $(stack_url)/  (open it in a browser, then make promote)
  plain WebSocket  $(stack_url | sed 's|^http|ws|')/ws/chat/
  socket.io        $(stack_url)  (path /socket.io/)
  public side      listening on $STACK_ADDRESS:$STACK_PORT$(public_note)
  probes           $(stack_url)/healthz  /readyz  /version
  internal         http://127.0.0.1:$NGINX_STATUS_PORT/nginx_status  /active-colour  /metrics; replica metrics on 127.0.0.1:$(replica_port "$colour" 1)/metrics ...
  prometheus       http://127.0.0.1:$PROMETHEUS_PORT  (when installed; alerts at /alerts)
  alertmanager     http://127.0.0.1:$ALERTMANAGER_PORT  (when installed; posts to ${ALERT_WEBHOOK_URL:-no webhook: set ALERT_WEBHOOK_URL})
  logs             $LOG_DIR/  (every process; nginx-access.log is JSON with request_id and colour)
  pids             $PID_DIR/
  next             make status | make promote | make dev-down

INFO
}

main "$@"
