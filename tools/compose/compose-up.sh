#!/usr/bin/env bash
# make docker-up: the Compose stack (deploy/compose.yml) with Docker or podman
# (tools/compose/compose-lib.sh): start Redis, Nginx and the live colour (blue, or
# the colour Nginx's volume says was live), wait until every replica is healthy and
# Nginx serves it on 127.0.0.1:${STACK_PORT:-8000}.
# The live colour runs the release recorded for it (.run/compose/releases); a colour
# with none gets the working tree's release (tools/compose/compose-lib.sh, release_tag),
# built when its image is missing. A running release is never rebuilt or replaced
# here: make docker-promote releases a new one.
#   tools/compose/compose-up.sh [--no-build]       --no-build: never build
set -euo pipefail
# shellcheck source=tools/compose/compose-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/compose-lib.sh"

main() {
  local build=1 started live tag
  case ${1:-} in
    --no-build) build=0 ;;
    '') ;;
    *) die "unknown option $1 (usage: compose-up.sh [--no-build])" ;;
  esac
  started=$(now_ms)
  engine_detect
  log "engine: $ENGINE (${COMPOSE_CMD[*]})"
  engine_start
  base_images
  live=$(live_colour || true)
  live=${live:-$(release_of live)}
  live=${live:-blue}
  tag=$(release_of "$live")
  if [[ -z $tag ]]; then
    tag=${WSCHAT_TAG:-$(release_tag)}
    ensure_release "$tag" "$build" || die "no image for release $tag"
    record_releases "live=$live" "$live=$tag"
  else
    image_exists "$tag" || die "app_$live's release $tag has no image $WSCHAT_IMAGE:$tag (make docker-down, then up)"
    log "app_$live runs release $tag (make docker-promote releases the working tree)"
  fi
  compose up -d --no-build redis nginx "app_$live" || die "compose up failed"
  wait_healthy "app_$live" 2 || die "app_$live did not become healthy (compose logs app_$live)"
  served_by "$live" || die "Nginx does not serve $live on $(public_url /version)"
  log "stack up in $(($(now_ms) - started)) ms: $(public_url /) (live colour $live, release $tag)"
}

main "$@"
