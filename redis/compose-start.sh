#!/bin/sh
# The Compose stack's Redis (deploy/compose.yml runs this instead of the image's
# entrypoint, as the redis user, on a read-only root): an ACL file in /tmp (tmpfs)
# with the default user off and the user wschat with the rule of
# redis/wschat-user.acl, its password given as a SHA-256 so that the file never
# holds it; then redis-server on the Compose network. REDIS_PASSWORD comes from the
# secrets file that tools/compose/compose-secrets.sh generates.
set -eu
rule_file=/usr/local/etc/redis/wschat-user.acl
acl=/tmp/users.acl
[ -n "${REDIS_PASSWORD:-}" ] || { echo "compose-start.sh: REDIS_PASSWORD is not set (deploy/.env)" >&2; exit 2; }
rule=$(grep -v '^#' "$rule_file" | tr '\n' ' ')
[ -n "$rule" ] || { echo "compose-start.sh: no rule in $rule_file" >&2; exit 2; }
hash=$(printf '%s' "$REDIS_PASSWORD" | sha256sum | cut -d' ' -f1)
umask 077
printf 'user default off resetpass resetkeys resetchannels -@all\nuser wschat on #%s %s\n' "$hash" "$rule" >"$acl"
unset REDIS_PASSWORD
exec redis-server /usr/local/etc/redis/redis.conf --bind 0.0.0.0 --aclfile "$acl"
