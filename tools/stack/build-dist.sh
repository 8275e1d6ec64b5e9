#!/usr/bin/env bash
# Builds dist/ (npm run build: the compiled tree and the page) unless it is current: it
# records the digest of the sources' content it was built from (the same digests as a
# release, tools/stack/stack-lib.sh), and a build from the same sources is skipped.
#   tools/stack/build-dist.sh            build when a source changed (make loadtest)
#   tools/stack/build-dist.sh --force    build anyway
set -euo pipefail
# shellcheck source=tools/stack/stack-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/stack-lib.sh"

main() {
  local digest stamp=$REPO_ROOT/dist/source-digest force=no
  case ${1:-} in
    --force) force=yes ;;
    '') ;;
    *) die "unknown option $1 (usage: tools/stack/build-dist.sh [--force])" ;;
  esac
  # Taken before the build: an edit made while it runs makes the next run build again.
  digest=$(release_digest)
  if [[ $force == no && -f $stamp && $(<"$stamp") == "$digest" ]]; then
    log "dist/ is current (sources $digest): not rebuilt"
    return
  fi
  rm -f "$stamp"
  (cd "$REPO_ROOT" && npm run --silent build)
  echo "$digest" >"$stamp"
  log "built dist/ (sources $digest)"
}

main "$@"
