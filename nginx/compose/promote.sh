#!/bin/sh
# shellcheck disable=SC2016 # $active_colour is an Nginx variable, written literally
# In the Compose stack's Nginx container: flip traffic to a colour, as the
# original `docker exec nginx_proxy promote.sh green` did;
# tools/compose/compose-promote.sh does the whole release around this step.
# Refused (exit 3, the reason on stderr, the live colour untouched) unless the
# colour's service name resolves on the Compose network and every address it
# resolves to answers GET /readyz with 2xx: traffic never goes to a colour that
# is not there or not ready. The live colour is recorded in $state, a named
# volume, so a recreated container starts on it (start.sh).
set -eu
colour=${1:-}
case $colour in
  blue | green) ;;
  *) echo "usage: promote.sh blue|green" >&2; exit 2 ;;
esac
conf=/run/wschat-nginx/active-colour.conf
state=/var/lib/wschat-nginx
port=${REPLICA_PORT:-8000}
previous=$(sed -n 's/^set \$active_colour \([a-z]*\);$/\1/p' "$conf")

refuse() {
  echo "promote.sh: refused to flip to $colour: $*; $previous stays live" >&2
  exit 3
}

# addresses NAME: the IPv4 addresses NAME resolves to through the engine's DNS, one
# a line (getent on glibc and musl; busybox nslookup where getent is missing).
addresses() {
  if command -v getent >/dev/null 2>&1; then
    getent ahostsv4 "$1" 2>/dev/null | awk '{ print $1 }' | sort -u
  else
    nslookup "$1" 2>/dev/null | awk '/^Name:/ { found = 1; next } found && /^Address/ { sub(/^Address[ 0-9]*: */, ""); print $1 }' |
      grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' | sort -u
  fi
}

# ready ADDRESS: the replica at ADDRESS answers /readyz with 2xx within 2 s (curl, or
# wget: busybox's on Alpine).
ready() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -m 2 -o /dev/null "http://$1:$port/readyz" 2>/dev/null
  elif command -v wget >/dev/null 2>&1; then
    wget -q -T 2 -O /dev/null "http://$1:$port/readyz" 2>/dev/null
  else
    refuse "no curl or wget in this container to ask /readyz with"
  fi
}

replicas=$(addresses "app_$colour")
[ -n "$replicas" ] || refuse "app_$colour resolves to no replica on the Compose network (not running)"
for address in $replicas; do
  ready "$address" || refuse "app_$colour replica $address does not answer /readyz"
done
if [ ! -d "$state" ] || [ ! -w "$state" ]; then refuse "$state (the volume that keeps the live colour) is not writable"; fi

printf 'set $active_colour %s;\n' "$colour" >"$conf.tmp"
mv -f "$conf.tmp" "$conf"
if ! nginx -p /run/wschat-nginx/ -c /run/wschat-nginx/nginx.conf -t -q; then
  printf 'set $active_colour %s;\n' "$previous" >"$conf"
  echo "nginx -t failed; $previous stays live" >&2
  exit 1
fi
# Recorded before the reload: a container recreated after this serves the new colour,
# which is ready; written and renamed, so a start reads one colour or the other.
echo "$colour" >"$state/live-colour.tmp"
mv -f "$state/live-colour.tmp" "$state/live-colour"
nginx -p /run/wschat-nginx/ -c /run/wschat-nginx/nginx.conf -s reload
echo "live colour: $previous -> $colour ($(echo "$replicas" | wc -l | tr -d ' ') replicas ready)"
