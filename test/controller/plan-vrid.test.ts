import { describe, expect, it } from "vitest";
import { ConditionType, type HaVipCondition } from "../../src/api/v1alpha1/index.js";
import { computeDesired } from "../../src/controller/plan.js";
import { aHavip, aNode, aPeer, aSpec, inputs } from "./builders.js";

function conditionOf(conditions: readonly HaVipCondition[] | undefined, type: string): HaVipCondition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

const other = { matchLabels: { role: "other" } };

describe("VRID allocation", () => {
  const cases = [
    { name: "no VRID anywhere: the lowest, 1", status: undefined, peers: [], expected: 1 },
    { name: "a VRID in status is kept although a lower one is free", status: { virtualRouterID: 7 }, peers: [], expected: 7 },
    {
      name: "an overlapping resource holds 1: the next free, 2",
      status: undefined,
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"], virtualRouterID: 1 }))],
      expected: 2,
    },
    {
      name: "an allocated VRID in another's status is skipped too",
      status: undefined,
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"] }), { statusVrid: 1 }), aPeer("b", aSpec({ addresses: ["10.77.0.202"], virtualRouterID: 2 }))],
      expected: 3,
    },
    {
      name: "a resource on other nodes does not take a VRID from us",
      status: undefined,
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"], virtualRouterID: 1, nodes: { selector: other } }))],
      expected: 1,
    },
    {
      name: "an IPv6 resource on the same nodes does not take an IPv4 VRID (separate routers, RFC 5798 §7.3)",
      status: undefined,
      peers: [aPeer("a", aSpec({ addresses: ["fd00::1/64"], virtualRouterID: 1 }))],
      expected: 1,
    },
    {
      name: "a VRID in status contested by an older allocation moves to the lowest free one",
      status: { virtualRouterID: 1 },
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"] }), { statusVrid: 1, created: "2026-11-23T08:00:00Z" })],
      expected: 2,
    },
    {
      name: "a VRID in status contested by a younger allocation stays",
      status: { virtualRouterID: 1 },
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"] }), { statusVrid: 1, created: "2026-11-23T09:30:00Z" })],
      expected: 1,
    },
    {
      name: "a VRID in status contested by a spec VRID moves",
      status: { virtualRouterID: 1 },
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"], virtualRouterID: 1 }))],
      expected: 2,
    },
    { name: "the spec's VRID wins over the status", status: { virtualRouterID: 7 }, peers: [], spec: aSpec({ virtualRouterID: 51 }), expected: 51 },
  ];
  it.each(cases)("$name", ({ status, peers, spec, expected }) => {
    const plan = computeDesired(inputs({ object: aHavip({ status, spec }), others: peers }));
    expect(plan.status.virtualRouterID).toBe(expected);
    expect(conditionOf(plan.status.conditions, ConditionType.Conflict)?.status).toBe("False");
    expect(plan.agentObjects?.daemonSet.spec?.template.spec?.containers[0]?.ports?.[0]?.containerPort).toBe(9800 + expected);
  });

  it("all 255 VRIDs taken on the selected nodes: Conflict VirtualRouterIDsExhausted and no DaemonSet", () => {
    const peers = Array.from({ length: 255 }, (_, index) => aPeer(`p${index}`, aSpec({ addresses: [`10.78.${index}.1`], virtualRouterID: index + 1 })));
    const plan = computeDesired(inputs({ others: peers }));
    expect(plan.status.virtualRouterID).toBeUndefined();
    expect(conditionOf(plan.status.conditions, ConditionType.Conflict)).toMatchObject({ status: "True", reason: "VirtualRouterIDsExhausted" });
    expect(plan.agentObjects).toBeUndefined();
  });
});

describe("conflicts", () => {
  const cases = [
    {
      name: "same spec VRID on overlapping nodes: Conflict naming the other",
      spec: aSpec({ virtualRouterID: 51 }),
      peer: aPeer("rival", aSpec({ addresses: ["10.77.0.201"], virtualRouterID: 51 })),
      reason: "VirtualRouterIDInUse",
    },
    {
      name: "the same address in another resource, even on other nodes: Conflict AddressInUse",
      spec: aSpec({ virtualRouterID: 51 }),
      peer: aPeer("rival", aSpec({ addresses: ["10.77.0.200/32"], virtualRouterID: 52, nodes: { selector: other } })),
      reason: "AddressInUse",
    },
  ];
  it.each(cases)("$name", ({ spec, peer, reason }) => {
    const plan = computeDesired(inputs({ object: aHavip({ spec }), others: [peer] }));
    const conflict = conditionOf(plan.status.conditions, ConditionType.Conflict);
    expect(conflict).toMatchObject({ status: "True", reason });
    expect(conflict?.message).toContain("default/rival");
    expect(plan.agentObjects).toBeUndefined();
    expect(plan.events.some((event) => event.type === "Warning" && event.reason === reason)).toBe(true);
  });

  it("both sides of a spec VRID clash see the Conflict", () => {
    const a = aSpec({ virtualRouterID: 51 });
    const b = aSpec({ addresses: ["10.77.0.201"], virtualRouterID: 51 });
    const fromA = computeDesired(inputs({ object: aHavip({ name: "a", spec: a }), others: [aPeer("b", b)] }));
    const fromB = computeDesired(inputs({ object: aHavip({ name: "b", spec: b }), others: [aPeer("a", a)] }));
    expect(conditionOf(fromA.status.conditions, ConditionType.Conflict)?.message).toContain("default/b");
    expect(conditionOf(fromB.status.conditions, ConditionType.Conflict)?.message).toContain("default/a");
  });

  it("nodes that do not overlap may share a VRID", () => {
    const plan = computeDesired(inputs({
      object: aHavip({ spec: aSpec({ virtualRouterID: 51 }) }),
      nodes: [aNode("node-1"), aNode("node-2", { labels: { role: "other" } })],
      others: [aPeer("rival", aSpec({ addresses: ["10.77.0.201"], virtualRouterID: 51, nodes: { selector: other } }))],
    }));
    expect(conditionOf(plan.status.conditions, ConditionType.Conflict)?.status).toBe("False");
    expect(plan.agentObjects).toBeDefined();
  });
});
