#!/usr/bin/env bash
# make docker-up: the Compose stack (deploy/compose.yml) with Docker or podman
# (tools/compose/compose-lib.sh): build the replica image, start Redis, Nginx and the live
# colour (blue, or the colour a promotion left live while the Nginx container
# exists), wait until every replica is healthy and Nginx serves it on
# 127.0.0.1:${STACK_PORT:-8000}.
#   tools/compose/compose-up.sh [--no-build]       --no-build: use the image as it is
set -euo pipefail
# shellcheck source=tools/compose/compose-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/compose-lib.sh"

main() {
  local build=1 started live
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
  ((build == 0)) || build_image || die "the image did not build"
  live=$(live_colour || true)
  live=${live:-blue}
  compose up -d --no-build redis nginx "app_$live" || die "compose up failed"
  wait_healthy "app_$live" 2 || die "app_$live did not become healthy (compose logs app_$live)"
  served_by "$live" || die "Nginx does not serve $live on $(public_url /version)"
  log "stack up in $(($(now_ms) - started)) ms: $(public_url /) (live colour $live)"
}

main "$@"
