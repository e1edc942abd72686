import { describe, expect, it } from "vitest";
import { isPlacedOn, isSameNodeView, nodeViewOf, type Taint } from "../../src/api/v1alpha1/placement.js";
import { validateHaVipSpec, type HaVipSpec } from "../../src/api/v1alpha1/index.js";

function aSpec(nodes: Record<string, unknown> = {}): HaVipSpec {
  const validated = validateHaVipSpec({ addresses: ["10.0.0.150/24"], nodes });
  if (!validated.ok) throw new Error("test spec does not validate");
  return validated.value;
}

const edgeNode = { labels: { "node-role.example/edge": "true", zone: "a" }, taints: [] as Taint[] };

describe("where a HighAvailabilityVIP runs", () => {
  it("serves a resource without a node selector on every node", () => {
    expect(isPlacedOn(aSpec(), edgeNode)).toBe(true);
  });

  it("serves a resource whose spec.nodes.selector matches the node's labels, and not one whose selector does not", () => {
    expect(isPlacedOn(aSpec({ selector: { matchLabels: { "node-role.example/edge": "true" } } }), edgeNode)).toBe(true);
    expect(isPlacedOn(aSpec({ selector: { matchExpressions: [{ key: "zone", operator: "In", values: ["b"] }] } }), edgeNode)).toBe(false);
  });

  it("does not serve a resource on a node with a NoSchedule taint it does not tolerate", () => {
    const tainted = { ...edgeNode, taints: [{ key: "dedicated", value: "edge", effect: "NoSchedule" }] };
    expect(isPlacedOn(aSpec(), tainted)).toBe(false);
    expect(isPlacedOn(aSpec({ tolerations: [{ key: "dedicated", operator: "Equal", value: "edge", effect: "NoSchedule" }] }), tainted)).toBe(true);
    expect(isPlacedOn(aSpec({ tolerations: [{ key: "dedicated", operator: "Equal", value: "other" }] }), tainted)).toBe(false);
    expect(isPlacedOn(aSpec({ tolerations: [{ key: "dedicated", operator: "Exists" }] }), tainted)).toBe(true);
    expect(isPlacedOn(aSpec({ tolerations: [{ operator: "Exists" }] }), tainted)).toBe(true);
    expect(isPlacedOn(aSpec({ tolerations: [{ key: "dedicated", operator: "Exists", effect: "NoExecute" }] }), tainted)).toBe(false);
  });

  it("keeps a running resource on a node tainted NoSchedule after it started, as a pod stays; NoExecute takes it off", () => {
    const noSchedule = { ...edgeNode, taints: [{ key: "dedicated", value: "db", effect: "NoSchedule" }] };
    expect(isPlacedOn(aSpec(), noSchedule, true)).toBe(true);
    expect(isPlacedOn(aSpec(), noSchedule, false)).toBe(false);
    const noExecute = { ...edgeNode, taints: [{ key: "dedicated", value: "db", effect: "NoExecute" }] };
    expect(isPlacedOn(aSpec(), noExecute, true)).toBe(false);
  });

  it("ignores PreferNoSchedule taints and the node lifecycle taints a DaemonSet pod tolerates by itself", () => {
    const node = {
      ...edgeNode,
      taints: [
        { key: "soft", effect: "PreferNoSchedule" },
        { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" },
        { key: "node.kubernetes.io/not-ready", effect: "NoExecute" },
      ],
    };
    expect(isPlacedOn(aSpec(), node)).toBe(true);
  });
});

describe("what placement reads of a Node", () => {
  const node = {
    metadata: { name: "edge-1", resourceVersion: "100", labels: { zone: "a" } },
    spec: { taints: [{ key: "dedicated", value: "edge", effect: "NoSchedule" }] },
    status: { conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: "2026-12-06T08:00:00Z" }] },
  };

  it("a kubelet heartbeat (new status and resourceVersion) leaves it as it was; a label or a taint does not", () => {
    const heartbeat = { ...node, metadata: { ...node.metadata, resourceVersion: "101" }, status: { conditions: [{ ...node.status.conditions[0], lastHeartbeatTime: "2026-12-06T08:00:10Z" }] } };
    expect(isSameNodeView(nodeViewOf(heartbeat), nodeViewOf(node))).toBe(true);
    expect(isSameNodeView(nodeViewOf({ ...node, metadata: { labels: { zone: "b" } } }), nodeViewOf(node))).toBe(false);
    expect(isSameNodeView(nodeViewOf({ ...node, spec: {} }), nodeViewOf(node))).toBe(false);
    expect(isSameNodeView(nodeViewOf(node), undefined)).toBe(false);
  });
});
