import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { FINALIZER } from "../../src/controller/finalizer.js";
import { LEASE_NAME } from "../../src/controller/leader.js";
import { UninstallTimeoutError, uninstall, type ControllerPort, type HavipName, type UninstallOptions, type VipPort } from "../../src/controller/uninstall.js";

const notFound = (): Error => Object.assign(new Error("not found"), { code: 404 });

interface FakeCluster {
  /** VIPs present, and after how many further list calls the controller's finalizer lets each go (undefined: never). */
  readonly vips: Map<string, { vip: HavipName; releasedAfterLists: number | undefined }>;
  isCrdMissing: boolean;
  controllerPods: string[];
  /** List calls after the scale-down until the pods are gone (undefined: never). */
  podsGoneAfterLists: number | undefined;
  isLeasePresent: boolean;
  readonly calls: string[];
}

function aCluster(vips: readonly (HavipName & { releasedAfterLists?: number | undefined })[] = []): FakeCluster {
  return {
    vips: new Map(vips.map((vip) => [`${vip.namespace}/${vip.name}`, { vip, releasedAfterLists: "releasedAfterLists" in vip ? vip.releasedAfterLists : 2 }])),
    isCrdMissing: false,
    controllerPods: ["edge-ha-nginx-controller-a", "edge-ha-nginx-controller-b"],
    podsGoneAfterLists: 1,
    isLeasePresent: true,
    calls: [],
  };
}

function portsOf(fake: FakeCluster): { vips: VipPort; controller: ControllerPort } {
  let isScaledDown = false;
  let podLists = 0;
  const deleted = new Set<string>();
  return {
    vips: {
      async list() {
        if (fake.isCrdMissing) throw notFound();
        for (const [key, entry] of fake.vips) {
          if (!deleted.has(key) || entry.releasedAfterLists === undefined) continue;
          if (entry.releasedAfterLists === 0) fake.vips.delete(key);
          else fake.vips.set(key, { ...entry, releasedAfterLists: entry.releasedAfterLists - 1 });
        }
        return [...fake.vips.values()].map((entry) => entry.vip);
      },
      async delete(namespace, name) {
        fake.calls.push(`delete havip ${namespace}/${name}`);
        deleted.add(`${namespace}/${name}`);
      },
    },
    controller: {
      async scaleToZero() {
        fake.calls.push("scale controller to 0");
        isScaledDown = true;
      },
      async podNames() {
        if (isScaledDown && fake.podsGoneAfterLists !== undefined && podLists++ >= fake.podsGoneAfterLists) fake.controllerPods = [];
        return fake.controllerPods;
      },
      async deleteLease() {
        fake.calls.push(`delete lease ${LEASE_NAME}`);
        if (!fake.isLeasePresent) throw notFound();
        fake.isLeasePresent = false;
      },
      async deleteAgents() {
        fake.calls.push("delete daemonset ha-nginx-agent");
        throw notFound();
      },
    },
  };
}

function options(timeoutMs = 120_000): UninstallOptions & { readonly clock: { now: number } } {
  const clock = { now: 0 };
  return {
    namespace: "ha-nginx-system",
    deployment: "edge-ha-nginx-controller",
    timeoutMs,
    logger: pino({ level: "silent" }),
    now: () => clock.now,
    sleep: async (ms) => {
      clock.now += ms;
    },
    clock,
  };
}

const edge: HavipName = { namespace: "ha-nginx-system", name: "edge-ha-nginx", finalizers: [FINALIZER] };
const web: HavipName = { namespace: "web", name: "vip", finalizers: [FINALIZER] };

describe("ha-nginx uninstall (the chart's pre-delete hook)", () => {
  it("VIPs in two namespaces: both deleted, released by the controller, then the controller stopped and its Lease deleted", async () => {
    const fake = aCluster([edge, web]);
    const ports = portsOf(fake);
    const report = await uninstall(ports.vips, ports.controller, options());
    expect(fake.calls).toEqual(["delete havip ha-nginx-system/edge-ha-nginx", "delete havip web/vip", "scale controller to 0", `delete lease ${LEASE_NAME}`, "delete daemonset ha-nginx-agent"]);
    expect(fake.vips.size).toBe(0);
    expect(fake.isLeasePresent).toBe(false);
    expect(report).toEqual({ vipsDeleted: 2, vipsGoneMs: 2_000, controllerStoppedMs: 1_000, isLeaseDeleted: true });
  });

  it("the CRD already deleted and the Lease never written: nothing to delete, still succeeds", async () => {
    const fake = aCluster();
    fake.isCrdMissing = true;
    fake.isLeasePresent = false;
    const ports = portsOf(fake);
    const report = await uninstall(ports.vips, ports.controller, options());
    expect(fake.calls).toEqual(["scale controller to 0", `delete lease ${LEASE_NAME}`, "delete daemonset ha-nginx-agent"]);
    expect(report).toEqual({ vipsDeleted: 0, vipsGoneMs: 0, controllerStoppedMs: 1_000, isLeaseDeleted: false });
  });

  it("a VIP the controller never releases: times out naming it, its finalizers and the fix; the controller and its Lease stay", async () => {
    const fake = aCluster([edge, { ...web, finalizers: [FINALIZER, "other.io/hold"], releasedAfterLists: undefined }]);
    const run = options(30_000);
    const ports = portsOf(fake);
    const failure = await uninstall(ports.vips, ports.controller, run).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UninstallTimeoutError);
    const message = (failure as Error).message;
    expect(message).toContain(`web/vip (finalizers: ${FINALIZER}, other.io/hold)`);
    expect(message).not.toContain("ha-nginx-system/edge-ha-nginx (");
    expect(message).toContain("kubectl -n ha-nginx-system get deployment edge-ha-nginx-controller");
    expect(message).toContain("kubectl -n ha-nginx-system delete daemonset ha-nginx-agent");
    expect(run.clock.now).toBe(30_000);
    expect(fake.calls).toEqual(["delete havip ha-nginx-system/edge-ha-nginx", "delete havip web/vip"]);
    expect(fake.isLeasePresent).toBe(true);
  });

  it("controller pods that do not stop: times out naming them, and the Lease is left for the leader that still renews it", async () => {
    const fake = aCluster([edge]);
    fake.podsGoneAfterLists = undefined;
    const ports = portsOf(fake);
    const failure = await uninstall(ports.vips, ports.controller, options(10_000)).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UninstallTimeoutError);
    expect((failure as Error).message).toContain("edge-ha-nginx-controller-a, edge-ha-nginx-controller-b");
    expect(fake.calls).toEqual(["delete havip ha-nginx-system/edge-ha-nginx", "scale controller to 0"]);
    expect(fake.isLeasePresent).toBe(true);
  });

  it("a refused call (403) is not taken for done: it fails the hook", async () => {
    const fake = aCluster([edge]);
    const ports = portsOf(fake);
    const forbidden = Object.assign(new Error("forbidden"), { code: 403 });
    const failure = await uninstall({ ...ports.vips, delete: () => Promise.reject(forbidden) }, ports.controller, options()).catch((error: unknown) => error);
    expect(failure).toBe(forbidden);
    expect(fake.calls).toEqual([]);
  });
});
