#!/usr/bin/env bash
# Rebuilds the explorer's bundle (node/rpc/explorer_bundle, shipped in the package) from
# explorer/: installs the pinned npm packages when they are missing, then runs the build.
# Pass --out DIR to build elsewhere (the freshness test does). Commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x explorer/node_modules/.bin/esbuild ]; then
  npm ci --prefix explorer --no-audit --no-fund --loglevel=error
fi
node explorer/build.mjs "$@"
