#!/usr/bin/env bash
# promtool's checks of observability/prometheus/ and amtool's of observability/alertmanager/
# (make check-prometheus, part of make test): the native config as tools/stack/stack-lib.sh
# renders it, beside its rules and its file_sd target lists (so promtool finds every file
# it names, and warns about none), the Compose config's syntax, the rules, the rules' unit
# tests, and the Alertmanager config as dev-up renders it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
readonly config_dir=observability/prometheus

# render_like_the_stack DIR: prometheus.yml and alerts.yml in DIR, and an empty target
# list for each targets/*.json the config names (the stack writes the real ones).
render_like_the_stack() {
  local dir=$1 target
  cp "$config_dir/prometheus.yml" "$config_dir/alerts.yml" "$dir/"
  mkdir -p "$dir/targets"
  while read -r target; do
    echo '[]' >"$dir/$target"
  done < <(grep -o 'targets/[A-Za-z0-9_-]*\.json' "$config_dir/prometheus.yml" | sort -u)
}

main() {
  command -v promtool >/dev/null || {
    echo "check-prometheus: promtool is not installed (make test-deps installs Debian's prometheus)" >&2
    exit 1
  }
  local rendered
  rendered=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: the folder is known here
  trap "rm -rf '$rendered'" EXIT
  render_like_the_stack "$rendered"
  promtool check config "$rendered/prometheus.yml"
  promtool check config --syntax-only "$config_dir/prometheus.compose.yml"
  promtool check rules "$config_dir/alerts.yml"
  promtool test rules "$config_dir/alerts.test.yml"
  command -v amtool >/dev/null || {
    echo "check-prometheus: amtool is not installed (make test-deps installs Debian's prometheus-alertmanager)" >&2
    exit 1
  }
  # The Alertmanager config as dev-up renders it, with a webhook.
  tools/stack/render-alertmanager.sh "$rendered/alertmanager.yml" 10s 1m http://127.0.0.1:1/
  amtool check-config "$rendered/alertmanager.yml"
}

main "$@"
