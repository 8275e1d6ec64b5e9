#!/bin/sh
# shellcheck disable=SC2016 # $active_colour is an Nginx variable, written literally
# Runs from the nginx image's /docker-entrypoint.d before Nginx starts: the
# folders the template's relative paths need, and the live colour (ACTIVE_COLOUR,
# default blue) unless a promotion already chose one.
set -eu
mkdir -p /etc/nginx/logs /etc/nginx/temp
[ -f /etc/nginx/active-colour.conf ] ||
  printf 'set $active_colour %s;\n' "${ACTIVE_COLOUR:-blue}" >/etc/nginx/active-colour.conf
