import { describe, expect, it } from "vitest";
import { EventBudget } from "../../src/k8s/event-budget.js";

describe("transition Events per node and resource", () => {
  it("a failover and its return are all recorded", () => {
    const budget = new EventBudget(4, 60_000);
    expect([0, 1_000, 30_000, 31_000].map((at) => budget.admit(at).isAdmitted)).toEqual([true, true, true, true]);
  });

  it("flapping every second: 4 Events a minute, and the next one says how many were held back", () => {
    const budget = new EventBudget(4, 60_000);
    const admitted = Array.from({ length: 60 }, (_, second) => budget.admit(second * 1_000)).filter((answer) => answer.isAdmitted);
    expect(admitted).toHaveLength(4);
    expect(budget.admit(60_000)).toEqual({ isAdmitted: true, suppressedBefore: 56 });
    expect(budget.admit(61_000)).toEqual({ isAdmitted: true, suppressedBefore: 0 });
  });
});
