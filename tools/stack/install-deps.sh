#!/usr/bin/env bash
# Installs what building, testing and running the stack need on Debian/Ubuntu: Node.js
# (the machine's when >= 22, else the project's own under .tools/node:
# tools/stack/ensure-node.sh), node modules (npm ci, when the lock file changed),
# redis-server and nginx (apt-get as root, or through passwordless sudo; otherwise one
# line naming what to install). Safe to run again: it only does what is missing, and
# says what it installs and why, once, before it does.
#   tools/stack/install-deps.sh           what the stack needs
#   tools/stack/install-deps.sh --test    also what `make test` checks with:
#     chromium            the page's browser test (playwright-core drives Debian's; no
#                         browser is ever downloaded)
#     python3-websockets  the Python example of docs/client.md
#     iptables            the network-fault tests' dropped packets (run through sudo -n
#                         when not root)
#     the linter shellcheck, for make check-scripts
#     prometheus          promtool for make check-prometheus; the server for the dashboard test
#     prometheus-alertmanager  the alerting test's Alertmanager, and amtool for make check-prometheus
#     docker-compose      a Compose renderer for the deploy files' test, when neither
#                         `docker compose` nor `docker-compose` answers `version`
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# Debian installs nginx under sbin, which is not on a regular user's PATH.
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
# shellcheck source=tools/stack/apt-lib.sh
source tools/stack/apt-lib.sh

die() {
  echo "install-deps: $*" >&2
  exit 1
}

# python_websockets_present: Debian's python3 can import websockets (the Python example of docs/client.md).
python_websockets_present() {
  [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import websockets' 2>/dev/null
}

alertmanager_present() {
  command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null
}

# compose_renderer_present: a Compose that answers `version` (a docker CLI without the
# compose plugin does not: it takes `compose` for an unknown command).
compose_renderer_present() {
  docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1
}

install_debian_packages() {
  local wanted=()
  command -v redis-server >/dev/null || wanted+=(redis-server "the stack's and the tests' Redis")
  command -v nginx >/dev/null || wanted+=(nginx "the stack's front, which promote.sh flips between colours")
  if [[ $for_tests == yes ]]; then
    # tests/stack/page.e2e.test.ts looks for /usr/bin/chromium (or CHROMIUM_PATH) and fails without it.
    if [[ -z ${CHROMIUM_PATH:-} && ! -x /usr/bin/chromium ]]; then
      wanted+=(chromium "the page's browser test (tests/stack/page.e2e.test.ts)")
    fi
    python_websockets_present || wanted+=(python3-websockets "the Python example of docs/client.md (tests/integration/readme-examples.test.ts)")
    command -v iptables >/dev/null || wanted+=(iptables "the network-fault tests' dropped packets (tests/faults/network-faults.test.ts, tests/faults/redis-partition.test.ts)")
    command -v shellcheck >/dev/null || wanted+=(shellcheck "make check-scripts")
    command -v promtool >/dev/null && command -v prometheus >/dev/null ||
      wanted+=(prometheus "promtool for make check-prometheus; the server for tests/stack/dashboard.test.ts")
    alertmanager_present || wanted+=(prometheus-alertmanager "the alerts' notifications (tests/stack/alerting.test.ts)")
    compose_renderer_present || wanted+=(docker-compose "a Compose renderer for tests/static/deploy-files.test.ts")
  fi
  apt_install install-deps "${wanted[@]}"
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

tools/stack/ensure-node.sh
# The node the Makefile chose (it puts .tools/node first on PATH when it is the one);
# run by hand, the same choice is made here.
node_bin_dir=$(tools/stack/ensure-node.sh --bin-dir)
[[ -z $node_bin_dir || :$PATH: == *":$node_bin_dir:"* ]] || PATH=$node_bin_dir:$PATH
install_debian_packages
install_node_modules
