import type { V1Node } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { Cluster, HavipRef, UncheckedHavip } from "../../src/controller/k8s/cluster.js";
import type { ControllerStatus } from "../../src/controller/plan.js";
import { FINALIZER } from "../../src/controller/finalizer.js";
import { aReconciler } from "./builders.js";

function aResource(name: string): UncheckedHavip {
  return {
    apiVersion: "ha-nginx.io/v1alpha1",
    kind: "HighAvailabilityVIP",
    metadata: { name, namespace: "default", uid: `uid-${name}`, generation: 1, resourceVersion: "1", creationTimestamp: new Date("2026-12-05T10:00:00Z"), finalizers: [FINALIZER] },
    spec: { addresses: [`10.77.0.${name === "a" ? 201 : 202}/24`] },
  };
}

const node: V1Node = { metadata: { name: "node-1", labels: {} }, status: { conditions: [{ type: "Ready", status: "True" }], addresses: [{ type: "InternalIP", address: "10.77.0.1" }] } };

describe("the reconciler's VRID allocation in a burst of creates", () => {
  it("two resources reconciled before the watch cache shows the first one's status get different VRIDs", async () => {
    const resources = [aResource("a"), aResource("b")];
    const written = new Map<string, ControllerStatus>();
    const cluster = {
      async getHavip(_namespace: string, name: string) {
        return resources.find((resource) => resource.metadata?.name === name);
      },
      async applyStatus(ref: HavipRef, status: ControllerStatus) {
        written.set(ref.name, status);
      },
      async emit() {},
      async deleteRole() {},
      async deleteRoleBinding() {},
    } as unknown as Cluster;
    // The cache never catches up here: it holds both resources as created, without any status.
    const reconciler = aReconciler(cluster, {
      havips: () => resources,
      nodes: () => [node],
      pools: () => [{ metadata: { name: "everything" }, spec: { addresses: ["0.0.0.0/0", "::/0"], namespaces: ["*"] } }],
    });
    await reconciler.reconcile("default/a");
    await reconciler.reconcile("default/b");
    const a = written.get("a")?.virtualRouterID;
    const b = written.get("b")?.virtualRouterID;
    expect(a).toBe(255);
    expect(b).toBeDefined();
    expect(b).not.toBe(a);
  });
});
