#!/usr/bin/env bash
# Blue/green release of the Compose stack (deploy/compose.yml), with Docker or podman
# (tools/compose/compose-lib.sh), the same four steps as tools/promote.sh does natively:
#   1. the release's image (built only when its tag has none), start the next colour's
#      containers on it, wait until all are healthy
#   2. smoke-check each of them from inside (tools/compose/compose-smoke.cjs: /readyz,
#      /version, a count on /ws/chat/)
#   3. flip: `exec nginx_proxy promote.sh <colour>` (refused unless every replica of
#      the colour answers /readyz; write + rename, nginx -t, reload), then the public
#      side must answer the new colour; the colour's release is recorded
#   4. retire the old colour: stop (SIGTERM; each replica drains: bye + 1001 to every
#      client, which reconnects through Nginx to the new colour), every container
#      exited 0 within stop_grace_period
# A failure before the flip removes the new colour's containers and leaves the live
# one as it was; a failure of the flip's check flips back. A promotion killed halfway
# is resumed by running this again (the target is kept in .run/compose/promotion).
# After a promotion, release images beyond the newest COMPOSE_KEEP_RELEASES (3) are
# removed, never one a colour runs.
#
#   tools/compose/compose-promote.sh [--no-build] [blue|green]   default: the colour that is not live
#   tools/compose/compose-promote.sh --rollback                  make docker-rollback
# The release is the working tree's (compose-lib.sh, release_tag), or WSCHAT_TAG.
# --no-build never builds: the release's image must exist (built elsewhere).
# --rollback puts the release the other colour ran back live, never building, through
# the same health check, smoke check and flip.
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
  ids=$(containers "app_$colour")
  [[ -n $ids ]] || { log "  app_$colour has no running container"; return 0; }
  compose stop "app_$colour" >/dev/null 2>&1
  for id in $ids; do
    code=$(engine inspect --format '{{.State.ExitCode}}' "$id")
    log "  app_$colour ${id:0:12} stopped, exit code $code"
    [[ $code == 0 ]] || status=1
  done
  return $status
}

# lock: one promotion at a time, a directory holding the owner's pid (mkdir is atomic
# everywhere); a lock whose owner is gone (a promotion killed halfway) is taken over.
lock() {
  local dir=$COMPOSE_RUN_DIR/promote.lock owner
  mkdir -p "$COMPOSE_RUN_DIR"
  if ! mkdir "$dir" 2>/dev/null; then
    owner=$(cat "$dir/pid" 2>/dev/null || true)
    if [[ -n $owner ]] && kill -0 "$owner" 2>/dev/null; then
      die "a promotion is running (pid $owner, lock $dir)"
    fi
    rm -rf "$dir"
    mkdir "$dir" || die "a promotion is running (lock $dir)"
  fi
  echo $$ >"$dir/pid"
  # shellcheck disable=SC2064 # the path now, not when the trap runs
  trap "rm -rf '$dir'" EXIT
}

main() {
  local build=1 rollback=0 live target tag='' pending started
  while (($# > 0)); do
    case $1 in
      --no-build) build=0 ;;
      --rollback) rollback=1 build=0 ;;
      -*) die "unknown option $1 (usage: compose-promote.sh [--no-build] [--rollback] [blue|green])" ;;
      *) target=$1 ;;
    esac
    shift
  done
  engine_detect
  if [[ $ENGINE == docker ]]; then
    engine_reachable || die "the Docker engine does not answer (docker info)"
  else
    engine_reachable || engine_start
  fi
  live=$(live_colour) || die "the Compose stack is not up: no running nginx_proxy container (make docker-up)"
  lock
  # An unfinished promotion: "colour tag".
  pending=$(cat "$PROMOTION_FILE" 2>/dev/null || true)
  if ((rollback == 1)); then
    [[ -z $pending ]] || die "a promotion to ${pending%% *} is unfinished: run make docker-promote to finish it first"
    [[ -z ${target:-} ]] || die "--rollback takes no colour: it goes to the colour that is not live"
    target=$([[ $live == blue ]] && echo green || echo blue)
    tag=$(release_of "$target")
    [[ -n $tag ]] || die "no previous release: $target has run none (.run/compose/releases)"
    log "rollback: $target's release $tag back live, in place of $live's $(release_of "$live")"
  fi
  target=${target:-${pending%% *}}
  target=${target:-$([[ $live == blue ]] && echo green || echo blue)}
  [[ $target == blue || $target == green ]] || die "colour must be blue or green (got $target)"
  [[ -n $tag || ${pending%% *} != "$target" ]] || tag=${pending#* }
  tag=${tag:-${WSCHAT_TAG:-$(release_tag)}}
  started=$(now_ms)
  # Compose starts the target on this release; the live colour keeps its own.
  PENDING_COLOUR=$target
  PENDING_TAG=$tag

  if [[ $target == "$live" ]]; then
    # Only a promotion killed after its flip leaves this: finish its retire step.
    [[ -n $pending ]] || die "$target is already live"
    live=$([[ $target == blue ]] && echo green || echo blue)
    log "resuming the promotion to $target (release $tag) after its flip"
    record_releases "live=$target" "$target=$tag"
  else
    echo "$target $tag" >"$PROMOTION_FILE"
    step "1/4 release $tag: image and app_$target"
    if ((build == 1)); then base_images; fi
    ensure_release "$tag" "$build" || abandon "$target" "$live" "release $tag has no image"
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
    record_releases "live=$target" "$target=$tag"
    step_done
  fi

  step "4/4 retire app_$live"
  retire "$live" || die "app_$live did not drain cleanly (a non-zero exit code above); $target is live"
  rm -f "$PROMOTION_FILE"
  step_done
  prune_releases
  log "$([[ $rollback == 1 ]] && echo rollback || echo promotion) to $target complete in $(($(now_ms) - started)) ms: release $tag live, $(release_of "$live") kept on $live for make docker-rollback"
}

main "$@"
