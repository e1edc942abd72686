// Who may claim an address (issue #13): the planner refuses a resource no VIPAddressPool admits, with a condition that
// names the rule and the fix, one Warning Event, and no agent objects; a running one keeps its VRID while its agents
// withdraw the VIP.
import { describe, expect, it } from "vitest";
import { ConditionType, haVipStatusSchema, validateVipAddressPoolSpec, type HaVipCondition } from "../../src/api/v1alpha1/index.js";
import type { AddressPool } from "../../src/controller/admission.js";
import { computeDesired } from "../../src/controller/plan.js";
import { aHavip, anEntry, aSpec, inputs, NOW } from "./builders.js";

function conditionOf(conditions: readonly HaVipCondition[] | undefined, type: string): HaVipCondition | undefined {
  return conditions?.find((condition) => condition.type === type);
}

function aPool(name: string, addresses: string[], namespaces: string[] = ["default"]): AddressPool {
  const validated = validateVipAddressPoolSpec({ addresses, namespaces });
  if (!validated.ok) throw new Error(`fixture pool is invalid: ${JSON.stringify(validated.issues)}`);
  return { name, spec: validated.value };
}

describe("admission by VIPAddressPool in the plan", () => {
  it("no pool: NotAdmitted True naming the example, Ready False, no agent objects, one Warning Event, a status the API server accepts", () => {
    const plan = computeDesired(inputs({ pools: [] }));
    const notAdmitted = conditionOf(plan.status.conditions, ConditionType.NotAdmitted);
    expect(notAdmitted).toMatchObject({ status: "True", reason: "NoPoolAdmits" });
    expect(notAdmitted?.message).toContain("examples/vip-address-pool.yaml");
    expect(conditionOf(plan.status.conditions, ConditionType.Ready)).toMatchObject({ status: "False", reason: "AddressNotAdmitted" });
    expect(plan.agentObjects).toBeUndefined();
    expect(plan.status.virtualRouterID).toBeUndefined();
    expect(plan.events).toEqual([{ type: "Warning", reason: "NoPoolAdmits", message: `NotAdmitted=True: ${notAdmitted?.message ?? ""}` }]);
    expect(haVipStatusSchema.safeParse(plan.status).success).toBe(true);
  });

  it("refused again on the next look: no status write and no second Event", () => {
    const first = computeDesired(inputs({ pools: [] }));
    const again = computeDesired(inputs({ pools: [], object: aHavip({ status: first.status }), now: NOW + 60_000 }));
    expect(again.isStatusChanged).toBe(false);
    expect(again.events).toEqual([]);
  });

  it("a pool that admits it: NotAdmitted False naming the pool, and a VRID allocated", () => {
    const plan = computeDesired(inputs({ pools: [aPool("edge", ["10.77.0.0/24"])] }));
    expect(conditionOf(plan.status.conditions, ConditionType.NotAdmitted)).toMatchObject({ status: "False", reason: "AdmittedByPool", message: 'VIPAddressPool "edge" admits it' });
    expect(plan.status.virtualRouterID).toBeDefined();
    expect(plan.agentObjects).toBeDefined();
    // Being admitted from the start is the normal state, not news.
    expect(plan.events.filter((event) => event.reason === "AdmittedByPool" || event.reason === "NoPoolAdmits")).toEqual([]);
  });

  it("a pool for another namespace: refused, the message names the namespace and the pool's", () => {
    const plan = computeDesired(inputs({ pools: [aPool("edge", ["10.77.0.0/24"], ["ingress"])] }));
    expect(conditionOf(plan.status.conditions, ConditionType.NotAdmitted)?.message).toBe(
      'no VIPAddressPool admits 10.77.0.200/24 for namespace "default": pool "edge" covers 10.77.0.0/24 for namespaces [ingress]; ask a cluster admin to add a VIPAddressPool or widen one (see examples/vip-address-pool.yaml)',
    );
  });

  it("a running resource whose pool is deleted: refused, keeps its VRID, and the MASTER column follows the agents' entries", () => {
    const pools = [aPool("edge", ["10.77.0.0/24"])];
    const running = computeDesired(inputs({ pools, object: aHavip({ status: { virtualRouterID: 200, nodes: [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP")] } }) }));
    expect(running.status.master).toBe("node-1");
    const nodes = [anEntry("node-1", "MASTER"), anEntry("node-2", "BACKUP")];
    const refused = computeDesired(inputs({ pools: [], object: aHavip({ status: { ...running.status, nodes } }), now: NOW + 1_000 }));
    expect(conditionOf(refused.status.conditions, ConditionType.NotAdmitted)?.status).toBe("True");
    expect(refused.status.virtualRouterID).toBe(200);
    expect(refused.events.map((event) => event.reason)).toEqual(["NoPoolAdmits"]);
    const withdrawn = [anEntry("node-1", "INIT"), anEntry("node-2", "INIT")];
    const after = computeDesired(inputs({ pools: [], object: aHavip({ status: { ...refused.status, nodes: withdrawn } }), now: NOW + 2_000 }));
    expect(after.status.master).toBe("");
    expect(after.status.healthyNodes).toBe(0);
  });

  it("admitted again once a pool appears: NotAdmitted turns False with a Normal Event", () => {
    const refused = computeDesired(inputs({ pools: [] }));
    const admitted = computeDesired(inputs({ pools: [aPool("edge", ["10.77.0.0/24"])], object: aHavip({ status: refused.status }), now: NOW + 1_000 }));
    expect(conditionOf(admitted.status.conditions, ConditionType.NotAdmitted)).toMatchObject({ status: "False", reason: "AdmittedByPool" });
    expect(admitted.events).toContainEqual({ type: "Normal", reason: "AdmittedByPool", message: 'NotAdmitted=False: VIPAddressPool "edge" admits it' });
  });

  it("an invalid spec is reported as invalid, not as refused", () => {
    const plan = computeDesired(inputs({ pools: [], object: aHavip({ spec: aSpec({ addresses: ["not-an-ip"] }) }) }));
    expect(conditionOf(plan.status.conditions, ConditionType.Invalid)?.status).toBe("True");
    expect(conditionOf(plan.status.conditions, ConditionType.NotAdmitted)).toBeUndefined();
  });
});
