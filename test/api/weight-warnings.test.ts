import { describe, expect, it } from "vitest";
import { validateHaVipSpec, weightWarnings, type HaVipSpec } from "../../src/api/v1alpha1/index.js";

function spec(weight: number, priorities: Record<string, number>): HaVipSpec {
  const result = validateHaVipSpec({
    addresses: ["10.77.0.200"],
    nodes: { priorities: Object.entries(priorities).map(([node, priority]) => ({ node, priority })) },
    healthCheck: { weight },
  });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.value;
}

describe("weightWarnings (keepalived #942: a weight too small to move the VIP)", () => {
  it("warns when the failing master still outranks the best backup, naming both nodes and the weight that works", () => {
    const warnings = weightWarnings(spec(-10, { "edge-1": 150, "edge-2": 120 }));
    expect(warnings.map((warning) => [warning.path, warning.node])).toEqual([["spec.healthCheck.weight", "edge-1"]]);
    expect(warnings[0]?.message).toContain("edge-2");
    expect(warnings[0]?.message).toContain("weight ≤ -31");
  });

  it("warns on a tie, which the higher primary address decides (RFC 5798 §6.4.3)", () => {
    expect(weightWarnings(spec(-30, { "edge-1": 150, "edge-2": 120 })).map((warning) => warning.node)).toEqual(["edge-1"]);
  });

  it("is silent when the weight drops the master below the backup", () => {
    expect(weightWarnings(spec(-31, { "edge-1": 150, "edge-2": 120 }))).toEqual([]);
  });

  it("is silent with weight 0: an unhealthy node goes FAULT", () => {
    expect(weightWarnings(spec(0, { "edge-1": 254, "edge-2": 1 }))).toEqual([]);
  });

  it("gives nodes the caller names but the spec does not list the default priority 100", () => {
    const warnings = weightWarnings(spec(-5, { "edge-2": 110 }), ["edge-1", "edge-2", "edge-3"]);
    expect(warnings.map((warning) => warning.node)).toEqual(["edge-2"]);
    expect(warnings[0]?.message).toContain("edge-1 at 100");
  });

  it("offers only weight 0 when no negative weight can bridge the gap", () => {
    const warnings = weightWarnings(spec(-253, { "edge-1": 254, "edge-2": 1 }));
    expect(warnings.map((warning) => warning.node)).toEqual(["edge-1"]);
    expect(warnings[0]?.message).toContain("set weight: 0");
  });

  it("cannot judge a single node", () => {
    expect(weightWarnings(spec(-1, { "edge-1": 150 }))).toEqual([]);
  });
});
