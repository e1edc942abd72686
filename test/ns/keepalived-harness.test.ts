import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLab, startNginx, waitFor } from "../../testing/lab/index.js";
import type { Lab, LabHost } from "../../testing/lab/index.js";
import { startKeepalived, stopAllKeepalived, vipHolder } from "../../testing/lab/keepalived.js";
import type { KeepalivedOptions, KeepalivedProcess } from "../../testing/lab/keepalived.js";

// Proves the keepalived harness itself (config builder, process control, log capture, VIP lookup) before interop
// tests and benchmarks rely on it: two real keepalived nodes must elect exactly one holder and hand over on SIGTERM.

type Variant = Omit<KeepalivedOptions, "priority" | "state">;

let lab: Lab;
let n1: LabHost;
let n2: LabHost;
let vip: string;

beforeAll(async () => {
  lab = await createLab({ nodes: 2, idPrefix: "kh" });
  const [first, second] = lab.nodes;
  if (first === undefined || second === undefined) throw new Error("lab has fewer than 2 nodes");
  n1 = first;
  n2 = second;
  vip = lab.vip(0).address;
});

afterEach(async () => {
  await stopAllKeepalived();
});

afterAll(async () => {
  await stopAllKeepalived();
  await lab?.destroy();
});

// Built inside each test: the lab, and so the VIP, exists only after beforeAll.
const variants: Array<[string, () => Variant]> = [
  ["v3 multicast", () => ({ vrid: 51, version: 3, advertIntervalMs: 200, vips: [`${vip}/24`] })],
  ["v3 unicast", () => ({ vrid: 52, version: 3, advertIntervalMs: 200, vips: [`${vip}/24`],
    transport: { mode: "unicast", peers: [] } })],
  ["v2 PASS", () => ({ vrid: 53, version: 2, advertIntervalMs: 1000, vips: [`${vip}/24`], authPass: "secret12" })],
  ["v3 IPv6 multicast", () => ({ vrid: 56, version: 3, advertIntervalMs: 200, vips: [`${lab.vip(0).address6}/64`] })],
];

function vipOf(variant: Variant): string {
  const [first] = variant.vips;
  if (first === undefined) throw new Error("variant without VIP");
  return first.split("/")[0] ?? first;
}

function withPeer(variant: Variant, peer: LabHost): Variant {
  const transport = variant.transport;
  if (transport?.mode !== "unicast") return variant;
  return { ...variant, transport: { ...transport, peers: [peer.address] } };
}

async function startPair(variant: Variant): Promise<[KeepalivedProcess, KeepalivedProcess]> {
  const master = await startKeepalived(lab, n1, { ...withPeer(variant, n2), priority: 150, state: "MASTER" });
  const backup = await startKeepalived(lab, n2, { ...withPeer(variant, n1), priority: 100, state: "BACKUP" });
  return [master, backup];
}

async function expectSoleHolder(name: string, timeoutMs: number, address = vip): Promise<void> {
  await waitFor(async () => {
    const holders = await vipHolder(lab, address);
    return holders.length === 1 && holders[0] === name;
  }, { timeoutMs, what: `${name} alone holds ${address}` });
  expect(await vipHolder(lab, address)).toEqual([name]);
}

async function keepalivedPidsIn(host: LabHost): Promise<number[]> {
  const listed = await lab.exec(host, "ip", ["netns", "pids", host.netns], { check: true });
  const pids = listed.stdout.split(/\s+/).filter((word) => /^[0-9]+$/.test(word));
  const names = await Promise.all(pids.map(async (pid) => {
    const comm = await lab.exec(host, "cat", [`/proc/${pid}/comm`]);
    return comm.code === 0 && comm.stdout.trim() === "keepalived" ? Number(pid) : undefined;
  }));
  return names.filter((pid): pid is number => pid !== undefined);
}

describe("keepalived harness", () => {
  it.each(variants)("%s: priority 150 wins the election and SIGTERM hands the VIP to priority 100",
    async (_name, build) => {
      const variant = build();
      const address = vipOf(variant);
      const [master, backup] = await startPair(variant);
      await master.waitForState("MASTER", 20_000);
      await backup.waitForState("BACKUP", 20_000);
      await expectSoleHolder(n1.name, 10_000, address);

      await master.stop();
      await backup.waitForState("MASTER", 10_000);
      await expectSoleHolder(n2.name, 10_000, address);

      // keepalived announces its departure with priority 0; the backup reacts to it rather than to a timeout.
      expect(master.logLines()).toContainEqual(expect.stringMatching(/sent 0 priority/));
      expect(backup.logLines()).toContainEqual(expect.stringMatching(/Backup received priority 0 advertisement/));
      expect(master.rejectionLines()).toEqual([]);
      expect(backup.rejectionLines()).toEqual([]);
    });

  it("crash (SIGKILL to the group): no priority 0, the backup takes over on its timer, the dead master keeps the VIP",
    async () => {
      const [master, backup] = await startPair({ vrid: 57, version: 3, advertIntervalMs: 200, vips: [`${vip}/24`] });
      await master.waitForState("MASTER", 20_000);
      await backup.waitForState("BACKUP", 20_000);
      await expectSoleHolder(n1.name, 10_000);

      try {
        await master.crash();
        expect(await keepalivedPidsIn(n1)).toEqual([]);
        await backup.waitForState("MASTER", 10_000);
        expect(master.logLines()).not.toContainEqual(expect.stringMatching(/sent 0 priority/));
        expect(backup.logLines()).not.toContainEqual(expect.stringMatching(/received priority 0/));
        expect(backup.logLines()).toContainEqual(expect.stringMatching(/\(VI_57\) Receive advertisement timeout/));
        expect((await vipHolder(lab, vip)).sort()).toEqual([n1.name, n2.name]);
      } finally {
        // Nobody else removes what the killed daemon left; later tests need n1 without the VIP.
        await lab.exec(n1, "ip", ["addr", "del", `${vip}/24`, "dev", n1.ifname]);
      }
    });

  it("track_script as in the tutorials: nginx dying on the master puts it in FAULT and the VIP moves", async () => {
    const nginx1 = await startNginx(lab, n1);
    const nginx2 = await startNginx(lab, n2);
    try {
      const variant: Variant = { vrid: 55, version: 3, advertIntervalMs: 200, vips: [`${vip}/24`],
        trackScript: { script: "/usr/bin/curl -sf --max-time 1 http://127.0.0.1/healthz", intervalSeconds: 1,
          timeoutSeconds: 2, fall: 1, rise: 1, weight: 0 } };
      const [master, backup] = await startPair(variant);
      await master.waitForState("MASTER", 20_000);
      await expectSoleHolder(n1.name, 10_000);

      nginx1.kill("SIGKILL");
      await master.waitForState("FAULT", 10_000);
      await backup.waitForState("MASTER", 10_000);
      await expectSoleHolder(n2.name, 10_000);
      expect(master.logLines()).toContainEqual(expect.stringMatching(/Script `chk_nginx` now returning/));
    } finally {
      nginx1.kill("SIGKILL");
      await nginx2.stop();
    }
  });

  it("v2 PASS with different passwords: each side rejects the other's adverts and logs it", async () => {
    const variant: Variant = { vrid: 54, version: 2, advertIntervalMs: 1000, vips: [`${vip}/24`] };
    const first = await startKeepalived(lab, n1, { ...variant, authPass: "secret12", priority: 150, state: "MASTER" });
    const second = await startKeepalived(lab, n2, { ...variant, authPass: "other123", priority: 100 });
    await first.waitForState("MASTER", 20_000);
    await second.waitForLine(/received an invalid passwd!/, 10_000);

    expect(second.rejectionLines()).toContainEqual(expect.stringMatching(/\(VI_54\) received an invalid passwd!/));
    // Both hold the VIP: the harness must show a split brain, not hide it.
    await second.waitForState("MASTER", 20_000);
    expect((await vipHolder(lab, vip)).sort()).toEqual([n1.name, n2.name]);
  });
});
