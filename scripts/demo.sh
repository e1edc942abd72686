#!/usr/bin/env bash
# The demo on a fresh Linux machine, as root: installs what it needs, builds the agent it runs in the namespaces, and
# runs testing/demo/main.ts through tsx (testing/ is never compiled).
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
# One node process with tsx as its loader, so Ctrl-C reaches the demo once and it cleans up.
exec node --import tsx testing/demo/main.ts "$@"
