#!/usr/bin/env bash
# Creates the Compose stack's secrets file, deploy/.env, when it is missing: the
# password of Redis's user wschat and the key of the hash that names session keys,
# each 32 random bytes in hex. Compose reads deploy/.env by itself (it is the project
# directory's .env), so `docker compose -f deploy/compose.yml up` works once it
# exists, and stops with a message naming this script while it does not. Readable by
# its owner only, ignored by git; never overwritten, so a running stack keeps its
# secrets (remove the file and the stack together to change them).
#   tools/compose/compose-secrets.sh        prints the file's path
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SECRETS_FILE=${WSCHAT_SECRETS_FILE:-$REPO_ROOT/deploy/.env}

random_hex() {
  if command -v openssl >/dev/null; then
    openssl rand -hex 32
  else
    node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("hex") + "\n")'
  fi
}

main() {
  if [[ ! -s $SECRETS_FILE ]]; then
    local tmp
    umask 077
    tmp=$(mktemp "$SECRETS_FILE.XXXXXX")
    {
      echo "# The Compose stack's secrets (tools/compose/compose-secrets.sh): never commit this file."
      echo "WSCHAT_REDIS_PASSWORD=$(random_hex)"
      echo "WSCHAT_SESSION_KEY_SECRET=$(random_hex)"
    } >"$tmp"
    mv -f "$tmp" "$SECRETS_FILE"
    printf '%s created\n' "$SECRETS_FILE" >&2
  fi
  chmod 600 "$SECRETS_FILE"
  echo "$SECRETS_FILE"
}

main "$@"
