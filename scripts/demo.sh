#!/usr/bin/env bash
# The demo on a fresh Linux machine, as root: installs what it needs, builds, and runs `ha-nginx demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-packages.sh
[[ -d node_modules ]] || npm ci --no-audit --no-fund
npm run build --silent
exec node dist/cli.js demo "$@"
