#!/usr/bin/env bash
# Installs what building, testing and running the stack need on Debian/Ubuntu:
# node modules (npm ci, when the lock file changed), redis-server and nginx
# (apt-get, when missing and running as root). Safe to run again: it only does what is
# missing, and says what it installs and why, once, before it does.
#   tools/stack/install-deps.sh           what the stack needs
#   tools/stack/install-deps.sh --test    also Debian's chromium, for the page's browser test
#                                   (playwright-core drives it; no browser is ever downloaded),
#                                   and python3-websockets, for the README's Python example
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
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

# python_websockets_present: Debian's python3 can import websockets (the README's Python example).
python_websockets_present() {
  [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import websockets' 2>/dev/null
}

install_debian_packages() {
  local missing=() why=()
  command -v redis-server >/dev/null || { missing+=(redis-server) && why+=("the stack's and the tests' Redis"); }
  command -v nginx >/dev/null || { missing+=(nginx) && why+=("the stack's front, which promote.sh flips between colours"); }
  if [[ $for_tests == yes ]]; then
    # tests/page.e2e.test.ts looks for /usr/bin/chromium (or CHROMIUM_PATH) and fails without it.
    if [[ -z ${CHROMIUM_PATH:-} && ! -x /usr/bin/chromium ]]; then
      missing+=(chromium) && why+=("the page's browser test (tests/page.e2e.test.ts)")
    fi
    python_websockets_present || { missing+=(python3-websockets) && why+=("the README's Python example (tests/readme-examples.test.ts)"); }
  fi
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) -ne 0 ]]; then
    die "missing ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}' and try again"
  fi
  local i
  echo "install-deps: installing Debian packages with apt-get (running as root; otherwise it only says what is missing):" >&2
  for i in "${!missing[@]}"; do printf '  %-20s %s\n' "${missing[$i]}" "${why[$i]}" >&2; done
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  echo "install-deps: installed ${missing[*]}" >&2
}

install_node_modules() {
  # npm ci only when node_modules is missing or older than the lock file.
  if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    echo "install-deps: npm ci (node_modules is missing or older than package-lock.json)" >&2
    npm ci --no-audit --no-fund
  fi
}

for_tests=no
case ${1:-} in
  --test) for_tests=yes ;;
  '') ;;
  *) die "unknown option $1 (usage: tools/stack/install-deps.sh [--test])" ;;
esac

check_node
install_debian_packages
install_node_modules
