#!/usr/bin/env bash
# Shared helpers for the stack scripts: one run folder, pidfiles for everything
# started, waits with deadlines, and stops that only touch recorded pids.
# Source it; it defines functions and the RUN_DIR layout, nothing else.

# Debian installs nginx and redis tools under sbin, which is not on a regular user's PATH.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Absolute, so that Nginx's -p/-c and every later cd agree on it.
RUN_DIR=$(realpath -m "${RUN_DIR:-$REPO_ROOT/.run}")
LOG_DIR=$RUN_DIR/logs
PID_DIR=$RUN_DIR/pids

log() {
  printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

die() {
  log "error: $*"
  exit 1
}

# now_ms: wall clock in milliseconds (bash 5's EPOCHREALTIME, no subprocess).
now_ms() {
  local micros=${EPOCHREALTIME/./}
  echo $((micros / 1000))
}

# start_time PID: when PID started (clock ticks since boot, /proc/PID/stat field 22).
start_time() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # After the comm field, the start time is the 20th field (22nd overall).
  read -r -a fields <<<"$stat"
  echo "${fields[19]}"
}

# running PID: true while PID runs. An exited process whose parent has not reaped
# it yet (a zombie: our processes outlive the shell that started them) has exited.
running() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  [[ ${stat##*) } != Z* ]]
}

# pid_of NAME: the pid recorded in NAME's pidfile ("PID STARTTIME").
pid_of() {
  local pid _
  read -r pid _ <"$PID_DIR/$1.pid" 2>/dev/null || return 1
  echo "$pid"
}

# pid_alive NAME: true when NAME's pidfile names a process that runs and is the one
# we started: a pid reused by another process (after a reboot) does not count.
pid_alive() {
  local pidfile=$PID_DIR/$1.pid pid started now
  [[ -f $pidfile ]] || return 1
  read -r pid started <"$pidfile" || return 1
  [[ -n $pid ]] && running "$pid" || return 1
  now=$(start_time "$pid") || return 0
  [[ -z $started || $started == "$now" ]]
}

# start_process NAME CMD...: runs CMD in the background with its log in LOG_DIR/NAME.log.
start_process() {
  local name=$1
  shift
  mkdir -p "$LOG_DIR" "$PID_DIR"
  # Its own session (setsid): a Ctrl-C in the terminal that runs promote.sh must
  # not reach the replicas. fd 9 is promote.sh's lock: a child must not hold it.
  setsid nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 9>&- &
  local pid=$!
  echo "$pid $(start_time "$pid" || true)" >"$PID_DIR/$name.pid"
}

# stop_processes TIMEOUT_S NAME...: SIGTERM to all at once, wait up to TIMEOUT_S for
# every one to exit, SIGKILL the rest. Returns 1 when any had to be killed.
stop_processes() {
  local timeout=$1 name pid deadline status=0
  shift
  local -A pids=()
  for name in "$@"; do
    [[ -f $PID_DIR/$name.pid ]] || continue
    pid=$(pid_of "$name") || continue
    if pid_alive "$name"; then
      kill -TERM "$pid"
      pids[$name]=$pid
    else
      rm -f "$PID_DIR/$name.pid"
    fi
  done
  deadline=$((SECONDS + timeout))
  for name in "${!pids[@]}"; do
    pid=${pids[$name]}
    while running "$pid"; do
      if ((SECONDS >= deadline)); then
        log "$name (pid $pid) still running after ${timeout}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        status=1
        break
      fi
      sleep 0.05
    done
    log "stopped $name (pid $pid)"
    rm -f "$PID_DIR/$name.pid"
  done
  return $status
}

# stop_process NAME [TIMEOUT_S]: stop_processes for one (default 10 s).
stop_process() {
  stop_processes "${2:-10}" "$1"
}

# port_in_use PORT: true when something accepts connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# require_free_port PORT WHAT: dies naming WHAT when the port is taken, instead of
# letting a stranger on that port answer our readiness checks.
require_free_port() {
  ! port_in_use "$1" || die "port $1 ($2) is already in use by another process"
}

# http_status URL: prints the HTTP status of GET URL, 000 when nothing answers (Node is always present).
http_status() {
  node -e '
    fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
      .then((r) => console.log(r.status))
      .catch(() => console.log("000"));
  ' "$1"
}

# http_body URL: prints the body of GET URL on a fresh connection (empty when nothing answers).
http_body() {
  node -e '
    fetch(process.argv[1], { headers: { connection: "close" }, signal: AbortSignal.timeout(2000) })
      .then((r) => r.text())
      .then((t) => process.stdout.write(t))
      .catch(() => {});
  ' "$1"
}

# metric_sum URL NAME: the sum of every series of metric NAME at URL ("-" when unreachable).
# A line filter, not tools/harness/prometheus-text.ts (the reader every TypeScript caller
# uses): status.sh runs where dist/ need not be built (dev-up compiles into the run folder),
# and prom-client writes one sample a line, the value last.
metric_sum() {
  node -e '
    const [url, name] = process.argv.slice(1);
    fetch(url, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.text())
      .then((text) => {
        const sum = text.split("\n")
          .filter((line) => line.startsWith(name + " ") || line.startsWith(name + "{"))
          .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
        console.log(sum);
      })
      .catch(() => console.log("-"));
  ' "$1" "$2"
}

# wait_for_http URL STATUS TIMEOUT_S: waits until GET URL answers STATUS.
wait_for_http() {
  local url=$1 want=$2 timeout=$3 deadline=$((SECONDS + $3))
  until [[ $(http_status "$url") == "$want" ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
  log "$url answered $want"
}

# wait_for_redis PORT TIMEOUT_S: waits until redis-cli PING answers PONG.
wait_for_redis() {
  local port=$1 deadline=$((SECONDS + $2))
  until [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# step NAME / step_done: a release step's start and duration, in promote.sh and k8s-promote.sh.
step_started=0
step() {
  step_started=$(now_ms)
  log "step $1"
}
step_done() {
  log "  done in $(($(now_ms) - step_started)) ms"
}
