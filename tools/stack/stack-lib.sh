#!/usr/bin/env bash
# The native blue/green stack: its settings, Nginx, releases and colours.
# Source it after lib.sh. Settings come from the environment the first time
# (tools/dev-up.sh) and are saved in $RUN_DIR/stack.env, so that promote, status
# and dev-down later act on the same ports and replica count.

# shellcheck source=tools/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STACK_ENV=$RUN_DIR/stack.env
NGINX_PREFIX=$RUN_DIR/nginx
NGINX_CONF_DIR=$NGINX_PREFIX/conf
ACTIVE_COLOUR_FILE=$NGINX_CONF_DIR/active-colour.conf
COLOURS=(blue green)

# load_stack_settings: saved settings win over the environment, which wins over defaults.
load_stack_settings() {
  if [[ -f $STACK_ENV ]]; then
    # shellcheck source=/dev/null
    source "$STACK_ENV"
  fi
  STACK_PORT=${STACK_PORT:-8000}
  # Loopback like everything else; 0.0.0.0 (or one of the machine's addresses) publishes it.
  STACK_ADDRESS=${STACK_ADDRESS:-127.0.0.1}
  NGINX_STATUS_PORT=${NGINX_STATUS_PORT:-8099}
  # 9091: Debian's prometheus package starts a system Prometheus on 9090.
  PROMETHEUS_PORT=${PROMETHEUS_PORT:-9091}
  # 9095: Debian's prometheus-alertmanager package starts a system one on 9093 (and 9094 for its cluster).
  ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-9095}
  # Where Alertmanager posts the alerts (its webhook JSON, firing and resolved); empty: nowhere.
  ALERT_WEBHOOK_URL=${ALERT_WEBHOOK_URL:-}
  ALERT_GROUP_WAIT=${ALERT_GROUP_WAIT:-10s}
  ALERT_GROUP_INTERVAL=${ALERT_GROUP_INTERVAL:-1m}
  REDIS_PORT=${REDIS_PORT:-6380}
  REPLICAS=${REPLICAS:-2}
  BLUE_PORT_BASE=${BLUE_PORT_BASE:-8100}
  GREEN_PORT_BASE=${GREEN_PORT_BASE:-8200}
  HEARTBEAT_INTERVAL_MS=${HEARTBEAT_INTERVAL_MS:-30000}
  NGINX_WORKERS=${NGINX_WORKERS:-auto}
  NGINX_WORKER_CONNECTIONS=${NGINX_WORKER_CONNECTIONS:-18000}
  NGINX_RLIMIT_NOFILE=${NGINX_RLIMIT_NOFILE:-19000}
  NGINX_CONNECTIONS_PER_ADDRESS=${NGINX_CONNECTIONS_PER_ADDRESS:-1000}
  NGINX_HANDSHAKES_PER_ADDRESS=${NGINX_HANDSHAKES_PER_ADDRESS:-1000}
  NGINX_HANDSHAKE_BURST=${NGINX_HANDSHAKE_BURST:-10000}
  # 1: the public side serves https:// and wss:// only, with STACK_TLS_CERT and
  # STACK_TLS_KEY (PEM), or a certificate made for this stack by a CA of its own.
  STACK_TLS=${STACK_TLS:-0}
  STACK_TLS_CERT=${STACK_TLS_CERT:-}
  STACK_TLS_KEY=${STACK_TLS_KEY:-}
  [[ $STACK_TLS == 0 || $STACK_TLS == 1 ]] || die "STACK_TLS must be 0 or 1 (got '$STACK_TLS')"
  tls_trust
}

save_stack_settings() {
  mkdir -p "$RUN_DIR"
  cat >"$STACK_ENV" <<ENV
# Written by tools/dev-up.sh; removed by tools/dev-down.sh.
STACK_PORT=$STACK_PORT
STACK_ADDRESS=$STACK_ADDRESS
NGINX_STATUS_PORT=$NGINX_STATUS_PORT
PROMETHEUS_PORT=$PROMETHEUS_PORT
ALERTMANAGER_PORT=$ALERTMANAGER_PORT
ALERT_WEBHOOK_URL=$ALERT_WEBHOOK_URL
ALERT_GROUP_WAIT=$ALERT_GROUP_WAIT
ALERT_GROUP_INTERVAL=$ALERT_GROUP_INTERVAL
REDIS_PORT=$REDIS_PORT
REPLICAS=$REPLICAS
BLUE_PORT_BASE=$BLUE_PORT_BASE
GREEN_PORT_BASE=$GREEN_PORT_BASE
HEARTBEAT_INTERVAL_MS=$HEARTBEAT_INTERVAL_MS
NGINX_WORKERS=$NGINX_WORKERS
NGINX_WORKER_CONNECTIONS=$NGINX_WORKER_CONNECTIONS
NGINX_RLIMIT_NOFILE=$NGINX_RLIMIT_NOFILE
NGINX_CONNECTIONS_PER_ADDRESS=$NGINX_CONNECTIONS_PER_ADDRESS
NGINX_HANDSHAKES_PER_ADDRESS=$NGINX_HANDSHAKES_PER_ADDRESS
NGINX_HANDSHAKE_BURST=$NGINX_HANDSHAKE_BURST
STACK_TLS=$STACK_TLS
STACK_TLS_CERT=$STACK_TLS_CERT
STACK_TLS_KEY=$STACK_TLS_KEY
ENV
}

check_colour() {
  [[ $1 == blue || $1 == green ]] || die "colour must be blue or green (got '$1')"
}

other_colour() {
  if [[ $1 == blue ]]; then echo green; else echo blue; fi
}

# replica_port COLOUR INDEX
replica_port() {
  local base
  if [[ $1 == blue ]]; then base=$BLUE_PORT_BASE; else base=$GREEN_PORT_BASE; fi
  echo $((base + $2))
}

replica_names() {
  local i
  for ((i = 1; i <= REPLICAS; i++)); do echo "replica-$1-$i"; done
}

# colour_running COLOUR: true when any replica of COLOUR is running.
colour_running() {
  local name
  for name in $(replica_names "$1"); do
    pid_alive "$name" && return 0
  done
  return 1
}

# live_colour: the colour Nginx sends traffic to (from active-colour.conf).
live_colour() {
  [[ -f $ACTIVE_COLOUR_FILE ]] || return 1
  # shellcheck disable=SC2016 # $active_colour is Nginx's variable, not the shell's
  sed -n 's/^set \$active_colour \([a-z]*\);$/\1/p' "$ACTIVE_COLOUR_FILE"
}

# check_stack_address: STACK_ADDRESS must be an IPv4 address Nginx can listen on.
check_stack_address() {
  [[ $STACK_ADDRESS =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] ||
    die "STACK_ADDRESS must be an IPv4 address such as 127.0.0.1 or 0.0.0.0 (got '$STACK_ADDRESS')"
}

# stack_host: where this machine reaches the public side (loopback when it listens on every interface).
stack_host() {
  if [[ $STACK_ADDRESS == 0.0.0.0 ]]; then echo 127.0.0.1; else echo "$STACK_ADDRESS"; fi
}

stack_url() {
  if [[ $STACK_TLS == 1 ]]; then echo "https://$(stack_host):$STACK_PORT"; else echo "http://$(stack_host):$STACK_PORT"; fi
}

# The stack's own CA and certificate, when it makes them (STACK_TLS=1 without STACK_TLS_CERT).
TLS_DIR=$RUN_DIR/tls

# tls_trust: the scripts' own checks (node's fetch, the smoke run) trust the stack's CA.
tls_trust() {
  if [[ $STACK_TLS == 1 && -z $STACK_TLS_CERT ]]; then export NODE_EXTRA_CA_CERTS=$TLS_DIR/ca.pem; fi
}

# ensure_tls_certificate: with STACK_TLS=1 and no certificate of the operator's, a CA
# of its own (kept in $TLS_DIR across dev-down: trusted once, it stays trusted) and a certificate it signs for
# the names the public side is reached by. Browsers and clients trust ca.pem, not the
# certificate itself, so a certificate made again (new names) needs no new trust.
ensure_tls_certificate() {
  [[ $STACK_TLS == 1 ]] || return 0
  if [[ -n $STACK_TLS_CERT ]]; then
    [[ -r $STACK_TLS_CERT && -r $STACK_TLS_KEY ]] || die "STACK_TLS_CERT and STACK_TLS_KEY must be readable PEM files"
    return 0
  fi
  command -v openssl >/dev/null || die "STACK_TLS=1 needs openssl to make a certificate (apt-get install openssl), or STACK_TLS_CERT and STACK_TLS_KEY"
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  if [[ ! -f $TLS_DIR/ca.pem ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
      -subj "/CN=wschat dev stack CA" -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" 2>/dev/null ||
      die "openssl could not make the stack's CA"
  fi
  local names="DNS:localhost,IP:127.0.0.1"
  [[ $(stack_host) == 127.0.0.1 ]] || names+=",IP:$(stack_host)"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$(stack_host)" \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null ||
    die "openssl could not make the stack's key"
  openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" -CAcreateserial \
    -days 397 -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$names") \
    -out "$TLS_DIR/server.pem" 2>/dev/null ||
    die "openssl could not make the stack's certificate"
}

# render_tls_conf: the public server's TLS settings (empty without STACK_TLS).
render_tls_conf() {
  if [[ $STACK_TLS != 1 ]]; then
    echo "# STACK_TLS=0: the public side serves plain http:// and ws://." >"$NGINX_CONF_DIR/tls.conf"
    return
  fi
  local cert=${STACK_TLS_CERT:-$TLS_DIR/server.pem} key=${STACK_TLS_KEY:-$TLS_DIR/server.key}
  cat >"$NGINX_CONF_DIR/tls.conf" <<TLS
# STACK_TLS=1: https:// and wss:// only; browsers that saw this answer keep to TLS (HSTS).
ssl_certificate $cert;
ssl_certificate_key $key;
ssl_protocols TLSv1.2 TLSv1.3;
ssl_session_cache shared:tls:10m;
add_header Strict-Transport-Security "max-age=31536000" always;
TLS
}

# take_lock: one change to the stack at a time (promote, dev-up, dev-down). The
# kernel drops the lock when the holder dies; children never inherit fd 9.
take_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/promote.lock"
  flock -n 9 || die "a promotion is running (lock $RUN_DIR/promote.lock); try again when it is done"
}

# --- Nginx -------------------------------------------------------------------

nginx_cmd() {
  nginx -p "$NGINX_PREFIX/" -c "$NGINX_CONF_DIR/nginx.conf" "$@"
}

# render_nginx: nginx.conf from the template, upstreams from the replica ports,
# and the active colour (blue) when none was chosen yet.
render_nginx() {
  mkdir -p "$NGINX_CONF_DIR" "$NGINX_PREFIX/logs" "$NGINX_PREFIX/temp" "$LOG_DIR"
  local timeout_s=$(((HEARTBEAT_INTERVAL_MS * 3 + 999) / 1000))
  ((timeout_s >= 60)) || timeout_s=60
  # The template says `listen ${STACK_PORT}` (the Compose stack listens on every interface
  # of its container); natively the address comes first: STACK_ADDRESS:STACK_PORT.
  local ssl=""
  [[ $STACK_TLS == 1 ]] && ssl="ssl "
  ensure_tls_certificate
  render_tls_conf
  sed -e "s|listen \${STACK_PORT} |listen $STACK_ADDRESS:$STACK_PORT $ssl|" \
    -e "s|\${STACK_PORT}|$STACK_PORT|g" \
    -e "s|\${NGINX_STATUS_LISTEN}|127.0.0.1:$NGINX_STATUS_PORT|g" \
    -e "s|\${NGINX_WORKERS}|$NGINX_WORKERS|g" \
    -e "s|\${NGINX_WORKER_CONNECTIONS}|$NGINX_WORKER_CONNECTIONS|g" \
    -e "s|\${NGINX_RLIMIT_NOFILE}|$NGINX_RLIMIT_NOFILE|g" \
    -e "s|\${NGINX_CONNECTIONS_PER_ADDRESS}|$NGINX_CONNECTIONS_PER_ADDRESS|g" \
    -e "s|\${NGINX_HANDSHAKES_PER_ADDRESS}|$NGINX_HANDSHAKES_PER_ADDRESS|g" \
    -e "s|\${NGINX_HANDSHAKE_BURST}|$NGINX_HANDSHAKE_BURST|g" \
    -e "s|\${PROXY_READ_TIMEOUT}|${timeout_s}s|g" \
    -e "s|\${NGINX_ACCESS_LOG}|$LOG_DIR/nginx-access.log|g" \
    -e "s|\${NGINX_ERROR_LOG}|$LOG_DIR/nginx-error.log|g" \
    "$REPO_ROOT/nginx/nginx.conf.template" >"$NGINX_CONF_DIR/nginx.conf"
  cp "$REPO_ROOT/nginx/security-headers.conf" "$NGINX_CONF_DIR/security-headers.conf"
  local colour i
  {
    echo "# Rendered by tools/stack/stack-lib.sh: one upstream per colour, named after it."
    # shellcheck disable=SC2016 # Nginx variables
    echo 'map $active_colour $colour_upstream { default $active_colour; }'
    for colour in "${COLOURS[@]}"; do
      echo "upstream $colour {"
      # max_fails=0: no passive failure marking. Nginx counts a proxied WebSocket's
      # success only when the socket closes, so a replica marked failed (one 503 from a
      # replica whose Redis was away, one connect timeout) stayed marked while the sockets
      # it then took stayed open: after a Redis outage in which every replica answered
      # 503, new sockets got 502 "no live upstreams" for minutes, each worker letting one
      # handshake per replica through every fail_timeout (tests/faults/network-faults.test.ts).
      # proxy_next_upstream still moves every refused, timed-out or 503 handshake.
      for ((i = 1; i <= REPLICAS; i++)); do
        echo "    server 127.0.0.1:$(replica_port "$colour" "$i") max_fails=0;"
      done
      echo "    keepalive 16;"
      echo "}"
    done
  } >"$NGINX_CONF_DIR/upstreams.conf"
  [[ -f $ACTIVE_COLOUR_FILE ]] || write_active_colour blue
}

write_active_colour() {
  # shellcheck disable=SC2016 # $active_colour is Nginx's variable, not the shell's
  printf 'set $active_colour %s;\n' "$1" >"$ACTIVE_COLOUR_FILE.tmp"
  mv -f "$ACTIVE_COLOUR_FILE.tmp" "$ACTIVE_COLOUR_FILE"
}

nginx_start() {
  if pid_alive nginx; then
    log "nginx already running (pid $(pid_of nginx))"
    return
  fi
  nginx_cmd -t -q || die "nginx configuration invalid (see above)"
  require_free_port "$STACK_PORT" "nginx, public side"
  require_free_port "$NGINX_STATUS_PORT" "nginx, internal side"
  start_process nginx nginx -p "$NGINX_PREFIX/" -c "$NGINX_CONF_DIR/nginx.conf"
  wait_for_http "http://127.0.0.1:$NGINX_STATUS_PORT/active-colour" 200 5 ||
    die "nginx did not start (see $LOG_DIR/nginx-error.log and $LOG_DIR/nginx.log)"
}

# set_live_colour COLOUR: write + rename, nginx -t, reload. On a bad config the
# previous file is put back, nothing is reloaded, and it fails (the caller decides).
# Functions used inside promote.sh's steps fail rather than exit, so that promote
# can still tear the new colour down.
set_live_colour() {
  local colour=$1 previous
  previous=$(live_colour || true)
  write_active_colour "$colour"
  if ! nginx_cmd -t -q; then
    [[ -n $previous ]] && write_active_colour "$previous"
    log "nginx -t failed with the $colour colour; kept $previous"
    return 1
  fi
  kill -HUP "$(pid_of nginx)"
}

# answers_in_a_row URL BODY N: true when N GETs of URL in a row, each on a fresh
# connection, answer BODY (one Node process for all N: spawning one per request costs
# more than the requests under load).
answers_in_a_row() {
  node -e '
    const [url, want, times] = process.argv.slice(1);
    (async () => {
      for (let i = 0; i < Number(times); i += 1) {
        const response = await fetch(url, { headers: { connection: "close" }, signal: AbortSignal.timeout(2000) });
        if ((await response.text()) !== want) process.exit(1);
      }
    })().catch(() => process.exit(1));
  ' "$1" "$2" "$3"
}

# wait_for_live_colour COLOUR TIMEOUT_S: the public side's /version answers COLOUR on
# five fresh connections in a row.
wait_for_live_colour() {
  local colour=$1 deadline=$((SECONDS + $2))
  until answers_in_a_row "$(stack_url)/version" "{\"version\":\"$colour\"}" 5; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# --- Prometheus ----------------------------------------------------------------

PROMETHEUS_DIR=$RUN_DIR/prometheus

prometheus_available() {
  command -v prometheus >/dev/null
}

# render_prometheus: config and rules from observability/, and the static targets.
render_prometheus() {
  mkdir -p "$PROMETHEUS_DIR/targets" "$PROMETHEUS_DIR/data"
  cp "$REPO_ROOT/observability/prometheus/prometheus.yml" "$REPO_ROOT/observability/prometheus/alerts.yml" "$PROMETHEUS_DIR/"
  write_targets nginx "[{\"targets\":[\"127.0.0.1:$NGINX_STATUS_PORT\"]}]"
  write_targets prometheus "[{\"targets\":[\"127.0.0.1:$PROMETHEUS_PORT\"]}]"
  pid_alive alertmanager || write_targets alertmanagers "[]"
  write_replica_targets
}

# write_targets NAME JSON: replaces targets/NAME.json atomically (file_sd may read it any time).
write_targets() {
  mkdir -p "$PROMETHEUS_DIR/targets"
  printf '%s\n' "$2" >"$PROMETHEUS_DIR/targets/$1.json.tmp"
  mv -f "$PROMETHEUS_DIR/targets/$1.json.tmp" "$PROMETHEUS_DIR/targets/$1.json"
}

# write_replica_targets: the replicas that run now, so a retired colour is not scraped
# (and does not show as down) once it is gone.
write_replica_targets() {
  local colour i entries=()
  for colour in "${COLOURS[@]}"; do
    for ((i = 1; i <= REPLICAS; i++)); do
      pid_alive "replica-$colour-$i" || continue
      entries+=("{\"targets\":[\"127.0.0.1:$(replica_port "$colour" "$i")\"],\"labels\":{\"colour\":\"$colour\",\"replica\":\"replica-$colour-$i\"}}")
    done
  done
  local IFS=,
  write_targets replicas "[${entries[*]}]"
}

prometheus_start() {
  if ! prometheus_available; then
    log "prometheus not installed: skipped (apt-get install prometheus)"
    return
  fi
  if pid_alive prometheus; then
    kill -HUP "$(pid_of prometheus)" # reload config and rules
    return
  fi
  if port_in_use "$PROMETHEUS_PORT"; then
    log "warning: port $PROMETHEUS_PORT is taken: Prometheus not started (set PROMETHEUS_PORT)"
    return
  fi
  start_process prometheus prometheus --config.file="$PROMETHEUS_DIR/prometheus.yml" \
    --storage.tsdb.path="$PROMETHEUS_DIR/data" --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
  wait_for_http "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" 200 15 ||
    die "prometheus did not start (see $LOG_DIR/prometheus.log)"
}

# --- Alertmanager --------------------------------------------------------------

ALERTMANAGER_DIR=$RUN_DIR/alertmanager

alertmanager_bin() {
  command -v prometheus-alertmanager || command -v alertmanager
}

# render_alertmanager: observability/alertmanager/alertmanager.yml with the stack's
# settings, and the webhook receiver when ALERT_WEBHOOK_URL is set.
render_alertmanager() {
  mkdir -p "$ALERTMANAGER_DIR/data"
  "$REPO_ROOT/tools/stack/render-alertmanager.sh" "$ALERTMANAGER_DIR/alertmanager.yml" \
    "$ALERT_GROUP_WAIT" "$ALERT_GROUP_INTERVAL" "$ALERT_WEBHOOK_URL"
}

# alertmanager_start: the stack's Alertmanager (no cluster: one instance), then
# Prometheus's target list names it.
alertmanager_start() {
  local bin
  if ! bin=$(alertmanager_bin); then
    log "alertmanager not installed: skipped (apt-get install prometheus-alertmanager)"
    return
  fi
  if pid_alive alertmanager; then
    kill -HUP "$(pid_of alertmanager)" # reload its config
    return
  fi
  if port_in_use "$ALERTMANAGER_PORT"; then
    log "warning: port $ALERTMANAGER_PORT is taken: Alertmanager not started (set ALERTMANAGER_PORT)"
    return
  fi
  start_process alertmanager "$bin" --config.file="$ALERTMANAGER_DIR/alertmanager.yml" \
    --storage.path="$ALERTMANAGER_DIR/data" --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
    --cluster.listen-address=
  wait_for_http "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" 200 15 ||
    die "alertmanager did not start (see $LOG_DIR/alertmanager.log)"
  write_targets alertmanagers "[{\"targets\":[\"127.0.0.1:$ALERTMANAGER_PORT\"]}]"
}

# --- Releases and colours -----------------------------------------------------

release_dir() {
  echo "$RUN_DIR/releases/$1"
}

# Compiled code and the page, kept between releases in the run folder: a release is
# a copy of them, so a promotion recompiles only what changed since the last build
# (tsc --incremental), and nothing when no source changed (a digest of their content).
# BUILD_CACHE: another folder for it (a test building a deliberately broken copy of the tree).
BUILD_CACHE=$(realpath -m "${BUILD_CACHE:-$RUN_DIR/build}")

# tree_digest: a digest of the content of every file the compiled tree is built from.
tree_digest() {
  (cd "$REPO_ROOT" && {
    find services shared tests tools -type f -name '*.ts' ! -path 'services/gateway/public/*' -print0 | LC_ALL=C sort -z | xargs -0 sha1sum
    sha1sum package.json package-lock.json tsconfig.json
  } | sha1sum | cut -c1-16)
}

# page_digest: the same for the page (tools/stack/build-page.sh's inputs).
page_digest() {
  (cd "$REPO_ROOT" && {
    find services/gateway/public shared/client shared/protocol -type f -print0 | LC_ALL=C sort -z | xargs -0 sha1sum
    sha1sum package-lock.json tools/stack/build-page.sh
  } | sha1sum | cut -c1-16)
}

# release_digest: what a release records of the sources it was built from.
release_digest() {
  local tree page
  tree=$(tree_digest) && page=$(page_digest) && echo "$tree-$page"
}

# prune_outputs DIR: removes compiled files whose source is gone (an incremental
# build does not), so a deleted test or smoke file does not linger in a release.
prune_outputs() {
  local out=$1 file source
  while IFS= read -r -d '' file; do
    source=${file#"$out"/}
    source=${source%.map}
    source=${source%.js}
    [[ -f $REPO_ROOT/$source.ts ]] || rm -f "$file"
  done < <(find "$out" -type f \( -name '*.js' -o -name '*.js.map' \) -print0)
}

# build_cached_tree DIGEST: tsc into $BUILD_CACHE/tree unless it holds DIGEST's build already.
build_cached_tree() {
  if [[ -f $BUILD_CACHE/tree.digest && $(<"$BUILD_CACHE/tree.digest") == "$1" ]]; then
    log "compiled code is current (sources $1): reused"
    return 0
  fi
  local started
  started=$(now_ms)
  rm -f "$BUILD_CACHE/tree.digest"
  mkdir -p "$BUILD_CACHE"
  (cd "$REPO_ROOT" && node_modules/.bin/tsc -p tsconfig.json --outDir "$BUILD_CACHE/tree" \
    --incremental --tsBuildInfoFile "$BUILD_CACHE/tree.tsbuildinfo" --noEmitOnError) || return 1
  prune_outputs "$BUILD_CACHE/tree" || return 1
  echo "$1" >"$BUILD_CACHE/tree.digest"
  log "compiled the sources that changed since the last build (tsc --incremental) in $(($(now_ms) - started)) ms"
}

# build_cached_page DIGEST: tools/stack/build-page.sh into $BUILD_CACHE/page unless current.
build_cached_page() {
  if [[ -f $BUILD_CACHE/page.digest && $(<"$BUILD_CACHE/page.digest") == "$1" ]]; then
    log "page is current (sources $1): reused"
    return 0
  fi
  local started
  started=$(now_ms)
  rm -f "$BUILD_CACHE/page.digest"
  mkdir -p "$BUILD_CACHE"
  "$REPO_ROOT/tools/stack/build-page.sh" "$BUILD_CACHE/page" || return 1
  echo "$1" >"$BUILD_CACHE/page.digest"
  log "built the page in $(($(now_ms) - started)) ms"
}

# build_release COLOUR: the current tree, compiled, into the colour's own folder, so
# building the next colour never changes the code the live one runs. The release is
# a copy of the build cache (never hard links: the next incremental build rewrites
# those files in place).
build_release() {
  local dir tree page modules
  dir=$(release_dir "$1")
  # Each line fails the build explicitly: callers run this under `||`, where set -e is off.
  tree=$(tree_digest) || return 1
  page=$(page_digest) || return 1
  modules=$(sha1sum <"$REPO_ROOT/package-lock.json" | cut -c1-16) || return 1
  build_cached_tree "$tree" || return 1
  # The page the colour serves at GET / (so the page always speaks the live colour's protocol).
  build_cached_page "$page" || return 1
  if [[ -f $dir/modules-digest && $(<"$dir/modules-digest") == "$modules" && -d $dir/node_modules ]]; then
    # The colour's previous node_modules came from the same lock file: kept (14,000 links
    # to remove and make again cost seconds on a busy disk), everything else replaced.
    find "$dir" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name modules-digest -exec rm -rf {} + || return 1
  else
    rm -rf "$dir"
    mkdir -p "$dir"
    # Its own node_modules (hard links where the filesystem allows, else a copy), so a
    # later npm ci in the tree cannot change what a running colour loads.
    cp -al "$REPO_ROOT/node_modules" "$dir/node_modules" 2>/dev/null ||
      cp -a "$REPO_ROOT/node_modules" "$dir/node_modules" || return 1
    echo "$modules" >"$dir/modules-digest"
  fi
  cp -a "$BUILD_CACHE/tree/." "$dir/" || return 1
  cp -a "$BUILD_CACHE/page" "$dir/page" || return 1
  cp "$REPO_ROOT/package.json" "$dir/package.json" || return 1
  echo "$tree-$page" >"$dir/source-digest"
}

# release_stale COLOUR: true when the colour has no release or it was built from other sources.
release_stale() {
  local recorded
  recorded=$(release_dir "$1")/source-digest
  [[ -f $recorded && $(<"$recorded") == "$(release_digest)" ]] && return 1
  return 0
}

# replica_env COLOUR INDEX: the environment of one replica, as NAME=value words.
replica_env() {
  echo "PORT=$(replica_port "$1" "$2")" "HOST=127.0.0.1" "APP_VERSION=$1" "REPLICA_ID=replica-$1-$2" \
    "REDIS_URL=redis://127.0.0.1:$REDIS_PORT" "HEARTBEAT_INTERVAL_MS=$HEARTBEAT_INTERVAL_MS"
}

# start_colour COLOUR TIMEOUT_S: starts REPLICAS replicas from the colour's release
# and waits until every one answers /readyz 200.
start_colour() {
  local colour=$1 timeout=$2 main i problem
  main=$(release_dir "$colour")/services/gateway/main.js
  if [[ ! -f $main ]]; then
    log "no release for $colour: build it first"
    return 1
  fi
  # Callers run this under || (set -e is off here): the check's status must be tested,
  # or a bad variable surfaces only as replicas dying during start-up.
  # shellcheck disable=SC2046 # word splitting of NAME=value pairs is intended
  if ! problem=$(env $(replica_env "$colour" 1) node "$main" --check-config 2>&1 >/dev/null); then
    log "the $colour replicas' configuration is invalid, none started: ${problem:-no reason given}"
    return 1
  fi
  for ((i = 1; i <= REPLICAS; i++)); do
    if pid_alive "replica-$colour-$i"; then
      log "replica-$colour-$i already running"
      continue
    fi
    # Fail the step (the caller cleans up), do not exit: promote.sh must still tear down.
    if port_in_use "$(replica_port "$colour" "$i")"; then
      log "port $(replica_port "$colour" "$i") (replica-$colour-$i) is already in use by another process"
      return 1
    fi
    # shellcheck disable=SC2046
    start_process "replica-$colour-$i" env $(replica_env "$colour" "$i") node "$main"
  done
  for ((i = 1; i <= REPLICAS; i++)); do
    wait_for_replica "$colour" "$i" "$timeout" || return 1
  done
}

# wait_for_replica COLOUR INDEX TIMEOUT_S: until /readyz answers 200; fails at once
# (with the end of its log) when the replica exits instead.
wait_for_replica() {
  local name=replica-$1-$2 url deadline=$((SECONDS + $3))
  url=http://127.0.0.1:$(replica_port "$1" "$2")/readyz
  until [[ $(http_status "$url") == 200 ]]; do
    if ! pid_alive "$name"; then
      log "$name exited during start-up; last lines of $LOG_DIR/$name.log:"
      tail -n 3 "$LOG_DIR/$name.log" >&2
      return 1
    fi
    ((SECONDS < deadline)) || {
      log "$name not ready after $3 s"
      return 1
    }
    sleep 0.1
  done
  log "$name ready"
}

# stop_colour COLOUR TIMEOUT_S: SIGTERM to every replica of COLOUR at once.
stop_colour() {
  local names
  mapfile -t names < <(replica_names "$1")
  stop_processes "$2" "${names[@]}"
}
