#!/usr/bin/env bash
# Builds the test bed's Kubernetes control plane, etcd and helm, the kind e2e's kind, kubelet, kubeadm and
# kube-proxy, promtool for the alert rules' tests, and the Prometheus server and Alertmanager for the alerting e2e,
# from Go modules, once per version, into ~/.cache/ha-nginx/<name>-<version>/. A folder with a .complete marker is
# reused, so a warm run takes seconds.
# Prints the bin folder of each build; `--print-env` prints HA_NGINX_*_BIN lines for the test bed instead.
set -euo pipefail
# A build inside $(...) must stop the script when it fails, not go on to mark its folder complete.
shopt -s inherit_errexit

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${HA_NGINX_CACHE:-$HOME/.cache/ha-nginx}
mode=${1:-build}

module_version() { # the version a tools/*/go.mod requires of a module
  awk -v m="$2" '$1 == "require" && $2 == m { print $3 } $1 == m && $2 ~ /^v/ { print $2 }' "$repo/tools/$1/go.mod" | head -n1
}

k8s_version=$(module_version k8s k8s.io/kubernetes)
etcd_version=$(module_version etcd go.etcd.io/etcd/server/v3)
helm_version=$(module_version helm helm.sh/helm/v3)
kind_version=$(module_version kind sigs.k8s.io/kind)
prometheus_version=$(module_version prometheus github.com/prometheus/prometheus)
alertmanager_version=$(module_version alertmanager github.com/prometheus/alertmanager)

log() { printf '[k8s-binaries] %s\n' "$*" >&2; }

# name version module-dir ldflags packages...; the caller may set $tags (Go build tags) and $modfile (an alternate
# go.mod for go build -modfile).
build() {
  local name=$1 version=$2 dir=$3 ldflags=$4
  shift 4
  local out="$cache/$name-$version/bin"
  if [[ -f "$out/.complete" ]]; then
    log "$name $version: cached in $out"
  else
    log "$name $version: building $* (a cold build takes many minutes on 2 cores)"
    local started=$SECONDS
    rm -rf "$out" && mkdir -p "$out"
    (cd "$repo/tools/$dir" && CGO_ENABLED=0 go build ${modfile:+-modfile="$modfile"} -trimpath -tags "${tags:-}" \
      -ldflags "-s -w $ldflags" -o "$out/" "$@")
    touch "$out/.complete"
    log "$name $version: built in $((SECONDS - started)) s"
  fi
  echo "$out"
}

k8s_ldflags() {
  local v=${k8s_version#v} pkg ldflags=""
  local major=${v%%.*} minor=${v#*.}
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ldflags"
}

k8s_bin=$(build kubernetes "$k8s_version" k8s "$(k8s_ldflags)" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
etcd_bin=$(build etcd "$etcd_version" etcd "" go.etcd.io/etcd/server/v3)
# go names a /vN module's command after the element before the suffix.
if [[ -e "$etcd_bin/server" ]]; then mv "$etcd_bin/server" "$etcd_bin/etcd"; fi
helm_bin=$(build helm "$helm_version" helm "-X helm.sh/helm/v3/internal/version.version=$helm_version" \
  helm.sh/helm/v3/cmd/helm)

kube_node_bin=$(build kubernetes-node "$k8s_version" k8s "$(k8s_ldflags)" \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kube-proxy)
kind_bin=$(build kind "$kind_version" kind "" sigs.k8s.io/kind)
promtool_bin=$(build promtool "$prometheus_version" prometheus \
  "-X github.com/prometheus/common/version.Version=${prometheus_version#v}" \
  github.com/prometheus/prometheus/cmd/promtool)
# The alerting e2e scrapes static targets only, so remove_all_sd leaves out every service discovery plugin
# (Kubernetes, the clouds) and their SDKs, which shortens the cold build.
prometheus_bin=$(tags=remove_all_sd build prometheus "$prometheus_version" prometheus \
  "-X github.com/prometheus/common/version.Version=${prometheus_version#v}" \
  github.com/prometheus/prometheus/cmd/prometheus)
# Alertmanager's module leaves out the web UI that ui/web.go embeds (ui/app/dist, built with npm and elm). The e2e
# needs only the API, so an uncached build replaces the module by a copy that embeds a one-page stand-in, through a
# go.mod of its own (-modfile) so that tools/alertmanager stays as it is.
alertmanager_work=$(mktemp -d)
trap 'chmod -R u+w "$alertmanager_work" && rm -rf "$alertmanager_work"' EXIT
alertmanager_modfile=""
if [[ ! -f "$cache/alertmanager-$alertmanager_version/bin/.complete" ]]; then
  alertmanager_src=$(cd "$repo/tools/alertmanager" && go mod download github.com/prometheus/alertmanager &&
    go list -m -f '{{.Dir}}' github.com/prometheus/alertmanager)
  cp -R "$alertmanager_src" "$alertmanager_work/alertmanager" && chmod -R u+w "$alertmanager_work/alertmanager"
  for ui in elm mantine; do
    mkdir -p "$alertmanager_work/alertmanager/ui/app/dist/$ui"
    echo '<!doctype html><title>Alertmanager</title><p>This build has no web UI: use the API (/api/v2).' \
      > "$alertmanager_work/alertmanager/ui/app/dist/$ui/index.html"
  done
  alertmanager_modfile="$alertmanager_work/go.mod"
  cp "$repo/tools/alertmanager/go.mod" "$alertmanager_modfile"
  cp "$repo/tools/alertmanager/go.sum" "$alertmanager_work/go.sum"
  go mod edit -replace "github.com/prometheus/alertmanager=$alertmanager_work/alertmanager" "$alertmanager_modfile"
fi
alertmanager_bin=$(modfile=$alertmanager_modfile build alertmanager "$alertmanager_version" alertmanager \
  "-X github.com/prometheus/common/version.Version=${alertmanager_version#v}" \
  github.com/prometheus/alertmanager/cmd/alertmanager)

if [[ $mode == --print-env ]]; then
  echo "HA_NGINX_K8S_BIN=$k8s_bin"
  echo "HA_NGINX_ETCD_BIN=$etcd_bin"
  echo "HA_NGINX_HELM_BIN=$helm_bin"
  echo "HA_NGINX_KUBE_NODE_BIN=$kube_node_bin"
  echo "HA_NGINX_KIND_BIN=$kind_bin"
  echo "HA_NGINX_PROMTOOL_BIN=$promtool_bin"
  echo "HA_NGINX_PROMETHEUS_BIN=$prometheus_bin"
  echo "HA_NGINX_ALERTMANAGER_BIN=$alertmanager_bin"
else
  printf '%s\n' "$k8s_bin" "$etcd_bin" "$helm_bin" "$kube_node_bin" "$kind_bin" "$promtool_bin" "$prometheus_bin" \
    "$alertmanager_bin"
fi
