#!/usr/bin/env bash
# make docker-down: removes the Compose stack whole (both colours, Nginx, Redis and
# its volume, the network), then what the podman path ran beside it. Leaves no
# container, network or volume of the project; says so, or names what is left.
set -euo pipefail
# shellcheck source=tools/compose/compose-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/compose-lib.sh"

leftovers() {
  local label=label=com.docker.compose.project=$COMPOSE_PROJECT
  engine ps -aq --filter "$label"
  engine network ls -q --filter "$label"
  engine volume ls -q --filter "$label"
}

main() {
  engine_detect
  if [[ $ENGINE == podman ]] && ! engine_reachable; then
    # The API is needed for docker-compose to see the stack: start it for the down.
    engine_start >/dev/null
  fi
  compose down --volumes --remove-orphans --timeout 15
  rm -f "$PROMOTION_FILE"
  local left
  left=$(leftovers)
  engine_stop
  [[ -z $left ]] || die "still there after down: $(echo "$left" | tr '\n' ' ')"
  log "Compose stack removed: no container, network or volume of $COMPOSE_PROJECT is left"
}

main "$@"
