#!/usr/bin/env bash
# One line per process of the native stack: state, colour, readiness, connections.
set -euo pipefail
# shellcheck source=tools/stack/stack-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack/stack-lib.sh"

load_stack_settings
[[ -f $STACK_ENV ]] || {
  echo "the stack is not up (make dev-up)"
  exit 1
}

state_of() {
  if pid_alive "$1"; then echo "up pid $(pid_of "$1")"; else echo down; fi
}

live=$(live_colour || echo none)
printf '%-16s %-16s %-7s %-6s %-10s %s\n' PROCESS STATE COLOUR LIVE READY CONNECTIONS
printf '%-16s %-16s %-7s %-6s %-10s %s\n' redis "$(state_of redis)" - - \
  "$( [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && echo ready || echo no)" -
printf '%-16s %-16s %-7s %-6s %-10s %s\n' nginx "$(state_of nginx)" "$live" - \
  "$(http_status "$(stack_url)/readyz")" \
  "$(http_body "http://127.0.0.1:$NGINX_STATUS_PORT/nginx_status" | sed -n 's/^Active connections: *//p')"
if [[ -f $PID_DIR/prometheus.pid ]]; then
  printf '%-16s %-16s %-7s %-6s %-10s %s\n' prometheus "$(state_of prometheus)" - - \
    "$(http_status "http://127.0.0.1:$PROMETHEUS_PORT/-/ready")" -
fi
if [[ -f $PID_DIR/alertmanager.pid ]]; then
  printf '%-16s %-16s %-7s %-6s %-10s %s\n' alertmanager "$(state_of alertmanager)" - - \
    "$(http_status "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready")" -
fi
for colour in "${COLOURS[@]}"; do
  for ((i = 1; i <= REPLICAS; i++)); do
    name=replica-$colour-$i
    [[ -f $PID_DIR/$name.pid ]] || continue
    url=http://127.0.0.1:$(replica_port "$colour" "$i")
    printf '%-16s %-16s %-7s %-6s %-10s %s\n' "$name" "$(state_of "$name")" "$colour" \
      "$( [[ $colour == "$live" ]] && echo yes || echo no)" \
      "$(http_status "$url/readyz")" "$(metric_sum "$url/metrics" wschat_connections_active)"
  done
done
