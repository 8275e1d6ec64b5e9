#!/usr/bin/env bash
# Blue/green release of the Compose stack (deploy/compose.yml), the same four
# steps as tools/promote.sh does natively:
#   1. start the next colour's containers and wait until they are healthy
#   2. smoke-check them from inside the network (/readyz, /version)
#   3. flip: `docker exec nginx_proxy promote.sh <colour>` (write + rename, nginx -t, reload)
#   4. stop the old colour (SIGTERM, stop_grace_period above the drain)
#
#   tools/compose-promote.sh [blue|green]    default: the colour that is not live
#
# Not run on this project's machines, which have no container engine (README).
set -euo pipefail
# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

compose() {
  docker compose -f "$REPO_ROOT/deploy/compose.yml" --profile green "$@"
}

live_colour() {
  # shellcheck disable=SC2016 # $active_colour is Nginx's variable
  docker exec nginx_proxy sed -n 's/^set \$active_colour \([a-z]*\);$/\1/p' /etc/nginx/active-colour.conf
}

smoke() {
  local colour=$1 body
  for path in readyz version; do
    body=$(docker exec nginx_proxy wget -qO- "http://app_$colour:8000/$path") || return 1
    log "  app_$colour /$path: $body"
  done
  [[ $body == "{\"version\":\"$colour\"}" ]]
}

# served_by COLOUR: Nginx's public side answers COLOUR at /version within 10 s
# (asked from inside its container: the host may have no HTTP client).
served_by() {
  local attempt
  for ((attempt = 0; attempt < 50; attempt++)); do
    [[ $(docker exec nginx_proxy wget -qO- http://127.0.0.1:8000/version 2>/dev/null) == "{\"version\":\"$1\"}" ]] && return 0
    sleep 0.2
  done
  return 1
}

main() {
  local live target started
  live=$(live_colour) || die "the Compose stack is not up (make docker-up)"
  target=${1:-$([[ $live == blue ]] && echo green || echo blue)}
  [[ $target == blue || $target == green ]] || die "colour must be blue or green"
  [[ $target != "$live" ]] || die "$target is already live"
  started=$(now_ms)

  log "step 1/4 start app_$target"
  compose up -d --wait "app_$target" || { compose stop "app_$target"; die "app_$target did not become healthy"; }
  log "step 2/4 smoke-check app_$target"
  smoke "$target" || { compose stop "app_$target"; die "smoke check of app_$target failed; $live is still live"; }
  log "step 3/4 flip nginx to $target"
  docker exec nginx_proxy promote.sh "$target"
  served_by "$target" || {
    docker exec nginx_proxy promote.sh "$live"
    compose stop "app_$target"
    die "nginx did not serve $target; flipped back to $live"
  }
  log "step 4/4 retire app_$live"
  compose stop "app_$live"
  log "promotion to $target complete in $(($(now_ms) - started)) ms"
}

main "$@"
