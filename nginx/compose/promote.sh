#!/bin/sh
# shellcheck disable=SC2016 # $active_colour is an Nginx variable, written literally
# In the Compose stack's Nginx container: flip traffic to a colour, as the
# original `docker exec nginx_proxy promote.sh green` did. The colour must be
# running; tools/compose/compose-promote.sh does the whole release around this step.
set -eu
colour=${1:-}
case $colour in
  blue | green) ;;
  *) echo "usage: promote.sh blue|green" >&2; exit 2 ;;
esac
conf=/run/wschat-nginx/active-colour.conf
previous=$(sed -n 's/^set \$active_colour \([a-z]*\);$/\1/p' "$conf")
printf 'set $active_colour %s;\n' "$colour" >"$conf.tmp"
mv -f "$conf.tmp" "$conf"
if ! nginx -p /run/wschat-nginx/ -c /run/wschat-nginx/nginx.conf -t -q; then
  printf 'set $active_colour %s;\n' "$previous" >"$conf"
  echo "nginx -t failed; $previous stays live" >&2
  exit 1
fi
nginx -p /run/wschat-nginx/ -c /run/wschat-nginx/nginx.conf -s reload
echo "live colour: $previous -> $colour"
