#!/usr/bin/env bash
# Watches a running stack from a terminal:
#   1. every error line of every process's log as it is written
#   2. every INTERVAL seconds (default 10) the top-5 counters, summed over the
#      running replicas, from their /metrics
#
#   tools/monitor.sh [--duration N] [--interval S] [--compose]
#
# --duration N stops it after N seconds (CI runs it for 20). --compose watches the
# Compose stack (compose logs; metrics through exec, Docker or podman) instead of the
# native one (.run/logs and the replicas' loopback ports).
set -euo pipefail
# shellcheck source=tools/stack/stack-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack/stack-lib.sh"
# compose, containers, engine: Docker or podman, as the Compose scripts choose them.
# shellcheck source=tools/compose/compose-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/compose/compose-lib.sh"

duration=0
interval=10
mode=native

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

while (($# > 0)); do
  case $1 in
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --interval) interval=${2:?--interval needs seconds}; shift 2 ;;
    --compose) mode=compose; shift ;;
    -h | --help) usage ;;
    *) echo "monitor: unknown option $1" >&2; usage ;;
  esac
done
[[ $duration =~ ^[0-9]+$ && $interval =~ ^[1-9][0-9]*$ ]] || die "--duration and --interval take whole seconds"

# Lines that count as errors: replicas' JSON at level error, Nginx's [error] and
# worse, Redis's warnings ("#"), anything else that says ERROR.
readonly ERROR_PATTERN='"level":"error"|\[(error|crit|alert|emerg)\]| # |ERROR'

# The metrics of every running replica, one text after another, on stdout.
native_metrics() {
  local colour i
  for colour in "${COLOURS[@]}"; do
    for ((i = 1; i <= REPLICAS; i++)); do
      pid_alive "replica-$colour-$i" || continue
      http_body "http://127.0.0.1:$(replica_port "$colour" "$i")/metrics"
    done
  done
}

# Running containers only: a retired colour's stopped ones have nothing to say.
compose_metrics() {
  local id
  for id in $(containers app_blue) $(containers app_green); do
    engine exec "$id" node -e 'fetch("http://127.0.0.1:8000/metrics").then((r) => r.text()).then((t) => process.stdout.write(t))' || true
  done
}

# Reads Prometheus texts on stdin; prints the five largest counters, summed per series.
# Its own few lines rather than tools/harness/prometheus-text.ts (the reader every
# TypeScript caller uses): monitor.sh runs where dist/ need not be built (a stack
# dev-up compiled into its run folder, or the Compose stack).
# shellcheck disable=SC2016 # JavaScript, not shell: its ${...} are template literals
readonly TOP_COUNTERS='
let text = "";
process.stdin.on("data", (chunk) => (text += chunk)).on("end", () => {
  const counters = new Set(), totals = new Map();
  let replicas = 0;
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) counter$/.exec(line);
    if (type) counters.add(type[1]);
    if (line.startsWith("process_start_time_seconds ")) replicas += 1;
    const sample = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!sample || !counters.has(sample[1].replace(/_total$/, "")) && !counters.has(sample[1])) continue;
    const series = sample[1] + (sample[2] ?? "");
    totals.set(series, (totals.get(series) ?? 0) + Number(sample[3]));
  }
  const top = [...totals].sort((a, b) => b[1] - a[1]).slice(0, 5);
  const width = Math.max(...top.map(([series]) => series.length), 10);
  console.log(`${new Date().toISOString().slice(11, 19)}  top counters over ${replicas} replica(s)`);
  for (const [series, value] of top) console.log(`  ${series.padEnd(width)}  ${Math.round(value).toLocaleString("en").padStart(12)}`);
  if (top.length === 0) console.log("  (no replica answered)");
});'

print_top_counters() {
  if [[ $mode == compose ]]; then compose_metrics; else native_metrics; fi | node -e "$TOP_COUNTERS"
}

# Prints each error line under the name of the log it came from (tail -v writes a
# "==> file <==" line whenever it switches files). A read loop, not awk: Debian's
# awk (mawk) reads a pipe in blocks, which would hold errors back for seconds.
filter_errors() {
  local line source=''
  while IFS= read -r line; do
    if [[ $line =~ ^==\>\ (.*)\ \<==$ ]]; then
      source=${BASH_REMATCH[1]##*/}
    elif [[ $line =~ $ERROR_PATTERN ]]; then
      printf 'ERROR [%s] %s\n' "$source" "$line"
    fi
  done
}

# Starts following the logs in the background; sets `follower` to the pid of the
# follower itself, so that killing it ends the filter too (it reads EOF).
follow_errors() {
  if [[ $mode == compose ]]; then
    compose logs --follow --since 0s > >(grep --line-buffered -E "$ERROR_PATTERN" | sed -u 's/^/ERROR /') 2>&1 &
  else
    tail -v -n 0 -F "$LOG_DIR"/*.log 2>/dev/null > >(filter_errors) &
  fi
  follower=$!
}

check_stack_up() {
  if [[ $mode == compose ]]; then
    engine_detect
    engine_reachable || die "the container engine does not answer ($ENGINE; make docker-up starts what the podman path needs)"
    [[ -n $(containers nginx) ]] || die "the Compose stack is not up (make docker-up)"
  else
    load_stack_settings
    if [[ ! -f $STACK_ENV ]] || ! pid_alive nginx; then die "the stack is not up (make dev-up)"; fi
  fi
}

main() {
  check_stack_up
  log "monitoring the $mode stack: errors as they happen, top counters every ${interval}s$( ((duration > 0)) && echo ", for ${duration}s")"
  local started=$SECONDS
  follower=''
  follow_errors
  trap 'kill "$follower" 2>/dev/null || true' EXIT
  trap 'exit 130' INT TERM
  while ((duration == 0 || SECONDS - started < duration)); do
    print_top_counters
    local wait_s=$interval
    ((duration == 0 || SECONDS - started + wait_s <= duration)) || wait_s=$((duration - (SECONDS - started)))
    ((wait_s > 0)) && sleep "$wait_s"
  done
  log "monitor stopped after $((SECONDS - started))s"
}

main
