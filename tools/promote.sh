#!/usr/bin/env bash
# Blue/green promotion of the native stack:
#   1. build and start the next colour, wait for /readyz (the build reuses what is
#      current: tsc --incremental, nothing at all when no source changed)
#   2. smoke-test it directly (not through Nginx), each check printed with its
#      result and time; the heartbeat check probes the fleet channel instead of
#      waiting for the next tick (tests/smoke/fleet-probe.ts)
#   3. flip Nginx to it atomically, check /version through Nginx
#   4. retire the old colour: SIGTERM, its clients get bye + 1001 and reconnect
#      through Nginx to the new colour; wait for its processes to exit
#
#   tools/promote.sh [blue|green]     default: the colour that is not live
#
# Before the flip any failure tears the new colour down and leaves the live one
# untouched; a failed check after the flip flips back. A lock refuses a second
# promotion; the kernel releases it if this script dies, and a re-run first
# removes whatever a crashed run left of the target colour.
set -euo pipefail
# shellcheck source=tools/stack/stack-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack/stack-lib.sh"

readonly READY_TIMEOUT_S=15
readonly RETIRE_TIMEOUT_S=10

readonly SMOKE_TIMEOUT_S=120

# smoke_test COLOUR: tests/smoke/run.js of the colour's own release against its replicas.
smoke_test() {
  local colour=$1 urls=() i release
  for ((i = 1; i <= REPLICAS; i++)); do urls+=("http://127.0.0.1:$(replica_port "$colour" "$i")"); done
  release=$(release_dir "$colour")
  rm -f "$SMOKE_FAILURES"
  SMOKE_VERSION=$colour \
    SMOKE_REPLICAS="${urls[*]}" \
    SMOKE_LIVE_URL="$(stack_url)" \
    SMOKE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    SMOKE_HEARTBEAT_INTERVAL_MS="$HEARTBEAT_INTERVAL_MS" \
    SMOKE_FAILURES_FILE="$SMOKE_FAILURES" \
    timeout --foreground --kill-after=5 "$SMOKE_TIMEOUT_S" node "$release/tests/smoke/run.js" --timeout 20000 >&2 9>&-
}

# failed_checks: the smoke checks that failed, for the abort message.
failed_checks() {
  local names=()
  [[ -s $SMOKE_FAILURES ]] && mapfile -t names <"$SMOKE_FAILURES"
  if ((${#names[@]} == 0)); then
    echo "smoke tests failed (none reported: the runner itself failed, or took over ${SMOKE_TIMEOUT_S}s)"
  else
    local joined
    printf -v joined '%s; ' "${names[@]}"
    echo "smoke tests failed: ${joined%; }"
  fi
}

# abort_before_flip COLOUR REASON: the live colour was never touched.
abort_before_flip() {
  log "promotion failed before the flip: $2; tearing $1 down"
  stop_colour "$1" "$RETIRE_TIMEOUT_S" || true
  write_replica_targets
  die "promotion to $1 aborted ($2); $(live_colour) is still live"
}

main() {
  load_stack_settings
  SMOKE_FAILURES=$RUN_DIR/smoke-failures.txt
  if [[ ! -f $STACK_ENV ]] || ! pid_alive nginx; then die "the stack is not up (make dev-up)"; fi
  take_lock

  local live target started
  live=$(live_colour)
  target=${1:-$(other_colour "$live")}
  check_colour "$target"
  [[ $target != "$live" ]] || die "$target is already live"
  started=$(now_ms)
  log "promoting $live -> $target"

  if colour_running "$target"; then
    log "$target has processes left from an earlier run: stopping them first"
    stop_colour "$target" "$RETIRE_TIMEOUT_S" || true
  fi

  step "1/4 build and start $target ($REPLICAS replicas)"
  build_release "$target" 9>&- || abort_before_flip "$target" "build failed"
  start_colour "$target" "$READY_TIMEOUT_S" || abort_before_flip "$target" "it could not start or become ready"
  write_replica_targets
  step_done

  step "2/4 smoke-test $target directly"
  smoke_test "$target" || abort_before_flip "$target" "$(failed_checks)"
  step_done

  step "3/4 flip nginx to $target"
  set_live_colour "$target" || abort_before_flip "$target" "nginx rejected the flip"
  if ! wait_for_live_colour "$target" 10; then
    log "nginx does not answer $target: flipping back to $live"
    if ! set_live_colour "$live" || ! wait_for_live_colour "$live" 10; then
      log "error: the flip back to $live did not take either; check nginx now"
    fi
    abort_before_flip "$target" "nginx did not serve $target after the flip"
  fi
  step_done

  step "4/4 retire $live (SIGTERM, clients move to $target)"
  if ! stop_colour "$live" "$RETIRE_TIMEOUT_S"; then
    log "warning: $live did not exit within ${RETIRE_TIMEOUT_S}s and was killed"
  fi
  write_replica_targets
  step_done

  log "promotion to $target complete in $(($(now_ms) - started)) ms"
}

main "$@"
