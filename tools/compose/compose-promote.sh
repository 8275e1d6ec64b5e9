#!/usr/bin/env bash
# Blue/green release of the Compose stack (deploy/compose.yml), with Docker or podman
# (tools/compose/compose-lib.sh), the same four steps as tools/promote.sh does natively:
#   1. build the image, start the next colour's containers, wait until all are healthy
#   2. smoke-check each of them from inside (tools/compose/compose-smoke.cjs: /readyz,
#      /version, a count on /ws/chat/)
#   3. flip: `exec nginx_proxy promote.sh <colour>` (write + rename, nginx -t, reload),
#      then the public side must answer the new colour
#   4. retire the old colour: stop (SIGTERM; each replica drains: bye + 1001 to every
#      client, which reconnects through Nginx to the new colour), every container
#      exited 0 within stop_grace_period
# A failure before the flip removes the new colour's containers and leaves the live
# one as it was; a failure of the flip's check flips back. A promotion killed halfway
# is resumed by running this again (the target is kept in .run/compose/promotion).
#
#   tools/compose/compose-promote.sh [--no-build] [blue|green]   default: the colour that is not live
#   --no-build releases ${WSCHAT_IMAGE}:${WSCHAT_TAG} as it is (an image built elsewhere).
set -euo pipefail
# shellcheck source=tools/compose/compose-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/compose-lib.sh"

# abandon TARGET LIVE WHY: removes TARGET's containers, dies saying LIVE is still live.
abandon() {
  compose rm --stop --force "app_$1" >/dev/null 2>&1 || true
  rm -f "$PROMOTION_FILE"
  die "$3; app_$1 removed, $2 is still live"
}

smoke() {
  local colour=$1 id
  for id in $(containers "app_$colour"); do
    log "  smoke app_$colour ${id:0:12}"
    engine exec "$id" node -e "$(cat "$REPO_ROOT/tools/compose/compose-smoke.cjs")" "$colour" | sed 's/^/    /' >&2 ||
      return 1
  done
}

# retire COLOUR: stops COLOUR's containers; true when every one exited 0 (drained).
retire() {
  local colour=$1 ids id code status=0
  mapfile -t ids < <(containers "app_$colour")
  ((${#ids[@]} > 0)) || { log "  app_$colour has no running container"; return 0; }
  compose stop "app_$colour" >/dev/null 2>&1
  for id in "${ids[@]}"; do
    code=$(engine inspect --format '{{.State.ExitCode}}' "$id")
    log "  app_$colour ${id:0:12} stopped, exit code $code"
    [[ $code == 0 ]] || status=1
  done
  return $status
}

main() {
  local build=1 live target started
  if [[ ${1:-} == --no-build ]]; then build=0; shift; fi
  engine_detect
  if [[ $ENGINE == docker ]]; then
    engine_reachable || die "the Docker engine does not answer (docker info)"
  else
    engine_reachable || engine_start
  fi
  live=$(live_colour) || die "the Compose stack is not up: no running nginx_proxy container (make docker-up)"
  mkdir -p "$COMPOSE_RUN_DIR"
  exec 9>"$COMPOSE_RUN_DIR/promote.lock"
  flock -n 9 || die "a promotion is running (lock $COMPOSE_RUN_DIR/promote.lock)"
  target=${1:-$(cat "$PROMOTION_FILE" 2>/dev/null || true)}
  target=${target:-$([[ $live == blue ]] && echo green || echo blue)}
  [[ $target == blue || $target == green ]] || die "colour must be blue or green (got $target)"
  started=$(now_ms)

  if [[ $target == "$live" ]]; then
    # Only a promotion killed after its flip leaves this: finish its retire step.
    [[ -f $PROMOTION_FILE ]] || die "$target is already live"
    live=$([[ $target == blue ]] && echo green || echo blue)
    log "resuming the promotion to $target after its flip"
  else
    echo "$target" >"$PROMOTION_FILE"
    step "1/4 build the image and start app_$target"
    if ((build == 1)); then base_images; build_image || abandon "$target" "$live" "the image did not build"; fi
    compose up -d --no-build "app_$target" >&2 || abandon "$target" "$live" "compose up app_$target failed"
    wait_healthy "app_$target" 2 || abandon "$target" "$live" "the health check of app_$target did not pass"
    step_done

    step "2/4 smoke-check app_$target"
    smoke "$target" || abandon "$target" "$live" "the smoke check of app_$target failed"
    step_done

    step "3/4 flip nginx to $target"
    engine exec nginx_proxy sh /etc/nginx/wschat/promote.sh "$target" >&2 ||
      abandon "$target" "$live" "the flip failed"
    if ! served_by "$target"; then
      engine exec nginx_proxy sh /etc/nginx/wschat/promote.sh "$live" >&2 || true
      abandon "$target" "$live" "nginx did not serve $target after the flip; flipped back"
    fi
    step_done
  fi

  step "4/4 retire app_$live"
  retire "$live" || die "app_$live did not drain cleanly (a non-zero exit code above); $target is live"
  rm -f "$PROMOTION_FILE"
  step_done
  log "promotion to $target complete in $(($(now_ms) - started)) ms"
}

main "$@"
