#!/usr/bin/env bash
# The chart on a real kind cluster, for users with Docker: build and load the image, install the chart with the
# bundled nginx and a VIP on the kind network, then delete the master's nginx pod while a container on the same
# network requests the VIP every 10 ms. CI never runs this (no Docker engine there); see README.md.
#
# Needs: docker, kind, kubectl, helm. Environment: CLUSTER (default ha-nginx-e2e), VIP (default: .200.200 in the
# kind network's IPv4 subnet), MAX_FAILED (default 0), KEEP=1 to keep the cluster afterwards.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cluster="${CLUSTER:-ha-nginx-e2e}"
namespace=ha-nginx-system
release=edge
havip=edge-ha-nginx
image=ha-nginx:kind
client="${cluster}-client"
max_failed="${MAX_FAILED:-0}"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 2; }
done

cleanup() {
  docker rm -f "$client" >/dev/null 2>&1 || true
  if [[ "${KEEP:-0}" != 1 ]]; then kind delete cluster --name "$cluster" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "== kind cluster $cluster (3 nodes)"
kind create cluster --name "$cluster" --wait 120s --config - <<'KIND'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
  - role: worker
KIND
ctx="kind-$cluster"
k() { kubectl --context "$ctx" "$@"; }

echo "== image"
docker build -t "$image" "$repo"
kind load docker-image "$image" --name "$cluster"

for node in $(k get nodes -o name); do k label "$node" ha-nginx.io/edge=true --overwrite; done

if [[ -z "${VIP:-}" ]]; then
  subnet="$(docker network inspect kind -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' | tr ' ' '\n' | grep -v ':' | grep . | head -n1)"
  prefix="${subnet#*/}"
  IFS=. read -r a b _ _ <<<"${subnet%/*}"
  VIP="$a.$b.200.200/$prefix"
fi
vip_address="${VIP%/*}"
echo "== VIP $VIP"

echo "== helm install"
helm --kube-context "$ctx" install "$release" "$repo/charts/ha-nginx" -n "$namespace" --create-namespace \
  --set image.repository=ha-nginx --set image.tag=kind --set image.pullPolicy=Never \
  --set nginx.enabled=true --set vip.enabled=true --set "vip.address=$VIP" \
  --set 'edge.tolerations[0].key=node-role.kubernetes.io/control-plane' \
  --set 'edge.tolerations[0].operator=Exists' --set 'edge.tolerations[0].effect=NoSchedule' \
  --wait --timeout 5m

master_of() { k -n "$namespace" get havip "$havip" -o 'jsonpath={.status.master}'; }
wait_master() {
  local not="$1" deadline=$((SECONDS + 120)) current
  while (( SECONDS < deadline )); do
    current="$(master_of)"
    if [[ -n "$current" && "$current" != "$not" ]]; then echo "$current"; return 0; fi
    sleep 0.5
  done
  echo "run.sh: no MASTER other than '${not}' within 120 s" >&2
  k -n "$namespace" get havip "$havip" -o yaml >&2
  return 1
}
before="$(wait_master "")"
echo "== MASTER $before"

echo "== client on the kind network"
docker run -d --name "$client" --network kind --entrypoint sh nginx:1.27 -c \
  "while :; do curl -s -o /dev/null -m 0.5 -w '%{http_code}\n' http://$vip_address/ || true; sleep 0.01; done" >/dev/null
sleep 3
[[ "$(docker logs "$client" 2>/dev/null | grep -c '^200$')" -gt 0 ]] || { echo "run.sh: the VIP does not answer from the client" >&2; exit 1; }

echo "== delete the nginx pod on $before"
pod="$(k -n "$namespace" get pods -l app.kubernetes.io/name=ha-nginx-nginx --field-selector "spec.nodeName=$before" -o name | head -n1)"
k -n "$namespace" delete "$pod" --wait=false
after="$(wait_master "$before")"
echo "== MASTER $after"
k -n "$namespace" rollout status daemonset/"$release"-ha-nginx-nginx --timeout 120s
sleep 2
docker kill "$client" >/dev/null

codes="$(docker logs "$client" 2>/dev/null || true)"
sent="$(grep -c . <<<"$codes" || true)"
failed="$(grep -vc '^200$' <<<"$codes" || true)"
echo "== client: $sent requests, $failed failed (allowed: $max_failed)"
(( failed <= max_failed )) || exit 1
echo "== PASS: VIP moved $before -> $after"
