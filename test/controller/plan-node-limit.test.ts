// A resource may select at most MAX_NODES nodes: its status lists one entry per selected node, and a status the API
// server refuses would leave the VRID unstored and the refusal invisible (issue #13). Beyond the limit the planner
// refuses the resource with a condition, in a status that still fits the schema.
import { describe, expect, it } from "vitest";
import { ConditionType, haVipStatusSchema, MAX_NODES, type HaVipCondition } from "../../src/api/v1alpha1/index.js";
import { computeDesired } from "../../src/controller/plan.js";
import { aHavip, aNode, anEntry, inputs } from "./builders.js";

function conditionOf(conditions: readonly HaVipCondition[] | undefined, type: string): HaVipCondition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

/** `count` selected nodes, each with an InternalIP of its own. */
function edgeNodes(count: number) {
  return Array.from({ length: count }, (_, index) => aNode(`edge-${index}`, { address: `10.80.${index >> 8}.${index & 255}` }));
}

describe("how many nodes a resource may select", () => {
  it(`exactly ${MAX_NODES} nodes: accepted, every one published as a peer`, () => {
    const plan = computeDesired(inputs({ nodes: edgeNodes(MAX_NODES) }));
    expect(plan.status.peers).toHaveLength(MAX_NODES);
    expect(conditionOf(plan.status.conditions, ConditionType.Ready)?.reason).not.toBe("TooManyNodes");
    expect(plan.agentObjects).toBeDefined();
    expect(haVipStatusSchema.safeParse(plan.status).success).toBe(true);
  });

  it.each([129, 1000])("%i nodes: Ready False TooManyNodes naming the count, the limit and the fix; no agents; a status the API server accepts", (count) => {
    const plan = computeDesired(inputs({ nodes: edgeNodes(count) }));
    const ready = conditionOf(plan.status.conditions, ConditionType.Ready);
    expect(ready).toMatchObject({ status: "False", reason: "TooManyNodes" });
    expect(ready?.message).toContain(String(count));
    expect(ready?.message).toContain(String(MAX_NODES));
    expect(ready?.message).toContain("spec.nodes.selector");
    expect(plan.agentObjects).toBeUndefined();
    expect(haVipStatusSchema.safeParse(plan.status).success).toBe(true);
    expect(plan.isStatusChanged).toBe(true);
    expect(plan.events).toContainEqual(expect.objectContaining({ type: "Warning", reason: "TooManyNodes" }));
  });

  it("a running resource whose selector grows past the limit keeps its VRID and peers, and is refused", () => {
    const before = { virtualRouterID: 51, master: "edge-0", peers: ["10.80.0.0", "10.80.0.1"], nodes: [anEntry("edge-0", "MASTER"), anEntry("edge-1", "BACKUP")] };
    const plan = computeDesired(inputs({ object: aHavip({ status: before }), nodes: edgeNodes(MAX_NODES + 1) }));
    const { nodes: _agentsOwnThem, ...controllerOwned } = before;
    expect(plan.status).toMatchObject(controllerOwned);
    expect(plan.status).not.toHaveProperty("nodes");
    expect(conditionOf(plan.status.conditions, ConditionType.Ready)).toMatchObject({ status: "False", reason: "TooManyNodes" });
    expect(plan.agentObjects).toBeUndefined();
  });
});
