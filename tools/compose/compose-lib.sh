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
    docker) COMPOSE_CMD=(docker compose) ;;
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
  "${COMPOSE_CMD[@]}" -p "$COMPOSE_PROJECT" -f "$COMPOSE_FILE" --env-file "$SECRETS_FILE" \
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

# build_image: the replica image ${WSCHAT_IMAGE}:${WSCHAT_TAG} from the working tree.
build_image() {
  local tag=${WSCHAT_TAG:-latest} started
  started=$(now_ms)
  if [[ $ENGINE == docker ]]; then
    compose build app_blue
  else
    local args=(--build-arg "NODE_IMAGE=$NODE_IMAGE")
    # A TLS-inspecting proxy's CA for npm, as a build secret: in no layer of the image.
    local ca=${NODE_EXTRA_CA_CERTS:-}
    [[ -n $ca && -s $ca ]] && args+=(--secret "id=npm_ca,src=$ca")
    engine_build --quiet "${args[@]}" -f "$REPO_ROOT/deploy/Dockerfile" \
      -t "$WSCHAT_IMAGE:$tag" "$REPO_ROOT" >/dev/null || return 1
  fi
  log "image ${WSCHAT_IMAGE:-wschat}:$tag built in $(($(now_ms) - started)) ms"
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
  local service=$1 want=$2 deadline=$((SECONDS + HEALTH_TIMEOUT_S)) ids id healthy state
  while ((SECONDS < deadline)); do
    mapfile -t ids < <(containers "$service")
    healthy=0
    for id in "${ids[@]}"; do
      state=$(health "$id")
      [[ $state == unhealthy ]] && { log "$service container ${id:0:12} is unhealthy"; return 1; }
      [[ $state == healthy ]] && healthy=$((healthy + 1))
    done
    ((${#ids[@]} == want && healthy == want)) && return 0
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
