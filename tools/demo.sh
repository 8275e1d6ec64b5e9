#!/usr/bin/env bash
# Films the walkthrough docs/demo.md describes and writes it to docs/demo.gif: a stack of
# its own (tools/dev-up.sh in a temporary run folder, on free ports), headless Chromium
# on the page while tools/promote.sh releases the other colour, then Prometheus's graph
# of the message rate. tools/demo/record.ts takes the frames (DevTools Protocol
# screenshots); ffmpeg stitches them. The stack is torn down however the run ends.
#
#   tools/demo.sh             (make demo)
#   DEMO_OUT=/tmp/demo.gif tools/demo.sh
#   DEMO_FRAMES=/tmp/frames tools/demo.sh     also keeps the frames (PNG) and their timings
#
# Installs what is missing first: the stack's own needs (tools/stack/install-deps.sh),
# then chromium, prometheus and ffmpeg (tools/stack/apt-lib.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS
OUT=$(realpath -m "${DEMO_OUT:-docs/demo.gif}")
REPLICAS=2
# Frames per second of the animation: its timing is kept to 1/FPS s.
FPS=5
# The run folder exists before lib.sh is sourced: lib.sh fixes RUN_DIR when it is.
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/wschat-demo-XXXXXX")
FRAMES=$(realpath -m "${DEMO_FRAMES:-$RUN_DIR/frames}")
export RUN_DIR
# shellcheck source=tools/stack/lib.sh
source tools/stack/lib.sh
# shellcheck source=tools/stack/apt-lib.sh
source tools/stack/apt-lib.sh

recorder=""
stack_started=no

# cleanup: stops the recorder (which stops a promotion it started), waits for the
# stack's lock to be free, then dev-down and the run folder; keeps the folder, naming
# it, when dev-down fails.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $recorder ]] && running "$recorder"; then
    kill -TERM "$recorder" 2>/dev/null || true
    wait "$recorder" 2>/dev/null || true
  fi
  if [[ $stack_started == yes ]]; then
    flock -w 60 "$RUN_DIR/promote.lock" true 2>/dev/null || true
    if ! tools/dev-down.sh; then
      log "demo: tools/dev-down.sh failed: run folder kept: $RUN_DIR"
      exit 1
    fi
  fi
  rm -rf "$RUN_DIR"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

install_tools() {
  tools/stack/install-deps.sh
  local wanted=()
  if [[ -z ${CHROMIUM_PATH:-} && ! -x /usr/bin/chromium ]]; then
    wanted+=(chromium "the browser the demo films (tools/demo/record.ts)")
  fi
  command -v prometheus >/dev/null || wanted+=(prometheus "the graph of the message rate the demo films")
  command -v ffmpeg >/dev/null || wanted+=(ffmpeg "stitches the frames into $OUT")
  apt_install demo "${wanted[@]}"
}

# free_port [TAKEN...]: a loopback port nothing listens on, not among TAKEN.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    [[ " $* " == *" $port "* ]] || port_in_use "$port" || break
  done
  echo "$port"
}

# free_block TAKEN...: a base B such that B+1..B+REPLICAS are free (replica i listens on B+i).
free_block() {
  local base i ok
  while :; do
    base=$((20000 + RANDOM % 20000))
    ok=yes
    for ((i = 1; i <= REPLICAS; i++)); do
      if [[ " $* " == *" $((base + i)) "* ]] || port_in_use $((base + i)); then ok=no; fi
    done
    [[ $ok == no ]] || break
  done
  echo "$base"
}

start_stack() {
  local taken=()
  STACK_PORT=$(free_port) && taken+=("$STACK_PORT")
  NGINX_STATUS_PORT=$(free_port "${taken[@]}") && taken+=("$NGINX_STATUS_PORT")
  PROMETHEUS_PORT=$(free_port "${taken[@]}") && taken+=("$PROMETHEUS_PORT")
  REDIS_PORT=$(free_port "${taken[@]}") && taken+=("$REDIS_PORT")
  BLUE_PORT_BASE=$(free_block "${taken[@]}") && taken+=($((BLUE_PORT_BASE + 1)) $((BLUE_PORT_BASE + 2)))
  GREEN_PORT_BASE=$(free_block "${taken[@]}")
  export STACK_PORT NGINX_STATUS_PORT PROMETHEUS_PORT REDIS_PORT BLUE_PORT_BASE GREEN_PORT_BASE REPLICAS
  # Heartbeats every 10 s: some on the page, few enough to leave its log to the counts.
  export HEARTBEAT_INTERVAL_MS=10000 STACK_ADDRESS=127.0.0.1 STACK_TLS=0
  stack_started=yes
  tools/dev-up.sh >/dev/null
}

record() {
  mkdir -p "$FRAMES"
  DEMO_STACK_URL=http://127.0.0.1:$STACK_PORT \
    DEMO_PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT \
    DEMO_ACTIVE_COLOUR_URL=http://127.0.0.1:$NGINX_STATUS_PORT/active-colour \
    node dist/tools/demo/record.js "$FRAMES" &
  recorder=$!
  wait "$recorder"
  recorder=""
}

# stitch: the frames, each for as long as frames.txt says, into one animation at a
# constant FPS (a frame that shows longer repeats, and a repeat costs a few bytes: only
# what changed is stored), with a palette of its own.
stitch() {
  local tmp=$RUN_DIR/demo.${OUT##*.}
  ffmpeg -v error -y -f concat -safe 0 -i "$FRAMES/frames.txt" \
    -vf "fps=$FPS,split[a][b];[a]palettegen=stats_mode=diff:max_colors=96[p];[b][p]paletteuse=dither=none:diff_mode=rectangle" \
    "$tmp"
  mkdir -p "$(dirname "$OUT")"
  mv -f "$tmp" "$OUT"
}

main() {
  install_tools
  local node_bin_dir
  node_bin_dir=$(tools/stack/ensure-node.sh --bin-dir)
  [[ -z $node_bin_dir || :$PATH: == *":$node_bin_dir:"* ]] || PATH=$node_bin_dir:$PATH
  tools/stack/build-dist.sh
  log "demo: starting a stack in $RUN_DIR"
  start_stack
  log "demo: filming (about two minutes)"
  record
  stitch
  log "demo: wrote $OUT ($(($(stat -c %s "$OUT") / 1024)) KiB) in $((SECONDS - started)) s"
}

main "$@"
