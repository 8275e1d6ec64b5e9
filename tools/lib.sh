#!/usr/bin/env bash
# Shared helpers for the stack scripts: one run folder, pidfiles for everything
# started, waits with deadlines, and stops that only touch recorded pids.
# Source it; it defines functions and the RUN_DIR layout, nothing else.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${RUN_DIR:-$REPO_ROOT/.run}
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

# pid_alive NAME: true when NAME's pidfile names a running process.
pid_alive() {
  local pidfile=$PID_DIR/$1.pid pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# start_process NAME CMD...: runs CMD in the background with its log in LOG_DIR/NAME.log.
start_process() {
  local name=$1
  shift
  mkdir -p "$LOG_DIR" "$PID_DIR"
  nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 &
  echo $! >"$PID_DIR/$name.pid"
}

# stop_process NAME [TIMEOUT_S]: SIGTERM, wait up to TIMEOUT_S (default 10), then SIGKILL.
stop_process() {
  local name=$1 timeout=${2:-10} pidfile=$PID_DIR/$1.pid pid deadline
  [[ -f $pidfile ]] || return 0
  pid=$(<"$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        log "$name (pid $pid) still running after ${timeout}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

# http_status URL: prints the HTTP status of GET URL, 000 when nothing answers (Node is always present).
http_status() {
  node -e '
    fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
      .then((r) => console.log(r.status))
      .catch(() => console.log("000"));
  ' "$1"
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
