import { describe, expect, it } from "vitest";
import { validateHaVipSpec, weightFix, weightWarnings, type HaVipSpec, type PreemptionMode } from "../../src/api/v1alpha1/index.js";

function spec(weight: number, priorities: Record<string, number>, mode: PreemptionMode = "Always"): HaVipSpec {
  const result = validateHaVipSpec({
    addresses: ["10.77.0.200"],
    preemption: mode === "Delayed" ? { mode, delay: "10s" } : { mode },
    nodes: { priorities: Object.entries(priorities).map(([node, priority]) => ({ node, priority })) },
    healthCheck: { weight },
  });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.value;
}

describe("weightWarnings (keepalived #942: a weight too small to move the VIP)", () => {
  it("RFC 5798 §6.4.2: a failing master still above the best backup keeps the VIP; names both nodes and the weight that works", () => {
    const weak = spec(-10, { "edge-1": 150, "edge-2": 120 });
    const warnings = weightWarnings(weak);
    expect(warnings).toMatchObject([{ path: "spec.healthCheck.weight", node: "edge-1", cause: "weight-too-small", neededWeight: -31 }]);
    expect(warnings[0]?.message).toBe("edge-1 (priority 150) keeps the VIP while unhealthy: weight -10 lowers it only to 140, not below edge-2 (priority 120)");
    expect(weightFix(weak, warnings)).toContain("weight ≤ -31");
  });

  it("RFC 5798 §6.4.2: a tie keeps the VIP, since a backup resets its timer on an equal advert whatever the addresses", () => {
    expect(weightWarnings(spec(-30, { "edge-1": 150, "edge-2": 120 })).map((warning) => warning.node)).toEqual(["edge-1"]);
  });

  it("RFC 5798 §6.4.2: silent when the weight drops the master one below the backup", () => {
    expect(weightWarnings(spec(-31, { "edge-1": 150, "edge-2": 120 }))).toEqual([]);
  });

  it("equal priorities: any negative weight moves the VIP", () => {
    expect(weightWarnings(spec(-1, { "edge-1": 100, "edge-2": 100 }))).toEqual([]);
  });

  it("is silent with weight 0: an unhealthy node goes FAULT", () => {
    expect(weightWarnings(spec(0, { "edge-1": 254, "edge-2": 1 }))).toEqual([]);
  });

  it("checks every node that can become MASTER, and the fix is the weight that works for all of them", () => {
    // Enough to move the VIP off edge-1, not off edge-2 once edge-2 holds it (edge-1 down).
    const weak = spec(-25, { "edge-1": 150, "edge-2": 130, "edge-3": 100 });
    const warnings = weightWarnings(weak);
    expect(warnings.map((warning) => [warning.node, warning.neededWeight])).toEqual([["edge-2", -31]]);
    const weaker = spec(-5, { "edge-1": 150, "edge-2": 130, "edge-3": 100 });
    const both = weightWarnings(weaker);
    expect(both.map((warning) => [warning.node, warning.neededWeight])).toEqual([["edge-1", -21], ["edge-2", -31]]);
    expect(weightFix(weaker, both)).toContain("weight ≤ -31 (now -5)");
  });

  it("gives nodes the caller names but the spec does not list the default priority 100", () => {
    const warnings = weightWarnings(spec(-5, { "edge-2": 110 }), ["edge-1", "edge-2", "edge-3"]);
    expect(warnings.map((warning) => warning.node)).toEqual(["edge-2"]);
    expect(warnings[0]?.message).toContain("edge-1 (priority 100)");
  });

  it("offers only weight 0 when no negative weight can bridge the gap (priority never drops below 1)", () => {
    const weak = spec(-253, { "edge-1": 254, "edge-2": 1 });
    const warnings = weightWarnings(weak);
    expect(warnings).toMatchObject([{ node: "edge-1", neededWeight: undefined }]);
    expect(weightFix(weak, warnings)).toContain("weight: 0");
  });

  it("RFC 5798 §6.4.2 Preempt_Mode False: with preemption Never no weight moves the VIP, so every node is flagged", () => {
    const never = spec(-100, { "edge-1": 150, "edge-2": 120 }, "Never");
    const warnings = weightWarnings(never);
    expect(warnings.map((warning) => [warning.node, warning.cause])).toEqual([["edge-1", "preemption-never"], ["edge-2", "preemption-never"]]);
    expect(weightFix(never, warnings)).toContain("spec.preemption.mode: Always");
  });

  it("preemption Delayed still moves the VIP, only later: judged like Always", () => {
    expect(weightWarnings(spec(-31, { "edge-1": 150, "edge-2": 120 }, "Delayed"))).toEqual([]);
    expect(weightWarnings(spec(-30, { "edge-1": 150, "edge-2": 120 }, "Delayed")).map((warning) => warning.cause)).toEqual(["weight-too-small"]);
  });

  it("cannot judge a single node", () => {
    expect(weightWarnings(spec(-1, { "edge-1": 150 }))).toEqual([]);
  });
});
