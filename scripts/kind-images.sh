#!/usr/bin/env bash
# Builds every image the kind e2e runs, with no registry: a Debian 13 base by debootstrap, the kind node image with
# the control-plane images inside it, our image from the repository's Dockerfile, and the e2e's nginx and client.
# The base and the node image are built once per input (they live in the cached Docker data root); our image, nginx
# and the client are rebuilt every run from Docker's layer cache. Needs scripts/docker-daemon.sh start and
# scripts/k8s-binaries.sh first. Prints the image names as NAME=image lines.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
export DOCKER_HOST=${DOCKER_HOST:-unix:///run/ha-nginx-docker/docker.sock}
images=$repo/test/kind/images
log() { printf '[kind-images] %s\n' "$*" >&2; }
has_image() { docker image inspect "$1" > /dev/null 2>&1; }
build() { # tag dockerfile context [build args...]; quiet unless the build fails
  local tag=$1 file=$2 context=$3 output
  shift 3
  output=$(docker build --network host -t "$tag" -f "$file" "$@" "$context" 2>&1) || { printf '%s\n' "$output" | tail -40 >&2; return 1; }
}

eval "$(bash "$repo/scripts/k8s-binaries.sh" --print-env)"
k8s_version=$("$HA_NGINX_K8S_BIN/kubectl" version --client -o json | jq -r .clientVersion.gitVersion)
etcd_version=$("$HA_NGINX_ETCD_BIN/etcd" --version | awk '/etcd Version/ { print $3 }')
kind_module=$(cd "$repo/tools/kind" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)
staging=$(mktemp -d)
preload=ha-nginx-test-preload-$$
trap 'rm -rf "$staging"; docker rm -f "$preload" > /dev/null 2>&1 || true' EXIT

base=ha-nginx-test/debian:trixie
if ! has_image "$base"; then
  log "$base: debootstrap of Debian 13 (about 2 minutes)"
  rootfs=$staging/rootfs
  debootstrap --variant=minbase trixie "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$staging/debootstrap.log" 2>&1 \
    || { tail -30 "$staging/debootstrap.log" >&2; exit 1; }
  # debootstrap leaves its downloads behind; a slim base does not carry them.
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  # npm inside image builds must trust what this machine trusts (its registry may sit behind a TLS proxy). A minbase
  # trixie no longer ships /etc/ssl (December 2026): no package of it puts anything there.
  mkdir -p "$rootfs/etc/ssl"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/build-ca-bundle.crt"
  tar -C "$rootfs" -c . | docker import --change 'ENV npm_config_cafile=/etc/ssl/build-ca-bundle.crt' - "$base" > /dev/null
  rm -rf "$rootfs"
fi

# The node image's tag names a hash of everything that goes into it, so a changed input builds a new one.
node_inputs=$( (cat "$images"/node.Dockerfile "$images"/control-plane.Dockerfile "$images"/kube-proxy.Dockerfile \
  "$images"/pause.Dockerfile "$repo"/tools/pause/main.go "$repo"/tools/runc-without-sys-resource/main.go;
  echo "$k8s_version $etcd_version $kind_module") | sha256sum | cut -c1-12)
node=ha-nginx-test/kind-node:$k8s_version-$node_inputs
if has_image "$node"; then
  log "$node: cached"
else
  started=$SECONDS
  log "$node: building (control-plane images, the node, then importing the images into its containerd)"
  etcd_tag=${etcd_version}-0
  control_plane=(kube-apiserver kube-controller-manager kube-scheduler)
  for binary in "${control_plane[@]}"; do
    mkdir -p "$staging/$binary" && cp "$HA_NGINX_K8S_BIN/$binary" "$staging/$binary/"
    build "registry.k8s.io/$binary:$k8s_version" "$images/control-plane.Dockerfile" "$staging/$binary" --build-arg "BINARY=$binary"
  done
  mkdir -p "$staging/etcd" && cp "$HA_NGINX_ETCD_BIN/etcd" "$staging/etcd/"
  build "registry.k8s.io/etcd:$etcd_tag" "$images/control-plane.Dockerfile" "$staging/etcd" --build-arg BINARY=etcd
  mkdir -p "$staging/kube-proxy" && cp "$HA_NGINX_KUBE_NODE_BIN/kube-proxy" "$staging/kube-proxy/"
  build "registry.k8s.io/kube-proxy:$k8s_version" "$images/kube-proxy.Dockerfile" "$staging/kube-proxy" --build-arg "BASE_IMAGE=$base"
  mkdir -p "$staging/pause"
  (cd "$repo/tools/pause" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$staging/pause/pause" .)
  # kind's containerd configuration names this sandbox image.
  pause_image=$(awk -F'"' '/sandbox_image/ { print $2 }' "$kind_module/images/base/files/etc/containerd/config.toml")
  build "$pause_image" "$images/pause.Dockerfile" "$staging/pause"

  context=$staging/node
  mkdir -p "$context/bin" "$context/kube"
  cp -r "$kind_module/images/base/files" "$context/kind-base"
  chmod -R u+w "$context/kind-base"
  (cd "$repo/tools/runc-without-sys-resource" && CGO_ENABLED=0 go build -trimpath -o "$context/bin/" .)
  cp "$HA_NGINX_KUBE_NODE_BIN/kubelet" "$HA_NGINX_KUBE_NODE_BIN/kubeadm" "$HA_NGINX_K8S_BIN/kubectl" "$context/kube/"
  build "$node-unloaded" "$images/node.Dockerfile" "$context" --build-arg "BASE_IMAGE=$base"

  docker run -d --name "$preload" --privileged --entrypoint sleep "$node-unloaded" infinity > /dev/null
  # containerd runs as a `docker exec` process, so its shim reaps it when it stops.
  docker exec -d "$preload" containerd
  docker exec "$preload" sh -c 'until ctr version > /dev/null 2>&1; do sleep 0.2; done'
  docker save "registry.k8s.io/kube-apiserver:$k8s_version" "registry.k8s.io/kube-controller-manager:$k8s_version" \
      "registry.k8s.io/kube-scheduler:$k8s_version" "registry.k8s.io/kube-proxy:$k8s_version" \
      "registry.k8s.io/etcd:$etcd_tag" "$pause_image" \
    | docker exec -i "$preload" ctr --namespace k8s.io images import --no-unpack -
  docker exec "$preload" sh -c 'pkill -x containerd; while pgrep -x containerd > /dev/null; do sleep 0.2; done'
  docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' "$preload" "$node" > /dev/null
  docker rm -f "$preload" > /dev/null
  docker rmi "$node-unloaded" > /dev/null
  log "$node: built in $((SECONDS - started)) s"
fi

app=ha-nginx:ci
log "$app: from the repository's Dockerfile"
build "$app" "$repo/Dockerfile" "$repo" --build-arg "BASE_IMAGE=$base"
nginx=ha-nginx-test/nginx:ci
build "$nginx" "$images/nginx.Dockerfile" "$images" --build-arg "BASE_IMAGE=$base"
client=ha-nginx-test/client:ci
# testing/ is never compiled into dist; the client image has no tsx, so its one file is compiled here.
(cd "$repo" && npx --no-install tsc --outDir "$staging/client" --target ES2022 --module NodeNext --types node testing/lab/probe-main.ts)
build "$client" "$images/client.Dockerfile" "$staging/client" --build-arg "BASE_IMAGE=$base"

echo "HA_NGINX_KIND_NODE_IMAGE=$node"
echo "HA_NGINX_IMAGE=$app"
echo "HA_NGINX_NGINX_IMAGE=$nginx"
echo "HA_NGINX_CLIENT_IMAGE=$client"
echo "HA_NGINX_ETCD_IMAGE_TAG=$etcd_version-0"
