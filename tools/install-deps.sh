#!/usr/bin/env bash
# Installs what building, testing and running the stack need on Debian/Ubuntu:
# node modules (npm ci, when the lock file changed), redis-server and nginx
# (apt-get, when missing and running as root). Safe to run again: it only does what is missing.
#   tools/install-deps.sh           what the stack needs
#   tools/install-deps.sh --test    also Debian's chromium, for the page's browser test
#                                   (playwright-core drives it; no browser is ever downloaded)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Debian installs nginx under sbin, which is not on a regular user's PATH.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

readonly NODE_MAJOR_MIN=20

die() {
  echo "install-deps: $*" >&2
  exit 1
}

check_node() {
  command -v node >/dev/null || die "Node.js ${NODE_MAJOR_MIN}+ is required (https://nodejs.org or your distribution's nodejs package)"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= NODE_MAJOR_MIN)) || die "Node.js ${NODE_MAJOR_MIN}+ is required, found $(node --version)"
}

install_debian_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v nginx >/dev/null || missing+=(nginx)
  # tests/page.e2e.test.ts looks for /usr/bin/chromium (or CHROMIUM_PATH) and fails without it.
  if [[ $for_tests == yes && -z ${CHROMIUM_PATH:-} && ! -x /usr/bin/chromium ]]; then missing+=(chromium); fi
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) -ne 0 ]]; then
    die "missing ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}' and try again"
  fi
  echo "install-deps: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_node_modules() {
  # npm ci only when node_modules is missing or older than the lock file.
  if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --no-audit --no-fund
  fi
}

for_tests=no
case ${1:-} in
  --test) for_tests=yes ;;
  '') ;;
  *) die "unknown option $1 (usage: tools/install-deps.sh [--test])" ;;
esac

check_node
install_debian_packages
install_node_modules
