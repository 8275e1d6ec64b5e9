#!/usr/bin/env bash
# Writes the Alertmanager config the stack runs to OUT: observability/alertmanager/
# alertmanager.yml with its placeholders filled, and a webhook_configs entry on the
# receiver when a webhook URL is given. Used by dev-up (stack-lib.sh) and by make
# check-prometheus, so the checked config is the one that runs.
#   tools/stack/render-alertmanager.sh OUT GROUP_WAIT GROUP_INTERVAL [WEBHOOK_URL]
set -euo pipefail
readonly out=$1 group_wait=$2 group_interval=$3 webhook=${4:-}
template=$(dirname "$0")/../../observability/alertmanager/alertmanager.yml
{
  # shellcheck disable=SC2016 # the placeholders are literal text
  sed -e 's|${ALERT_GROUP_WAIT}|'"$group_wait"'|g' -e 's|${ALERT_GROUP_INTERVAL}|'"$group_interval"'|g' "$template"
  if [[ -n $webhook ]]; then
    printf '    webhook_configs:\n      - url: %s\n        send_resolved: true\n' "$webhook"
  fi
} >"$out"
