#!/usr/bin/env bash
# The Compose stack's engine: Docker with Compose v2 where a Docker engine answers,
# otherwise podman driven by docker-compose through podman's Docker-compatible API.
# Source it (after nothing: it sources lib.sh); compose-up.sh, compose-promote.sh,
# compose-down.sh and monitor.sh --compose use it.
#
# The podman path needs what a Docker engine gives for free, and this file sets it up,
# all of it under .run/compose and stopped by compose-down.sh:
#   - deploy/podman/containers.conf (CONTAINERS_CONF): runc, the host's ulimits, catatonit
#   - `podman system service` on a socket of ours (DOCKER_HOST for docker-compose)
#   - a health-check runner: podman runs HEALTHCHECKs from systemd timers, and there is
#     no systemd here, so without it no container ever becomes healthy
#   - the base images, built locally (deploy/images/build-local.sh): no registry here
# WSCHAT_ENGINE=docker|podman overrides the detection.
# shellcheck source=tools/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../stack/lib.sh"

COMPOSE_PROJECT=wschat
COMPOSE_FILE=$REPO_ROOT/deploy/compose.yml
COMPOSE_RUN_DIR=$RUN_DIR/compose
# Redis's password and the session-key secret (tools/compose/compose-secrets.sh
# creates it on first use; compose.yml refuses to render without it).
SECRETS_FILE=$REPO_ROOT/deploy/.env
# The colour a promotion is moving to, while it runs; a re-run after a kill resumes it.
# shellcheck disable=SC2034 # read by compose-promote.sh and compose-down.sh
PROMOTION_FILE=$COMPOSE_RUN_DIR/promotion
# The releases: which image tag each colour runs (blue=, green=) and the live colour
# (live=), written by compose-up.sh and after each flip. Every Compose command takes
# both colours' tags from it, so a command about one colour never changes the other's.
RELEASES_FILE=$COMPOSE_RUN_DIR/releases
# How many release images a successful promotion keeps (besides those a colour runs).
KEEP_RELEASES=${COMPOSE_KEEP_RELEASES:-3}
HEALTH_TIMEOUT_S=${COMPOSE_HEALTH_TIMEOUT_S:-90}
ENGINE=
COMPOSE_CMD=()

# engine_detect: sets ENGINE and COMPOSE_CMD, or dies naming what is missing.
engine_detect() {
  ENGINE=${WSCHAT_ENGINE:-}
  if [[ -z $ENGINE ]]; then
    if docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
      ENGINE=docker
    elif command -v podman >/dev/null || { [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; }; then
      # No Docker engine answers: podman, installed below when missing (root on Debian),
      # which is what a fresh CI machine here has to go on (a docker CLI without an engine).
      ENGINE=podman
    else
      die "no container engine: install Docker with Compose v2, or (Debian) podman, docker-compose, catatonit and debootstrap"
    fi
  fi
  case $ENGINE in
    docker)
      COMPOSE_CMD=(docker compose)
      export WSCHAT_IMAGE=${WSCHAT_IMAGE:-wschat}
      ;;
    podman)
      local missing=() tool
      for tool in podman docker-compose catatonit debootstrap; do
        command -v "$tool" >/dev/null || missing+=("$tool")
      done
      if ((${#missing[@]} > 0)); then
        [[ $(id -u) -eq 0 ]] || die "the podman path needs ${missing[*]}: sudo apt-get install -y ${missing[*]}"
        log "the podman path needs ${missing[*]}: apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
      fi
      # podman as root only: the stand-ins and ulimits are set up for root's storage.
      [[ $(id -u) -eq 0 ]] || die "the podman path runs as root (rootless podman is not set up here)"
      export CONTAINERS_CONF=$REPO_ROOT/deploy/podman/containers.conf
      export DOCKER_HOST=unix://$COMPOSE_RUN_DIR/podman.sock
      # docker-compose 1.x (the one Debian has) talks to the Docker API at DOCKER_HOST.
      COMPOSE_CMD=(docker-compose)
      # The stand-ins' names over compose.yml's upstream defaults, for every command:
      # a service whose image name changed between two commands would be recreated.
      set -a
      # shellcheck source=deploy/images/local.env
      source "$REPO_ROOT/deploy/images/local.env"
      set +a
      # Short names go to docker.io through the compatible API: name the local image fully.
      export WSCHAT_IMAGE=localhost/wschat
      ;;
    *) die "WSCHAT_ENGINE must be docker or podman (got $ENGINE)" ;;
  esac
}

# engine CMD...: the engine's own CLI (exec, ps, inspect, build), the same verbs for both.
engine() {
  if [[ $ENGINE == podman ]]; then podman "$@"; else docker "$@"; fi
}

# compose CMD...: Compose on this project's file, every profile known, so that `down`
# and `ps` see all of it, with the secrets file (created when missing). Commands that
# start things always name their services.
compose() {
  WSCHAT_SECRETS_FILE=$SECRETS_FILE "$REPO_ROOT/tools/compose/compose-secrets.sh" >/dev/null
  WSCHAT_BLUE_TAG=$(colour_tag blue) WSCHAT_GREEN_TAG=$(colour_tag green) "${COMPOSE_CMD[@]}" -p "$COMPOSE_PROJECT" -f "$COMPOSE_FILE" --env-file "$SECRETS_FILE" \
    --profile green --profile observability "$@"
}

# engine_start: what the podman path runs beside the engine (API service, health
# runner); nothing for Docker.
engine_start() {
  [[ $ENGINE == podman ]] || return 0
  mkdir -p "$COMPOSE_RUN_DIR" /run/podman
  PID_DIR=$COMPOSE_RUN_DIR LOG_DIR=$COMPOSE_RUN_DIR start_podman_api
  PID_DIR=$COMPOSE_RUN_DIR LOG_DIR=$COMPOSE_RUN_DIR start_health_runner
}

# base_images: on podman, the local stand-ins, built when missing or stale. Docker
# pulls upstream's.
base_images() {
  [[ $ENGINE == podman ]] || return 0
  "$REPO_ROOT/deploy/images/build-local.sh" ${COMPOSE_OBSERVABILITY:+--observability}
}

start_podman_api() {
  pid_alive podman-api && return 0
  rm -f "$COMPOSE_RUN_DIR/podman.sock"
  start_process podman-api podman system service --time=0 "$DOCKER_HOST"
  local deadline=$((SECONDS + 15))
  until api_ping; do
    ((SECONDS < deadline)) || die "podman's API did not answer in 15 s (see $COMPOSE_RUN_DIR/podman-api.log)"
    sleep 0.1
  done
  log "podman API on $DOCKER_HOST (pid $(pid_of podman-api))"
}

api_ping() {
  [[ -S $COMPOSE_RUN_DIR/podman.sock ]] || return 1
  node -e '
    require("node:http").get({ socketPath: process.argv[1], path: "/_ping" }, (r) => process.exit(r.statusCode === 200 ? 0 : 1))
      .on("error", () => process.exit(1));
  ' "$COMPOSE_RUN_DIR/podman.sock"
}

# The health-check runner: every 2 s for containers still starting (so a new colour is
# seen healthy promptly), every 10 s for the rest, as the Dockerfile's interval says.
start_health_runner() {
  pid_alive health-runner && return 0
  # shellcheck disable=SC2016 # the runner's own script, expanded when it runs
  start_process health-runner bash -c '
    project=$1
    for ((tick = 0; ; tick++)); do
      filter=(--filter "label=com.docker.compose.project=$project" --filter status=running)
      ((tick % 5 == 0)) || filter+=(--filter health=starting)
      for id in $(podman ps -q "${filter[@]}"); do
        podman healthcheck run "$id" >/dev/null 2>&1 || true
      done
      sleep 2
    done' health-runner "$COMPOSE_PROJECT"
}

# engine_stop: stops what engine_start started (podman path), by recorded pid.
engine_stop() {
  [[ $ENGINE == podman ]] || return 0
  PID_DIR=$COMPOSE_RUN_DIR stop_processes 10 health-runner podman-api || true
}

# engine_reachable: the engine answers (podman: its API service runs).
engine_reachable() {
  if [[ $ENGINE == podman ]]; then api_ping; else docker info >/dev/null 2>&1; fi
}

# engine_build ARGS...: `build` in Docker's image format on either engine (podman's
# default, OCI, has no HEALTHCHECK and would drop it silently).
engine_build() {
  if [[ $ENGINE == podman ]]; then podman build --format docker --pull=never "$@"; else docker build "$@"; fi
}

# build_inputs: what the image is built from, one path a line: the Dockerfile and
# the sources of its COPY lines (not those from another stage).
build_inputs() {
  echo deploy/Dockerfile
  awk '$1 == "COPY" && $2 !~ /^--/ { for (i = 2; i < NF; i++) print $i }' "$REPO_ROOT/deploy/Dockerfile"
}

# release_tag: the working tree's release, named by its commit (12 hex digits); when
# a build input differs from that commit, plus -dirty- and 12 hex digits of the tree
# git would commit (a temporary index: the real one is untouched). The same inputs
# always give the same tag, and different inputs a different one.
release_tag() {
  local sha inputs=() path index tree
  sha=$(git -C "$REPO_ROOT" rev-parse --short=12 HEAD 2>/dev/null) ||
    die "$REPO_ROOT is not a git checkout: set WSCHAT_TAG to name the release"
  while IFS= read -r path; do inputs+=("$path"); done < <(build_inputs)
  if [[ -z $(git -C "$REPO_ROOT" status --porcelain --untracked-files=all -- "${inputs[@]}") ]]; then
    echo "$sha"
    return
  fi
  index=$(mktemp -d "${TMPDIR:-/tmp}/wschat-release.XXXXXX")
  tree=$(cd "$REPO_ROOT" && export GIT_INDEX_FILE=$index/index &&
    git read-tree HEAD && git add -A -- "${inputs[@]}" && git write-tree) || tree=
  rm -rf "$index"
  [[ -n $tree ]] || die "could not hash the working tree's build inputs"
  echo "$sha-dirty-$(echo "$tree" | cut -c1-12)"
}

# is_release_tag TAG: TAG is one release_tag gives (what prune_releases may remove).
is_release_tag() {
  [[ $1 =~ ^[0-9a-f]{12}(-dirty-[0-9a-f]{12})?$ ]]
}

# release_of KEY: live, blue or green from the releases file; empty when not recorded.
release_of() {
  [[ -f $RELEASES_FILE ]] || return 0
  sed -n "s/^$1=//p" "$RELEASES_FILE" | tail -n 1
}

# record_releases KEY=VALUE...: sets those keys in the releases file, the others kept;
# written whole and renamed, so a reader sees the old file or the new one.
record_releases() {
  local tmp=$RELEASES_FILE.$$ key value pair
  mkdir -p "$COMPOSE_RUN_DIR"
  for key in live blue green; do
    value=$(release_of "$key")
    for pair in "$@"; do
      [[ ${pair%%=*} == "$key" ]] && value=${pair#*=}
    done
    [[ -z $value ]] || echo "$key=$value"
  done >"$tmp"
  mv -f "$tmp" "$RELEASES_FILE"
}

# colour_tag COLOUR: the tag Compose gives COLOUR's service: PENDING_TAG while a
# promotion starts PENDING_COLOUR, else the recorded release, else "none" (a colour
# that never ran: Compose renders it, nothing starts it).
colour_tag() {
  if [[ ${PENDING_COLOUR:-} == "$1" ]]; then echo "$PENDING_TAG"; return; fi
  local tag
  tag=$(release_of "$1")
  echo "${tag:-none}"
}

image_exists() {
  engine image inspect "$WSCHAT_IMAGE:$1" >/dev/null 2>&1
}

# build_image TAG: the replica image $WSCHAT_IMAGE:TAG from the working tree.
build_image() {
  local tag=$1 started args=()
  started=$(now_ms)
  # Unset on Docker: the Dockerfile's default, the upstream image.
  [[ -z ${NODE_IMAGE:-} ]] || args+=(--build-arg "NODE_IMAGE=$NODE_IMAGE")
  # A TLS-inspecting proxy's CA for npm, as a build secret: in no layer of the image.
  local ca=${NODE_EXTRA_CA_CERTS:-}
  [[ -n $ca && -s $ca ]] && args+=(--secret "id=npm_ca,src=$ca")
  engine_build --quiet "${args[@]}" --label "wschat.release=$tag" -f "$REPO_ROOT/deploy/Dockerfile" \
    -t "$WSCHAT_IMAGE:$tag" "$REPO_ROOT" >/dev/null || return 1
  log "image $WSCHAT_IMAGE:$tag built in $(($(now_ms) - started)) ms"
}

# ensure_release TAG BUILD: the image of release TAG exists; built when missing, if
# BUILD is 1 and TAG is the working tree's. An existing tag is never built again: a
# release is immutable, and the other colour may run it.
ensure_release() {
  local tag=$1 build=$2
  if image_exists "$tag"; then
    log "release $tag: image $WSCHAT_IMAGE:$tag exists, not built"
    return 0
  fi
  ((build == 1)) || { log "release $tag: no image $WSCHAT_IMAGE:$tag (and no build asked for)"; return 1; }
  build_image "$tag"
}

# prune_releases: removes release images beyond the KEEP_RELEASES newest (both
# engines list images newest first), never one that a colour runs or a container
# uses (rmi without --force refuses those).
prune_releases() {
  local blue green tag count=0
  blue=$(release_of blue)
  green=$(release_of green)
  for tag in $(engine image ls --format '{{.Tag}}' --filter "reference=$WSCHAT_IMAGE"); do
    is_release_tag "$tag" || continue
    [[ $tag == "$blue" || $tag == "$green" ]] && continue
    count=$((count + 1))
    ((count > KEEP_RELEASES)) || continue
    if engine rmi "$WSCHAT_IMAGE:$tag" >/dev/null 2>&1; then log "  release $tag removed"; fi
  done
  return 0
}

# containers SERVICE [STATUS]: ids of SERVICE's containers (running by default).
containers() {
  engine ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT" \
    --filter "label=com.docker.compose.service=$1" --filter "status=${2:-running}"
}

# health ID: starting, healthy or unhealthy. On podman the check is run right here,
# so a wait does not depend on the runner's cadence.
health() {
  [[ $ENGINE == podman ]] && podman healthcheck run "$1" >/dev/null 2>&1
  engine inspect --format '{{.State.Health.Status}}' "$1" 2>/dev/null
}

# wait_healthy SERVICE COUNT: waits until COUNT containers of SERVICE run and all are
# healthy; fails at once when one turns unhealthy, or after HEALTH_TIMEOUT_S.
wait_healthy() {
  local service=$1 want=$2 deadline=$((SECONDS + HEALTH_TIMEOUT_S)) id running healthy state
  while ((SECONDS < deadline)); do
    running=0
    healthy=0
    for id in $(containers "$service"); do
      running=$((running + 1))
      state=$(health "$id")
      [[ $state == unhealthy ]] && { log "$service container ${id:0:12} is unhealthy"; return 1; }
      [[ $state == healthy ]] && healthy=$((healthy + 1))
    done
    ((running == want && healthy == want)) && return 0
    sleep 0.5
  done
  log "$service: $healthy of $want containers healthy after ${HEALTH_TIMEOUT_S}s"
  return 1
}

# live_colour: the colour the Nginx container sends traffic to (fails when it is not running).
live_colour() {
  # shellcheck disable=SC2016 # $active_colour is Nginx's variable
  engine exec nginx_proxy sed -n 's/^set \$active_colour \([a-z]*\);$/\1/p' /run/wschat-nginx/active-colour.conf 2>/dev/null
}

# public_url PATH: the stack's public side on the host.
public_url() {
  echo "http://127.0.0.1:${STACK_PORT:-8000}$1"
}

# served_by COLOUR: the public side answers COLOUR at /version within 10 s.
served_by() {
  local deadline=$((SECONDS + 10))
  until [[ $(http_body "$(public_url /version)") == "{\"version\":\"$1\"}" ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
