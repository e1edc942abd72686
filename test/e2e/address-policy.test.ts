// Who may claim an address (issue #13), on the test bed with the real controller, the real API server, real agents
// and real nginx: a HighAvailabilityVIP no VIPAddressPool admits is refused with a condition `kubectl describe havip`
// shows, and no agent holds its address; a pool that admits it brings its VIP up; deleting that pool takes the VIP
// down again on every node, while the bed's own resource, admitted by another pool, keeps serving throughout.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION, type HaVipCondition, type HaVipStatus } from "../../src/api/v1alpha1/index.js";
import { vipHolders } from "../../testing/lab/agent.js";
import { waitFor } from "../../testing/lab/wait.js";
import { permissivePoolName } from "../../testing/testbed/controller-process.js";
import { haVipManifest, havipNamespace, startHaVipBed, type HaVipBed } from "../../testing/testbed/havip-bed.js";

const outsiderNamespace = "web";
const outsider = "outsider-vip";

function poolManifest(name: string, addresses: readonly string[], namespaces: readonly string[]): string {
  return `
apiVersion: ha-nginx.io/v1alpha1
kind: VIPAddressPool
metadata: { name: ${name} }
spec:
  addresses: ${JSON.stringify(addresses)}
  namespaces: ${JSON.stringify(namespaces)}
`;
}

describe("e2e: VIPAddressPools decide who may claim an address", () => {
  let havip: HaVipBed | undefined;
  const bed = (): HaVipBed => {
    if (havip === undefined) throw new Error("no test bed");
    return havip;
  };
  const measured: Record<string, number | string> = {};
  const log = (line: string): void => {
    process.stdout.write(`[address-policy e2e] ${line}\n`);
  };
  const outsiderVip = (): string => bed().testbed.lab.vip(1).address;

  async function kubectl(args: readonly string[], input?: string): Promise<string> {
    const result = await bed().testbed.kubectl(args, input === undefined ? undefined : { input });
    if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
    return result.stdout;
  }

  async function outsiderStatus(): Promise<HaVipStatus> {
    const object = (await bed().custom.getNamespacedCustomObject({
      group: HAVIP_GROUP, version: HAVIP_VERSION, namespace: outsiderNamespace, plural: HAVIP_PLURAL, name: outsider,
    })) as { status?: HaVipStatus };
    return object.status ?? {};
  }

  async function notAdmitted(): Promise<HaVipCondition | undefined> {
    return (await outsiderStatus()).conditions?.find((condition) => condition.type === "NotAdmitted");
  }

  /** The bed's own resource must serve throughout: one node holds its VIP and nginx answers on it. */
  async function expectBedVipServes(): Promise<void> {
    expect(await vipHolders(bed().testbed.lab, bed().vip)).toHaveLength(1);
    const answer = await bed().testbed.lab.httpGet(bed().testbed.lab.client, `http://${bed().vip}/`);
    expect(answer.status).toBe(200);
  }

  beforeAll(async () => {
    havip = await startHaVipBed({ log });
    await bed().settled();
    // From here on, admission is the test's: a pool for the bed's own address and namespace only replaces the one
    // that admits everything, so the bed's resource keeps running and every other one is refused.
    await kubectl(["apply", "-f", "-"], poolManifest("edge-only", [`${bed().vip}/32`], [havipNamespace]));
    await kubectl(["delete", "vipaddresspool", permissivePoolName]);
    await bed().testbed.createNamespace(outsiderNamespace);
  }, 300_000);

  afterAll(async () => {
    await havip?.stop();
    log(`measurements: ${JSON.stringify(measured)}`);
  }, 120_000);

  it("a resource outside every pool: NotAdmitted in kubectl describe with the rule and the fix, one Warning Event, no agent holds its VIP", async () => {
    const startedAt = Date.now();
    await kubectl(["apply", "-f", "-"], haVipManifest(`${outsiderVip()}`, { name: outsider, namespace: outsiderNamespace, agents: null }));
    await waitFor(async () => (await notAdmitted())?.status === "True", { timeoutMs: 60_000, intervalMs: 200, what: "NotAdmitted=True on the outsider" });
    measured.applyToRefusedMs = Date.now() - startedAt;
    const condition = await notAdmitted();
    expect(condition?.reason).toBe("NoPoolAdmits");
    const message = `no VIPAddressPool admits ${outsiderVip()}/24 for namespace "${outsiderNamespace}": pool "edge-only" covers ${bed().vip}/32, not ${outsiderVip()}/24`;
    expect(condition?.message).toContain(message);
    expect(condition?.message).toContain("ask a cluster admin to add a VIPAddressPool");
    const ready = (await outsiderStatus()).conditions?.find((item) => item.type === "Ready");
    expect(ready).toMatchObject({ status: "False", reason: "AddressNotAdmitted" });

    // kubectl describe prints status.conditions and the Events; wait for the Event to be listed too.
    let described = "";
    await waitFor(
      async () => {
        described = await kubectl(["describe", "havip", outsider, "-n", outsiderNamespace]);
        return described.includes("NoPoolAdmits") && /Warning\s+NoPoolAdmits/.test(described);
      },
      { timeoutMs: 30_000, intervalMs: 500, what: "kubectl describe havip to show the NotAdmitted condition and its Event" },
    );
    expect(described).toContain("NotAdmitted");
    // describe folds long lines at word boundaries; compare with whitespace collapsed.
    expect(described.replace(/\s+/g, " ")).toContain(message);
    log(`kubectl describe havip ${outsider}:\n${described}`);

    // Time for agents to (wrongly) start: the VIP must never appear, and the refusal must not be repeated.
    const watchUntil = Date.now() + 8_000;
    while (Date.now() < watchUntil) {
      expect(await vipHolders(bed().testbed.lab, outsiderVip())).toEqual([]);
      await new Promise((resolveWait) => setTimeout(resolveWait, 500));
    }
    const events = await kubectl(["get", "events", "-n", outsiderNamespace, "--field-selector", `involvedObject.name=${outsider},reason=NoPoolAdmits`, "-o", "name"]);
    expect(events.trim().split("\n").filter((line) => line !== "")).toHaveLength(1);
    expect((await outsiderStatus()).nodes ?? []).toEqual([]);
    await expectBedVipServes();
  }, 120_000);

  it("a pool that admits it: NotAdmitted turns False and the VIP answers", async () => {
    const startedAt = Date.now();
    await kubectl(["apply", "-f", "-"], poolManifest("web-pool", [`${outsiderVip()}/32`], [outsiderNamespace]));
    await waitFor(async () => (await notAdmitted())?.status === "False", { timeoutMs: 60_000, intervalMs: 200, what: "NotAdmitted=False on the outsider" });
    expect((await notAdmitted())?.message).toBe('VIPAddressPool "web-pool" admits it');
    await waitFor(async () => (await vipHolders(bed().testbed.lab, outsiderVip())).length === 1, { timeoutMs: 60_000, intervalMs: 200, what: "one node to hold the outsider's VIP" });
    measured.poolToVipMs = Date.now() - startedAt;
    let answer = { status: 0, body: "" };
    await waitFor(
      async () => {
        answer = await bed().testbed.lab.httpGet(bed().testbed.lab.client, `http://${outsiderVip()}/`);
        return answer.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: "nginx to answer on the outsider's VIP" },
    );
    expect(answer.body).toContain("web");
    await expectBedVipServes();
  }, 120_000);

  it("the pool deleted: the running resource is refused again and its VIP is withdrawn from every node", async () => {
    const startedAt = Date.now();
    await kubectl(["delete", "vipaddresspool", "web-pool"]);
    await waitFor(async () => (await notAdmitted())?.status === "True", { timeoutMs: 60_000, intervalMs: 100, what: "NotAdmitted=True on the outsider again" });
    measured.poolDeletedToRefusedMs = Date.now() - startedAt;
    await waitFor(async () => (await vipHolders(bed().testbed.lab, outsiderVip())).length === 0, { timeoutMs: 30_000, intervalMs: 100, what: "no node to hold the outsider's VIP" });
    measured.poolDeletedToVipGoneMs = Date.now() - startedAt;
    // The agents stopped their routers: every entry says INIT, and the MASTER column is empty.
    await waitFor(
      async () => {
        const status = await outsiderStatus();
        return status.master === "" && (status.nodes ?? []).length > 0 && (status.nodes ?? []).every((entry) => entry.state === "INIT");
      },
      { timeoutMs: 30_000, intervalMs: 250, what: "every agent entry of the outsider to say INIT and no MASTER" },
    );
    const held = Date.now() + 5_000;
    while (Date.now() < held) {
      expect(await vipHolders(bed().testbed.lab, outsiderVip())).toEqual([]);
      await new Promise((resolveWait) => setTimeout(resolveWait, 500));
    }
    await expectBedVipServes();
  }, 120_000);
});
