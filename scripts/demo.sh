#!/usr/bin/env bash
# The demo on a fresh Linux machine, as root: installs what it needs, builds, and runs `ha-nginx demo`.
# With --cluster it first builds the test bed's Kubernetes binaries (Go; cached after the first, slow, build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-packages.sh
[[ -d node_modules ]] || npm ci --no-audit --no-fund
npm run build --silent
for arg in "$@"; do
  if [[ $arg == --cluster ]]; then
    bash scripts/k8s-binaries.sh > /dev/null
    break
  fi
done
exec node dist/cli.js demo "$@"
