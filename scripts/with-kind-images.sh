#!/usr/bin/env bash
# Runs a command with what the kind tests need: our Docker daemon (started here and stopped afterwards, unless it
# was already running), the images of scripts/kind-images.sh, and their names in the environment.
# Example: bash scripts/with-kind-images.sh npx vitest run test/kind
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
(( $# > 0 )) || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

started_here=false
if [[ -z ${DOCKER_HOST:-} ]]; then
  if ! DOCKER_HOST=unix:///run/ha-nginx-docker/docker.sock docker version > /dev/null 2>&1; then started_here=true; fi
  eval "$(bash "$repo/scripts/docker-daemon.sh" start)"
  export DOCKER_HOST
fi
if [[ $started_here == true ]]; then trap 'bash "$repo/scripts/docker-daemon.sh" stop' EXIT; fi

images=$(bash "$repo/scripts/kind-images.sh")
eval "$images"
export HA_NGINX_KIND_NODE_IMAGE HA_NGINX_IMAGE HA_NGINX_NGINX_IMAGE HA_NGINX_CLIENT_IMAGE HA_NGINX_ETCD_IMAGE_TAG
"$@"
