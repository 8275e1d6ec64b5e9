#!/usr/bin/env bash
# Debian packages for the install scripts: apt-get as root, through `sudo -n` for a
# user with passwordless sudo, and otherwise one line that names what to install.
# Source it; it defines as_root and apt_install, nothing else.

# as_root CMD...: CMD as root (itself when root, else `sudo -n`), or false.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}

# apt_install PREFIX PACKAGE WHY [PACKAGE WHY]...: installs the packages with apt-get,
# saying first what each is for; exits naming them when neither root nor sudo -n can.
apt_install() {
  local prefix=$1 packages=() why=() i
  shift
  while (($# >= 2)); do
    packages+=("$1") && why+=("$2")
    shift 2
  done
  ((${#packages[@]} > 0)) || return 0
  if ! as_root true; then
    echo "$prefix: missing ${packages[*]}, and neither root nor passwordless sudo to install them: run 'sudo apt-get install -y ${packages[*]}' and try again" >&2
    exit 1
  fi
  local via=root
  [[ $(id -u) -eq 0 ]] || via='sudo -n'
  echo "$prefix: installing Debian packages with apt-get (as $via):" >&2
  for i in "${!packages[@]}"; do printf '  %-20s %s\n' "${packages[$i]}" "${why[$i]}" >&2; done
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  echo "$prefix: installed ${packages[*]}" >&2
}
