// The planner's WeightIneffective decision (keepalived issue #942): a negative health-check weight that cannot move the
// VIP off an unhealthy MASTER is a warning condition plus a Warning Event, never Invalid and never a reason to withhold
// Ready or the agent DaemonSet.
import { describe, expect, it } from "vitest";
import { ConditionType, type HaVipCondition, type HaVipSpecInput } from "../../src/api/v1alpha1/index.js";
import { computeDesired } from "../../src/controller/plan.js";
import { aHavip, aNode, anEntry, aSpec, inputs } from "./builders.js";

function conditionOf(conditions: readonly HaVipCondition[] | undefined, type: string): HaVipCondition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

const healthy = { virtualRouterID: 1, master: "node-1", nodes: [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP"), anEntry("node-3", "BACKUP")] };

function planWith(overrides: Partial<HaVipSpecInput>, generation = 1, status: unknown = healthy) {
  return computeDesired(inputs({ object: aHavip({ spec: aSpec(overrides), generation, status }) }));
}

const priorities = (...values: number[]) => values.map((priority, index) => ({ node: `node-${index + 1}`, priority }));
const selector = { matchLabels: { "ha-nginx.io/edge": "true" } };

describe("WeightIneffective", () => {
  const cases: readonly { name: string; spec: Partial<HaVipSpecInput>; expected: [string, string]; message: readonly string[] }[] = [
    {
      name: "keepalived #942, RFC 5798 §6.4.2: 150 - 10 still above 120, the BACKUP never preempts",
      spec: { nodes: { selector, priorities: priorities(150, 120, 100) }, healthCheck: { weight: -10 } },
      expected: ["True", "WeightTooSmall"],
      message: ["node-1 (priority 150)", "lowers it only to 140", "not below node-2 (priority 120)", "weight ≤ -31"],
    },
    {
      name: "RFC 5798 §6.4.2: 150 - 30 ties 120, and an equal advert resets the BACKUP's Master_Down_Timer",
      spec: { nodes: { selector, priorities: priorities(150, 120, 100) }, healthCheck: { weight: -30 } },
      expected: ["True", "WeightTooSmall"],
      message: ["lowers it only to 120", "weight ≤ -31"],
    },
    {
      name: "RFC 5798 §6.4.2: 150 - 31 is below 120 at the top and 120 - 31 below 100 next: the weight works",
      spec: { nodes: { selector, priorities: priorities(150, 120, 100) }, healthCheck: { weight: -31 } },
      expected: ["False", "WeightEffective"],
      message: ["weight -31 lowers an unhealthy MASTER below the best BACKUP"],
    },
    {
      name: "equal default priorities, whatever the addresses: any negative weight drops the MASTER below its peers",
      spec: { healthCheck: { weight: -1 } },
      expected: ["False", "WeightEffective"],
      message: ["weight -1"],
    },
    {
      name: "unlisted nodes count at the default priority 100: 105 - 5 ties them",
      spec: { nodes: { selector, priorities: [{ node: "node-2", priority: 105 }] }, healthCheck: { weight: -5 } },
      expected: ["True", "WeightTooSmall"],
      message: ["node-2 (priority 105)", "node-1 (priority 100)", "weight ≤ -6"],
    },
    {
      name: "RFC 5798 §6.1 Preempt_Mode False: with preemption Never no weight moves the VIP",
      spec: { preemption: { mode: "Never" }, nodes: { selector, priorities: priorities(150, 120, 100) }, healthCheck: { weight: -100 } },
      expected: ["True", "PreemptionDisabled"],
      message: ["no BACKUP takes over from a live MASTER", "spec.preemption.mode: Always"],
    },
    {
      name: "weight 0: an unhealthy node goes FAULT and releases the VIP, whatever the priorities",
      spec: { nodes: { selector, priorities: priorities(254, 1, 1) }, healthCheck: { weight: 0 } },
      expected: ["False", "WeightEffective"],
      message: ["weight 0"],
    },
  ];

  it.each(cases)("$name", ({ spec, expected, message }) => {
    const plan = planWith(spec);
    const condition = conditionOf(plan.status.conditions, ConditionType.WeightIneffective);
    expect([condition?.status, condition?.reason]).toEqual(expected);
    for (const part of message) expect(condition?.message).toContain(part);
  });

  it("only selected nodes can take over: an unselected node's priority does not make a weight good enough", () => {
    const spec = aSpec({ nodes: { selector, priorities: priorities(150, 145, 140) }, healthCheck: { weight: -10 } });
    const all = computeDesired(inputs({ object: aHavip({ spec, status: healthy }) }));
    expect(conditionOf(all.status.conditions, ConditionType.WeightIneffective)).toMatchObject({ status: "False", reason: "WeightEffective" });
    const nodes = [aNode("node-1"), aNode("node-2", { labels: {} }), aNode("node-3")];
    const withoutNode2 = computeDesired(inputs({ object: aHavip({ spec, status: healthy }), nodes }));
    const condition = conditionOf(withoutNode2.status.conditions, ConditionType.WeightIneffective);
    expect(condition).toMatchObject({ status: "True", reason: "WeightTooSmall" });
    expect(condition?.message).toContain("not below node-3 (priority 140)");
  });

  it("stays Ready and valid, still runs the agents, and raises one Warning Event when it turns True", () => {
    const spec = { nodes: { selector, priorities: priorities(150, 120, 100) }, healthCheck: { weight: -10 } };
    const plan = planWith(spec, 2);
    expect(conditionOf(plan.status.conditions, ConditionType.Ready)).toMatchObject({ status: "True", reason: "MasterElected" });
    expect(conditionOf(plan.status.conditions, ConditionType.Invalid)).toMatchObject({ status: "False", reason: "SpecValid", message: "the spec is valid" });
    expect(plan.agentObjects).toBeDefined();
    const warnings = plan.events.filter((event) => event.reason === "WeightTooSmall");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.type).toBe("Warning");
    expect(warnings[0]?.message).toMatch(/^WeightIneffective=True: node-1 \(priority 150\)/);
    const again = computeDesired(inputs({ object: aHavip({ spec: aSpec(spec), generation: 2, status: { ...healthy, ...plan.status } }) }));
    expect(again.events).toEqual([]);
  });

  it("clears when the weight is fixed, with a Normal Event", () => {
    const weak = planWith({ nodes: { selector, priorities: priorities(150, 120, 100) }, healthCheck: { weight: -10 } });
    const fixed = planWith({ nodes: { selector, priorities: priorities(150, 120, 100) }, healthCheck: { weight: -40 } }, 2, { ...healthy, ...weak.status });
    expect(conditionOf(fixed.status.conditions, ConditionType.WeightIneffective)).toMatchObject({ status: "False", reason: "WeightEffective" });
    expect(fixed.events).toContainEqual(expect.objectContaining({ type: "Normal", reason: "WeightEffective" }));
  });
});
