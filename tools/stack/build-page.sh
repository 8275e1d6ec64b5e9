#!/usr/bin/env bash
# Builds the page the replicas serve at GET / into OUT_DIR (default dist/page):
# services/gateway/public/*.ts and the client library compiled for the browser
# (services/gateway/public/tsconfig.json), then the page's HTML, CSS and icon beside
# its script. `npm run build` runs it for dist/, tools/stack/stack-lib.sh for each release.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
readonly out=${1:-dist/page}
readonly public=services/gateway/public

# The folder is replaced whole: refuse anything that is not a page folder.
[[ $(basename "$out") == page ]] || { echo "build-page: OUT_DIR must end in /page (got $out)" >&2; exit 2; }
rm -rf "$out"
node_modules/.bin/tsc -p "$public/tsconfig.json" --outDir "$out"
cp "$public/index.html" "$public/style.css" "$public/favicon.svg" "$out/$public/"
