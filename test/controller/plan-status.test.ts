import { describe, expect, it } from "vitest";
import { ConditionType, type HaVipCondition, type NodeStatusEntry } from "../../src/api/v1alpha1/index.js";
import { AGENT_GONE_GRACE_MS, computeDesired, PASSWORD_CHECK_INTERVAL_MS, STARTUP_GRACE_MS } from "../../src/controller/plan.js";
import { aHavip, aNode, aPod, aSpec, anEntry, inputs, NOW } from "./builders.js";

function conditionOf(conditions: readonly HaVipCondition[] | undefined, type: string): HaVipCondition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

function planFor(entries: readonly NodeStatusEntry[], extra: Parameters<typeof inputs>[0] = {}) {
  return computeDesired(inputs({ object: aHavip({ status: { virtualRouterID: 1, nodes: entries } }), ...extra }));
}

describe("conditions from the agents' entries", () => {
  const cases: readonly {
    name: string;
    entries: NodeStatusEntry[];
    master: string;
    ready: [string, string];
    degraded: [string, string];
    splitBrain: string;
  }[] = [
    {
      name: "one MASTER and two healthy BACKUPs: Ready, not Degraded",
      entries: [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP"), anEntry("node-3", "BACKUP")],
      master: "node-1",
      ready: ["True", "MasterElected"],
      degraded: ["False", "AllNodesHealthy"],
      splitBrain: "False",
    },
    {
      name: "no agent has reported: Ready False AgentsPending, Degraded AgentsMissing",
      entries: [],
      master: "",
      ready: ["False", "AgentsPending"],
      degraded: ["True", "AgentsMissing"],
      splitBrain: "False",
    },
    {
      name: "two MASTERs: SplitBrain, not Ready, no master in status",
      entries: [anEntry("node-1", "MASTER"), anEntry("node-2", "MASTER"), anEntry("node-3", "BACKUP")],
      master: "",
      ready: ["False", "MultipleMasters"],
      degraded: ["False", "AllNodesHealthy"],
      splitBrain: "True",
    },
    {
      name: "MASTER whose only BACKUP is FAULT: Degraded NoBackup",
      entries: [anEntry("node-1", "MASTER"), anEntry("node-2", "FAULT", { healthy: false }), anEntry("node-3", "FAULT", { healthy: false })],
      master: "node-1",
      ready: ["True", "MasterElected"],
      degraded: ["True", "NoBackup"],
      splitBrain: "False",
    },
    {
      name: "all BACKUP, none MASTER: Ready False NoMaster",
      entries: [anEntry("node-1", "BACKUP"), anEntry("node-2", "BACKUP"), anEntry("node-3", "BACKUP")],
      master: "",
      ready: ["False", "NoMaster"],
      degraded: ["False", "AllNodesHealthy"],
      splitBrain: "False",
    },
    {
      name: "unhealthy MASTER (negative weight keeps it MASTER): not Ready, Degraded NodesUnhealthy",
      entries: [anEntry("node-1", "MASTER", { healthy: false }), anEntry("node-2", "BACKUP"), anEntry("node-3", "BACKUP")],
      master: "node-1",
      ready: ["False", "NoMaster"],
      degraded: ["True", "NodesUnhealthy"],
      splitBrain: "False",
    },
  ];
  it.each(cases)("$name", ({ entries, master, ready, degraded, splitBrain }) => {
    const plan = planFor(entries);
    expect(plan.status.master).toBe(master);
    expect(conditionOf(plan.status.conditions, ConditionType.Ready)).toMatchObject({ status: ready[0], reason: ready[1] });
    expect(conditionOf(plan.status.conditions, ConditionType.Degraded)).toMatchObject({ status: degraded[0], reason: degraded[1] });
    expect(conditionOf(plan.status.conditions, ConditionType.SplitBrain)?.status).toBe(splitBrain);
    expect(plan.requeueAt).toBeUndefined();
  });

  it("no node matches the selector: Ready False NoEligibleNodes and no peers", () => {
    const plan = planFor([], { nodes: [aNode("node-1", { labels: {} })] });
    expect(conditionOf(plan.status.conditions, ConditionType.Ready)).toMatchObject({ status: "False", reason: "NoEligibleNodes" });
    expect(plan.status.peers).toEqual([]);
  });
});

describe("agents that are gone", () => {
  const entries = [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP"), anEntry("node-3", "BACKUP")];
  const withoutNode1Pod = [aPod("node-2"), aPod("node-3")];

  it("pod just gone: still MASTER, not yet gone, requeue exactly when the 30 s grace ends", () => {
    const plan = planFor(entries, { agentPods: withoutNode1Pod });
    expect(plan.status.master).toBe("node-1");
    expect(plan.status.goneNodes).toEqual([]);
    expect(plan.agentsGone).toEqual(["node-1"]);
    expect(plan.requeueAt).toBe(NOW + AGENT_GONE_GRACE_MS);
  });

  it("node cut off, inside the grace: a live MASTER elsewhere wins over the gone node's last word; no SplitBrain", () => {
    const cut = [anEntry("node-1", "MASTER"), anEntry("node-2", "MASTER"), anEntry("node-3", "BACKUP")];
    const plan = planFor(cut, { nodes: [aNode("node-1", { isReady: false }), aNode("node-2"), aNode("node-3")] });
    expect(plan.agentsGone).toEqual(["node-1"]);
    expect(plan.status.master).toBe("node-2");
    expect(conditionOf(plan.status.conditions, ConditionType.SplitBrain)).toMatchObject({ status: "False" });
    expect(conditionOf(plan.status.conditions, ConditionType.Ready)).toMatchObject({ status: "True", reason: "MasterElected" });
  });

  it("two live agents claiming MASTER: SplitBrain True and no master, whatever a gone agent last said", () => {
    const split = [anEntry("node-1", "MASTER"), anEntry("node-2", "MASTER"), anEntry("node-3", "MASTER")];
    const plan = planFor(split, { agentPods: [aPod("node-1"), aPod("node-2")] });
    expect(conditionOf(plan.status.conditions, ConditionType.SplitBrain)).toMatchObject({ status: "True" });
    expect(conditionOf(plan.status.conditions, ConditionType.SplitBrain)?.message).toContain("node-1, node-2:");
    expect(plan.status.master).toBe("");
  });

  it("pod gone for 30 s: listed in goneNodes, its entry left to its agent, master cleared, MasterLost event, Degraded AgentsMissing", () => {
    const plan = planFor(entries, {
      object: aHavip({ status: { virtualRouterID: 1, master: "node-1", nodes: entries } }),
      agentPods: withoutNode1Pod,
      agentGoneSince: new Map([["node-1", NOW - AGENT_GONE_GRACE_MS]]),
    });
    expect(plan.status.goneNodes).toEqual(["node-1"]);
    expect(plan.status).not.toHaveProperty("nodes");
    expect(plan.staleEntries).toEqual([]);
    expect(plan.status.master).toBe("");
    expect(plan.requeueAt).toBeUndefined();
    expect(plan.events.map((event) => event.reason)).toContain("MasterLost");
    expect(conditionOf(plan.status.conditions, ConditionType.Degraded)).toMatchObject({ status: "True", reason: "AgentsMissing" });
  });

  it("node NotReady for 30 s while its pod object lingers: listed in goneNodes, master cleared", () => {
    const plan = planFor(entries, {
      nodes: [aNode("node-1", { isReady: false }), aNode("node-2"), aNode("node-3")],
      agentGoneSince: new Map([["node-1", NOW - AGENT_GONE_GRACE_MS]]),
    });
    expect(plan.status.goneNodes).toEqual(["node-1"]);
    expect(plan.status.master).toBe("");
  });

  it("back within the grace, or Ready again: no longer gone", () => {
    const plan = planFor(entries, { object: aHavip({ status: { virtualRouterID: 1, master: "", goneNodes: ["node-1"], nodes: entries } }) });
    expect(plan.status.goneNodes).toEqual([]);
    expect(plan.status.master).toBe("node-1");
    expect(plan.isStatusChanged).toBe(true);
  });

  it("node deleted for 30 s: its entry is to be removed, since a deleted node is no longer selected", () => {
    const plan = planFor(entries, {
      nodes: [aNode("node-2"), aNode("node-3")],
      agentPods: withoutNode1Pod,
      agentGoneSince: new Map([["node-1", NOW - 40_000]]),
    });
    expect(plan.staleEntries).toEqual(["node-1"]);
    expect(plan.status.goneNodes).toEqual([]);
  });

  it("node unlabelled and its agent gone for 30 s: its entry is to be removed", () => {
    const plan = planFor(entries, {
      nodes: [aNode("node-1", { labels: {} }), aNode("node-2"), aNode("node-3")],
      agentPods: withoutNode1Pod,
      agentGoneSince: new Map([["node-1", NOW - 31_000]]),
    });
    expect(plan.staleEntries).toEqual(["node-1"]);
  });
});

describe("status bookkeeping", () => {
  it("same inputs twice: the second plan changes nothing and emits nothing", () => {
    const entries = [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP")];
    const first = planFor(entries);
    const second = computeDesired(inputs({ object: aHavip({ status: { ...first.status, nodes: entries } }), now: NOW + 5_000 }));
    expect(first.isStatusChanged).toBe(true);
    expect(second.isStatusChanged).toBe(false);
    expect(second.events).toEqual([]);
  });

  it("a condition whose status holds keeps its lastTransitionTime while its reason changes", () => {
    const first = planFor([anEntry("node-1", "BACKUP")]);
    const ready = conditionOf(first.status.conditions, ConditionType.Ready);
    expect(ready).toMatchObject({ status: "False", reason: "NoMaster", lastTransitionTime: "2026-11-23T10:00:00Z" });
    const later = computeDesired(inputs({ object: aHavip({ status: { ...first.status, nodes: [] } }), now: NOW + 60_000 }));
    expect(conditionOf(later.status.conditions, ConditionType.Ready)).toMatchObject({ reason: "AgentsPending", lastTransitionTime: "2026-11-23T10:00:00Z" });
  });

  it("observedGeneration follows metadata.generation, on the status and on each condition", () => {
    const plan = computeDesired(inputs({ object: aHavip({ generation: 4 }) }));
    expect(plan.status.observedGeneration).toBe(4);
    expect(plan.status.conditions?.every((condition) => condition.observedGeneration === 4)).toBe(true);
  });

  it("a master change emits MasterChanged naming old and new", () => {
    const plan = computeDesired(inputs({
      object: aHavip({ status: { virtualRouterID: 1, master: "node-1", nodes: [anEntry("node-1", "BACKUP"), anEntry("node-2", "MASTER")] } }),
    }));
    expect(plan.events).toContainEqual({ type: "Normal", reason: "MasterChanged", message: "node-2 is MASTER (was node-1)" });
  });

  it("cordonedNodes lists the selected nodes marked unschedulable, sorted, and is empty once they are uncordoned", () => {
    const cordoned = computeDesired(inputs({
      nodes: [aNode("node-3", { isCordoned: true }), aNode("node-1", { isCordoned: true }), aNode("node-2"), aNode("node-4", { labels: {}, isCordoned: true })],
    }));
    expect(cordoned.status.cordonedNodes).toEqual(["node-1", "node-3"]);
    const uncordoned = computeDesired(inputs({ nodes: [aNode("node-1"), aNode("node-2"), aNode("node-3")] }));
    expect(uncordoned.status.cordonedNodes).toEqual([]);
  });

  it("cordonedNodes is empty when every selected node is cordoned: a VIP on a cordoned node beats none", () => {
    const allCordoned = computeDesired(inputs({ nodes: ["node-1", "node-2", "node-3"].map((name) => aNode(name, { isCordoned: true })) }));
    expect(allCordoned.status.cordonedNodes).toEqual([]);
  });

  it("peers are the selected nodes' InternalIPs of the spec's family, sorted, NotReady ones included so a returning node hears the Master at once", () => {
    const plan = computeDesired(inputs({
      nodes: [aNode("node-3"), aNode("node-1"), aNode("node-2", { isReady: false }), aNode("node-4", { labels: {} }), aNode("node-5", { address: "fd00::5" })],
    }));
    expect(plan.status.peers).toEqual(["10.77.0.1", "10.77.0.2", "10.77.0.3"]);
  });
});

describe("a rotated VRRPv2 password reaches every agent together", () => {
  const withPassword = aSpec({ vrrpVersion: 2, virtualRouterID: 51, authentication: { passwordSecretRef: { name: "vrrp-pass", key: "password" } } });
  const settled = { virtualRouterID: 51, nodes: [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP"), anEntry("node-3", "BACKUP")] };

  it("publishes the Secret's resourceVersion, and a new one when it changes, and looks again within the check interval", () => {
    const first = computeDesired(inputs({ object: aHavip({ spec: withPassword, status: settled }), passwordSecretVersion: "1001" }));
    expect(first.status.passwordSecretVersion).toBe("1001");
    expect(first.requeueAt).toBeLessThanOrEqual(NOW + PASSWORD_CHECK_INTERVAL_MS);
    const rotated = computeDesired(inputs({ object: aHavip({ spec: withPassword, status: { ...first.status, nodes: settled.nodes } }), passwordSecretVersion: "1002" }));
    expect(rotated.status.passwordSecretVersion).toBe("1002");
    expect(rotated.isStatusChanged).toBe(true);
    const unchanged = computeDesired(inputs({ object: aHavip({ spec: withPassword, status: { ...rotated.status, nodes: settled.nodes } }), passwordSecretVersion: "1002" }));
    expect(unchanged.isStatusChanged).toBe(false);
  });

  it("a missing Secret, or authentication removed, drops the field; without a password nothing is checked again", () => {
    const missing = computeDesired(inputs({ object: aHavip({ spec: withPassword, status: { ...settled, passwordSecretVersion: "1001" } }), passwordSecretVersion: undefined }));
    expect(missing.status.passwordSecretVersion).toBeUndefined();
    const plain = computeDesired(inputs({ object: aHavip({ spec: aSpec({ virtualRouterID: 51 }), status: { ...settled, passwordSecretVersion: "1001" } }) }));
    expect(plain.status.passwordSecretVersion).toBeUndefined();
    expect(plain.requeueAt).toBeUndefined();
  });
});

describe("an invalid spec", () => {
  it("Invalid True naming the field and the fix; Ready SpecInvalid; DaemonSet left alone", () => {
    const plan = computeDesired(inputs({ object: aHavip({ spec: aSpec({ vrrpVersion: 2, advertisementInterval: "500ms" }) }) }));
    const invalid = conditionOf(plan.status.conditions, ConditionType.Invalid);
    expect(invalid).toMatchObject({ status: "True", reason: "ValidationFailed" });
    expect(invalid?.message).toMatch(/^spec\.advertisementInterval: .*use 1s\.\.255s/);
    expect(conditionOf(plan.status.conditions, ConditionType.Ready)).toMatchObject({ status: "False", reason: "SpecInvalid" });
    expect(plan.agentObjects).toBeUndefined();
  });
});

describe("Events: what kubectl describe shows", () => {
  const justCreated = new Date(NOW - 10_000).toISOString();
  const healthy = [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP"), anEntry("node-3", "BACKUP")];

  it("a healthy start: agents pending and then a MASTER give one Normal MasterChanged and no Warning", () => {
    const pending = computeDesired(inputs({ object: aHavip({ created: justCreated }) }));
    expect(pending.events).toEqual([]);
    const elected = computeDesired(inputs({ object: aHavip({ created: justCreated, status: { ...pending.status, nodes: healthy } }), now: NOW + 5_000 }));
    expect(elected.events.map((event) => [event.type, event.reason])).toEqual([["Normal", "MasterChanged"]]);
  });

  it("a condition's first value is no Event when it is good (SpecValid, NoConflict, SingleMaster, WeightEffective)", () => {
    const plan = computeDesired(inputs({ object: aHavip({ status: { virtualRouterID: 1, master: "node-1", nodes: healthy } }) }));
    expect(plan.events).toEqual([]);
  });

  it("a spec problem is a Warning at once, even while the resource starts", () => {
    const spec = aSpec({ nodes: { selector: { matchLabels: { "ha-nginx.io/edge": "true" } }, priorities: [{ node: "node-1", priority: 150 }, { node: "node-2", priority: 100 }] }, healthCheck: { weight: -10 } });
    const plan = computeDesired(inputs({ object: aHavip({ created: justCreated, spec }) }));
    expect(plan.events.map((event) => [event.type, event.reason])).toEqual([["Warning", "WeightTooSmall"]]);
  });

  it("once Ready, losing the MASTER is a Warning, even inside the start-up grace", () => {
    const ready = computeDesired(inputs({ object: aHavip({ created: justCreated, status: { virtualRouterID: 1, nodes: healthy } }) }));
    const lost = [anEntry("node-1", "FAULT"), anEntry("node-2", "BACKUP"), anEntry("node-3", "BACKUP")];
    const plan = computeDesired(inputs({ object: aHavip({ created: justCreated, status: { ...ready.status, nodes: lost } }), now: NOW + 1_000 }));
    expect(plan.events.filter((event) => event.type === "Warning").map((event) => event.reason)).toEqual(expect.arrayContaining(["MasterLost", "NoMaster"]));
  });

  it(`never Ready ${STARTUP_GRACE_MS / 1000} s after creation: the missing MASTER is a Warning`, () => {
    const plan = computeDesired(inputs({ object: aHavip({ created: new Date(NOW - STARTUP_GRACE_MS).toISOString() }) }));
    expect(plan.events.filter((event) => event.type === "Warning").map((event) => event.reason)).toEqual(["AgentsPending", "AgentsMissing"]);
  });
});

describe("the end of the start-up grace", () => {
  const created = NOW - 10_000;
  const at = (secondsAfterCreation: number) => created + secondsAfterCreation * 1_000;
  const noMaster = [anEntry("node-1", "BACKUP"), anEntry("node-2", "BACKUP"), anEntry("node-3", "BACKUP")];
  const healthy = [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP"), anEntry("node-3", "BACKUP")];

  function reconcileAt(secondsAfterCreation: number, entries: readonly NodeStatusEntry[], status: object = { virtualRouterID: 1 }, extra: Parameters<typeof inputs>[0] = {}) {
    const object = aHavip({ created: new Date(created).toISOString(), status: { ...status, nodes: entries } });
    return computeDesired(inputs({ object, now: at(secondsAfterCreation), ...extra }));
  }

  const warnings = (plan: ReturnType<typeof computeDesired>) => plan.events.filter((event) => event.type === "Warning").map((event) => event.reason);

  it("while starting, the plan asks to be looked at again when the grace ends", () => {
    expect(reconcileAt(10, noMaster).requeueAt).toBe(created + STARTUP_GRACE_MS);
  });

  it("while starting, an agent's grace that ends first wins, and the start-up grace is asked for once that is over", () => {
    const withoutNode1Pod = { agentPods: [aPod("node-2"), aPod("node-3")] };
    expect(reconcileAt(10, healthy, { virtualRouterID: 1 }, withoutNode1Pod).requeueAt).toBe(at(10) + AGENT_GONE_GRACE_MS);
    expect(reconcileAt(100, healthy, { virtualRouterID: 1 }, withoutNode1Pod).requeueAt).toBe(created + STARTUP_GRACE_MS);
  });

  it("never Ready: the held-back Warning is told once at the grace's end, and not again on later reconciles", () => {
    const starting = reconcileAt(10, noMaster);
    expect(starting.events).toEqual([]);
    const graceOver = reconcileAt(121, noMaster, starting.status);
    expect(graceOver.events).toEqual([{ type: "Warning", reason: "NoMaster", message: "Ready=False: no node is MASTER (node-1 BACKUP, node-2 BACKUP, node-3 BACKUP)" }]);
    expect(graceOver.requeueAt).toBeUndefined();
    const later = reconcileAt(150, noMaster, graceOver.status);
    expect(later.events).toEqual([]);
    expect(later.isStatusChanged).toBe(false);
  });

  it("never Ready with no agent reporting: Ready and Degraded are each told once", () => {
    const starting = reconcileAt(10, []);
    const graceOver = reconcileAt(121, [], starting.status);
    expect(warnings(graceOver)).toEqual(["AgentsPending", "AgentsMissing"]);
    expect(reconcileAt(150, [], graceOver.status).events).toEqual([]);
  });

  it("a Ready reason that moves at the grace's end is told once, with the new reason", () => {
    const starting = reconcileAt(10, []);
    const graceOver = reconcileAt(121, noMaster, starting.status);
    expect(warnings(graceOver)).toEqual(["NoMaster"]);
  });

  it("Ready at 60 s: once that is recorded no requeue for the grace, and no Warning at the grace's end", () => {
    const starting = reconcileAt(10, []);
    const ready = reconcileAt(60, healthy, starting.status);
    expect(reconcileAt(61, healthy, ready.status).requeueAt).toBeUndefined();
    const graceOver = reconcileAt(121, healthy, ready.status);
    expect(graceOver.events).toEqual([]);
    expect(graceOver.isStatusChanged).toBe(false);
  });

  it("a spec problem told at once is not told again at the grace's end", () => {
    const unlabelled = { nodes: [aNode("node-1", { labels: {} })] };
    const starting = reconcileAt(10, [], { virtualRouterID: 1 }, unlabelled);
    expect(warnings(starting)).toEqual(["NoEligibleNodes"]);
    expect(reconcileAt(121, [], starting.status, unlabelled).events).toEqual([]);
  });
});

describe("a status written by an older version, or edited by hand", () => {
  const conditions = [{ type: "Ready", status: "True", reason: "MasterElected", message: "node-1 holds 10.77.0.200/24", lastTransitionTime: "2026-11-23T09:00:00Z" }];

  it("upgrade from 0.1.0: an UNKNOWN entry its controller left reads as gone; the VRID, master and conditions stay, and no VRID change", () => {
    const entries = [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP"), { node: "node-3", state: "UNKNOWN" as const, reason: "node not Ready" }];
    const plan = computeDesired(inputs({ object: aHavip({ status: { virtualRouterID: 254, master: "node-1", conditions, nodes: entries } }) }));
    expect(plan.status).toMatchObject({ virtualRouterID: 254, master: "node-1", goneNodes: ["node-3"], healthyNodes: 2 });
    expect(plan.events.map((event) => event.reason)).not.toContain("VirtualRouterIDChanged");
    expect(conditionOf(plan.status.conditions, ConditionType.Ready)).toMatchObject({ status: "True", lastTransitionTime: "2026-11-23T09:00:00Z" });
  });

  it("a malformed entry is left out, not the whole status: only that node counts as not reporting", () => {
    const entries = [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP"), { node: "node-3", state: "BOGUS" }];
    const plan = computeDesired(inputs({ object: aHavip({ status: { virtualRouterID: 254, master: "node-1", conditions, nodes: entries } }) }));
    expect(plan.status).toMatchObject({ virtualRouterID: 254, master: "node-1" });
    expect(plan.events.map((event) => event.message)).toEqual(["Degraded=True: no reporting agent on node-3"]);
  });
});
