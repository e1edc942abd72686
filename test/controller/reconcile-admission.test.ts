// The reconciler's side of VIPAddressPool admission: a refused resource neither blocks an admitted one's address or
// VRID nor places privileged agents on the nodes it selects.
import type { KubernetesObject, V1DaemonSet, V1Node } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { ConditionType, type HaVipCondition } from "../../src/api/v1alpha1/index.js";
import type { Cluster, HavipRef, UncheckedHavip } from "../../src/controller/k8s/cluster.js";
import type { ControllerStatus } from "../../src/controller/plan.js";
import { AGENTS_KEY } from "../../src/controller/reconcile.js";
import { FINALIZER } from "../../src/controller/finalizer.js";
import { aReconciler } from "./builders.js";

/** Both claim 10.77.0.201; "squatter" in namespace web is the older, so it would keep the address if it counted. */
function aResource(name: string, namespace: string, created: string): UncheckedHavip {
  return {
    apiVersion: "ha-nginx.io/v1alpha1",
    kind: "HighAvailabilityVIP",
    metadata: { name, namespace, uid: `uid-${name}`, generation: 1, resourceVersion: "1", creationTimestamp: new Date(created), finalizers: [FINALIZER] },
    spec: { addresses: ["10.77.0.201/24"] },
  };
}

const node: V1Node = { metadata: { name: "node-1", labels: {} }, status: { conditions: [{ type: "Ready", status: "True" }], addresses: [{ type: "InternalIP", address: "10.77.0.1" }] } };
const ingressPool = { metadata: { name: "ingress" }, spec: { addresses: ["10.77.0.0/24"], namespaces: ["ingress"] } };

function harness(resources: (UncheckedHavip)[], pools: KubernetesObject[]) {
  const written = new Map<string, ControllerStatus>();
  const daemonSets: V1DaemonSet[] = [];
  const cluster = {
    async getHavip(namespace: string, name: string) {
      return resources.find((resource) => resource.metadata?.name === name && resource.metadata.namespace === namespace);
    },
    async applyStatus(ref: HavipRef, status: ControllerStatus) {
      written.set(`${ref.namespace}/${ref.name}`, status);
    },
    async applyDaemonSet(daemonSet: V1DaemonSet) {
      daemonSets.push(daemonSet);
      return daemonSet;
    },
    async emit() {},
    async deleteRole() {},
    async deleteRoleBinding() {},
    async deleteDaemonSet() {},
  } as unknown as Cluster;
  const reconciler = aReconciler(cluster, { havips: () => resources, nodes: () => [node], pools: () => pools });
  return { reconciler, written, daemonSets };
}

const conditionOf = (status: ControllerStatus | undefined, type: string): HaVipCondition | undefined =>
  status?.conditions?.find((condition) => condition.type === type);

describe("the reconciler with VIPAddressPools", () => {
  it("an older resource no pool admits does not take the address from an admitted one", async () => {
    const squatter = aResource("squatter", "web", "2026-12-05T09:00:00Z");
    const legit = aResource("legit", "ingress", "2026-12-05T10:00:00Z");
    const { reconciler, written } = harness([squatter, legit], [ingressPool]);
    await reconciler.reconcile("ingress/legit");
    await reconciler.reconcile("web/squatter");
    expect(conditionOf(written.get("ingress/legit"), ConditionType.Conflict)?.status).toBe("False");
    expect(written.get("ingress/legit")?.virtualRouterID).toBeDefined();
    expect(conditionOf(written.get("web/squatter"), ConditionType.NotAdmitted)?.status).toBe("True");
  });

  it("the agent DaemonSet is placed for admitted resources only: none while every resource is refused", async () => {
    const squatter = aResource("squatter", "web", "2026-12-05T09:00:00Z");
    const refusedOnly = harness([squatter], [ingressPool]);
    await refusedOnly.reconciler.reconcile(AGENTS_KEY);
    expect(refusedOnly.daemonSets).toEqual([]);
    const admitted = harness([squatter, aResource("legit", "ingress", "2026-12-05T10:00:00Z")], [ingressPool]);
    await admitted.reconciler.reconcile(AGENTS_KEY);
    expect(admitted.daemonSets).toHaveLength(1);
  });
});
