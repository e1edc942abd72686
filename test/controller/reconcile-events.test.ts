// The reconciler's Event volume: a MASTER that flaps gives a few Events a minute, not one per change.
import type { KubernetesObject, V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { Cluster } from "../../src/controller/k8s/cluster.js";
import type { ControllerStatus, PlannedEvent } from "../../src/controller/plan.js";
import { AGENT_LABEL, AGENT_NAME } from "../../src/controller/agent-objects.js";
import { FINALIZER } from "../../src/controller/finalizer.js";
import { aReconciler, anAgentSettings, anEntry } from "./builders.js";

const node = (name: string, address: string): V1Node => ({
  metadata: { name, labels: {} },
  status: { conditions: [{ type: "Ready", status: "True" }], addresses: [{ type: "InternalIP", address }] },
});
const agentPod = (nodeName: string): V1Pod => ({
  metadata: { name: `${AGENT_NAME}-${nodeName}`, namespace: anAgentSettings().namespace, labels: { [AGENT_LABEL]: AGENT_NAME } },
  spec: { nodeName, containers: [] },
});
const admitAll = { metadata: { name: "all" }, spec: { addresses: ["10.77.0.0/24"], namespaces: ["*"] } };

describe("Events while the MASTER flaps", () => {
  it("MasterChanged at most 4 a minute; the next one after a held-back run counts what it held back", async () => {
    const resource: KubernetesObject & { spec: unknown; status: Record<string, unknown> } = {
      apiVersion: "ha-nginx.io/v1alpha1",
      kind: "HighAvailabilityVIP",
      metadata: { name: "web", namespace: "edge", uid: "uid-web", generation: 1, resourceVersion: "1", creationTimestamp: new Date("2026-12-05T09:00:00Z"), finalizers: [FINALIZER] },
      spec: { addresses: ["10.77.0.201/24"], virtualRouterID: 51 },
      status: {},
    };
    const emitted: PlannedEvent[] = [];
    let now = Date.parse("2026-12-05T10:00:00Z");
    const cluster = {
      async getHavip() {
        return resource;
      },
      async applyStatus(_ref: unknown, status: ControllerStatus) {
        resource.status = { ...resource.status, ...status };
      },
      async emit(_ref: unknown, event: PlannedEvent) {
        emitted.push(event);
      },
      async deleteRole() {},
      async deleteRoleBinding() {},
    } as unknown as Cluster;
    const reconciler = aReconciler(
      cluster,
      { havips: () => [resource], nodes: () => [node("node-1", "10.77.0.1"), node("node-2", "10.77.0.2")], pods: () => [agentPod("node-1"), agentPod("node-2")], pools: () => [admitAll] },
      () => now,
    );
    const masterChanges = (): PlannedEvent[] => emitted.filter((event) => event.reason === "MasterChanged");
    // The MASTER moves between the two nodes every second for a minute, as the agents' entries report it.
    for (let second = 0; second < 60; second += 1) {
      const [master, backup] = second % 2 === 0 ? ["node-1", "node-2"] : ["node-2", "node-1"];
      resource.status = { ...resource.status, nodes: [anEntry(master, "MASTER"), anEntry(backup, "BACKUP")] };
      await reconciler.reconcile("edge/web");
      now += 1_000;
    }
    expect(masterChanges()).toHaveLength(4);
    resource.status = { ...resource.status, nodes: [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP")] };
    now += 1_000;
    await reconciler.reconcile("edge/web");
    expect(masterChanges()).toHaveLength(5);
    expect(masterChanges()[4]?.message).toMatch(/; \d+ earlier MASTER changes not recorded as Events \(flapping\)$/);
  });
});
