#!/bin/sh
# shellcheck disable=SC2016 # $active_colour is an Nginx variable, written literally
# The Compose stack's Nginx (compose.yml runs this instead of the image's
# entrypoint, so nginx:1.27-alpine and the Debian stand-in start the same way):
#   1. nginx.conf from the template, every placeholder from the environment
#      (deploy/env/nginx.env); a missing one is named and stops the start
#   2. resolver.conf: the engine's DNS server, from /etc/resolv.conf (Docker's embedded
#      127.0.0.11, podman's network gateway)
#   3. the live colour (ACTIVE_COLOUR, default blue) unless a promotion chose one
#   4. nginx -t, then Nginx in the foreground
# Everything it writes, and Nginx's prefix (pid, temp files), is under $conf, a tmpfs:
# the container's root is read-only.
set -eu
src=/etc/nginx/wschat
conf=/run/wschat-nginx
template=/etc/nginx/template/nginx.conf.template

placeholders=$(grep -o '\${[A-Z_]*}' "$template" | sort -u | tr -d '${}')
for name in $placeholders; do
  eval "value=\${$name-}"
  # shellcheck disable=SC2154 # assigned by the eval above
  [ -n "$value" ] || { echo "start.sh: $name is not set (deploy/env/nginx.env)" >&2; exit 2; }
done
# shellcheck disable=SC2086 # one word per placeholder, on purpose
envsubst "$(printf '${%s} ' $placeholders)" <"$template" >"$conf/nginx.conf"

resolver=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)
[ -n "$resolver" ] || { echo "start.sh: no nameserver in /etc/resolv.conf" >&2; exit 1; }
case $resolver in *:*) resolver="[$resolver]" ;; esac
printf 'resolver %s valid=5s ipv6=off;\n' "$resolver" >"$conf/resolver.conf"
cp "$src/upstreams.conf" "$conf/upstreams.conf"
cp /etc/nginx/wschat-headers/security-headers.conf "$conf/security-headers.conf"
echo "# Compose serves plain http:// and ws://; TLS terminates in front of it." >"$conf/tls.conf"

mkdir -p "$conf/logs" "$conf/temp"
[ -f "$conf/active-colour.conf" ] ||
  printf 'set $active_colour %s;\n' "${ACTIVE_COLOUR:-blue}" >"$conf/active-colour.conf"

nginx -p "$conf/" -c "$conf/nginx.conf" -t -q
exec nginx -p "$conf/" -c "$conf/nginx.conf"
