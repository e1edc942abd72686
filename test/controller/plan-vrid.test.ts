import { describe, expect, it } from "vitest";
import { ConditionType, type HaVipCondition } from "../../src/api/v1alpha1/index.js";
import { computeDesired } from "../../src/controller/plan.js";
import { aHavip, aNode, aPeer, aSpec, inputs } from "./builders.js";

function conditionOf(conditions: readonly HaVipCondition[] | undefined, type: string): HaVipCondition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

const other = { matchLabels: { role: "other" } };

describe("VRID allocation", () => {
  // Allocation counts down from 255, away from the low VRIDs of hand-built keepalived setups, and a VRID is unique per
  // address family in the whole cluster: the controller cannot see which nodes share an L2 segment (issue #13).
  const cases = [
    { name: "no VRID anywhere: the highest, 255", status: undefined, peers: [], expected: 255 },
    { name: "a VRID in status is kept although a higher one is free", status: { virtualRouterID: 7 }, peers: [], expected: 7 },
    {
      name: "an overlapping resource holds 255: the next free, 254",
      status: undefined,
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"], virtualRouterID: 255 }))],
      expected: 254,
    },
    {
      name: "an allocated VRID in another's status is skipped too",
      status: undefined,
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"] }), { statusVrid: 255 }), aPeer("b", aSpec({ addresses: ["10.77.0.202"], virtualRouterID: 254 }))],
      expected: 253,
    },
    {
      name: "a resource on other nodes, maybe on the same L2 segment, takes its spec VRID from us too",
      status: undefined,
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"], virtualRouterID: 255, nodes: { selector: other } }))],
      expected: 254,
    },
    {
      name: "a resource on other nodes takes its allocated VRID from us too",
      status: undefined,
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"], nodes: { selector: other } }), { statusVrid: 255 })],
      expected: 254,
    },
    {
      name: "an IPv6 resource does not take an IPv4 VRID (separate routers, RFC 5798 §7.3)",
      status: undefined,
      peers: [aPeer("a", aSpec({ addresses: ["fd00::1/64"], virtualRouterID: 255 }))],
      expected: 255,
    },
    {
      name: "a VRID in status contested by an older allocation moves to the highest free one",
      status: { virtualRouterID: 1 },
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"] }), { statusVrid: 1, created: "2026-11-23T08:00:00Z" })],
      expected: 255,
    },
    {
      name: "a VRID in status contested by an older allocation on other nodes moves too",
      status: { virtualRouterID: 1 },
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"], nodes: { selector: other } }), { statusVrid: 1, created: "2026-11-23T08:00:00Z" })],
      expected: 255,
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
      expected: 255,
    },
    {
      name: "a VRID in status contested by a spec VRID on other nodes moves",
      status: { virtualRouterID: 51 },
      peers: [aPeer("a", aSpec({ addresses: ["10.77.0.201"], virtualRouterID: 51, nodes: { selector: other } }))],
      expected: 255,
    },
    { name: "the spec's VRID wins over the status", status: { virtualRouterID: 7 }, peers: [], spec: aSpec({ virtualRouterID: 51 }), expected: 51 },
  ];
  it.each(cases)("$name", ({ status, peers, spec, expected }) => {
    const plan = computeDesired(inputs({ object: aHavip({ status, spec }), others: peers }));
    expect(plan.status.virtualRouterID).toBe(expected);
    expect(conditionOf(plan.status.conditions, ConditionType.Conflict)?.status).toBe("False");
    expect(plan.agentObjects).toBeDefined();
  });

  it("a renumbered resource says why in a Warning Event, naming the resource that keeps its old VRID", () => {
    const peers = [aPeer("a", aSpec({ addresses: ["10.77.0.201"] }), { statusVrid: 1, created: "2026-11-23T08:00:00Z" })];
    const plan = computeDesired(inputs({ object: aHavip({ status: { virtualRouterID: 1 } }), others: peers }));
    expect(plan.events).toContainEqual({
      type: "Warning",
      reason: "VirtualRouterIDChanged",
      message: "VRID 1 -> 255: VRID 1 is claimed by HighAvailabilityVIP default/a, which keeps it; the agents restart on the new VRID and the VIP moves once",
    });
    const kept = computeDesired(inputs({ object: aHavip({ status: { virtualRouterID: 255 } }), others: peers }));
    expect(kept.events.map((event) => event.reason)).not.toContain("VirtualRouterIDChanged");
  });

  const everyVrid = (nodes: typeof other | undefined) =>
    Array.from({ length: 255 }, (_, index) =>
      aPeer(`p${index}`, aSpec({ addresses: [`10.78.${index}.1`], virtualRouterID: index + 1, ...(nodes === undefined ? {} : { nodes: { selector: nodes } }) })),
    );
  it.each([
    { name: "all 255 VRIDs taken on the selected nodes", peers: everyVrid(undefined) },
    { name: "the 256th IPv4 resource in the cluster, though the 255 others run on other nodes", peers: everyVrid(other) },
  ])("$name: Conflict VirtualRouterIDsExhausted naming the limit and the fix, and no DaemonSet", ({ peers }) => {
    const plan = computeDesired(inputs({ others: peers }));
    expect(plan.status.virtualRouterID).toBeUndefined();
    const conflict = conditionOf(plan.status.conditions, ConditionType.Conflict);
    expect(conflict).toMatchObject({ status: "True", reason: "VirtualRouterIDsExhausted" });
    expect(conflict?.message).toContain("255");
    expect(conflict?.message).toContain("spec.virtualRouterID");
    expect(conflict?.message).toContain("delete");
    expect(plan.agentObjects).toBeUndefined();
  });

  it("every VRID is allocatable: with one agent port per node, no VRID lands on a port the kubelet holds", () => {
    const ipv6 = (name: string, vrid: number) => aPeer(name, aSpec({ addresses: [`fd00::${vrid.toString(16)}/64`], virtualRouterID: vrid }));
    const above = Array.from({ length: 255 - 192 }, (_, index) => ipv6(`v6-${index}`, 255 - index));
    const plan = computeDesired(inputs({ object: aHavip({ spec: aSpec({ addresses: ["fd00::200/64"] }) }), others: above }));
    expect(plan.status.virtualRouterID).toBe(192);
  });

  it("the 255 IPv4 VRIDs all taken leave the IPv6 ones free", () => {
    const plan = computeDesired(inputs({ object: aHavip({ spec: aSpec({ addresses: ["fd00::200/64"] }) }), others: everyVrid(other) }));
    expect(plan.status.virtualRouterID).toBe(255);
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

  it("the same spec VRID on other nodes: the agents run, VirtualRouterIDShared warns naming the other", () => {
    const plan = computeDesired(inputs({
      object: aHavip({ spec: aSpec({ virtualRouterID: 51 }) }),
      nodes: [aNode("node-1"), aNode("node-2", { labels: { role: "other" } })],
      others: [aPeer("rival", aSpec({ addresses: ["10.77.0.201"], virtualRouterID: 51, nodes: { selector: other } }))],
    }));
    expect(conditionOf(plan.status.conditions, ConditionType.Conflict)?.status).toBe("False");
    const shared = conditionOf(plan.status.conditions, "VirtualRouterIDShared");
    expect(shared).toMatchObject({ status: "True", reason: "SameVirtualRouterIDOnOtherNodes" });
    expect(shared?.message).toContain("default/rival");
    expect(plan.agentObjects).toBeDefined();
    expect(plan.events.some((event) => event.type === "Warning" && event.reason === "SameVirtualRouterIDOnOtherNodes")).toBe(true);
  });

  it.each([
    { name: "no other resource", others: [] },
    { name: "an allocated VRID elsewhere, which moves", others: [aPeer("young", aSpec({ addresses: ["10.77.0.201"], nodes: { selector: other } }), { statusVrid: 51 })] },
    { name: "the same spec VRID in IPv6", others: [aPeer("v6", aSpec({ addresses: ["fd00::1/64"], virtualRouterID: 51, nodes: { selector: other } }))] },
  ])("a spec VRID with $name: VirtualRouterIDShared False", ({ others }) => {
    const plan = computeDesired(inputs({ object: aHavip({ spec: aSpec({ virtualRouterID: 51 }) }), others }));
    expect(conditionOf(plan.status.conditions, "VirtualRouterIDShared")).toMatchObject({ status: "False", reason: "VirtualRouterIDUnique" });
    expect(plan.agentObjects).toBeDefined();
  });
});
