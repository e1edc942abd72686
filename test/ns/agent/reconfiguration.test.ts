import { writeFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { haVipManifest, vipHolders } from "../../../testing/lab/agent.js";
import { waitFor } from "../../../testing/lab/index.js";
import type { Lab, LabHost } from "../../../testing/lab/types.js";
import { decodeAdvertisement, decodeIpv4Datagram } from "../../../src/vrrp/codec.js";
import { createAgentBed, reportMeasure, waitForSingleHolder, type AgentBed } from "./support.js";

interface WireAdvert {
  /** Capture time, seconds since the epoch (tcpdump -tt). */
  readonly at: number;
  /** RFC 5798 §5.2.7, centiseconds; undefined when the packet did not decode. */
  readonly maxAdverInterval: number | undefined;
}

/** The VRRP packets from `source` that `host` sees on its link during `durationMs`, decoded with the product's codec. */
async function captureAdverts(lab: Lab, host: LabHost, source: string, durationMs: number): Promise<WireAdvert[]> {
  const seconds = String(durationMs / 1000);
  const result = await lab.exec(host, "timeout", [seconds, "tcpdump", "-l", "-p", "-nn", "-tt", "-x", "-i", host.ifname, `ip proto 112 and src host ${source}`], {
    timeoutMs: durationMs + 5_000,
  });
  // coreutils timeout ends tcpdump with SIGTERM and exits 124; anything else means the capture did not run.
  if (result.code !== 124) throw new Error(`tcpdump exited ${result.code}: ${result.stderr}`);
  const packets: { at: number; hex: string }[] = [];
  for (const line of result.stdout.split("\n")) {
    const header = /^(\d+\.\d+) IP /.exec(line);
    if (header) packets.push({ at: Number(header[1]), hex: "" });
    const data = /^\s+0x[0-9a-f]+:\s+((?:[0-9a-f]{2,4}\s?)+)/.exec(line);
    const last = packets.at(-1);
    if (data && last) last.hex += (data[1] ?? "").replace(/\s+/g, "");
  }
  return packets.map(({ at, hex }) => {
    const ip = decodeIpv4Datagram(Uint8Array.from(Buffer.from(hex, "hex")));
    if (!ip.ok) return { at, maxAdverInterval: undefined };
    const advert = decodeAdvertisement(ip.value.payload, { family: "ipv4", source: ip.value.source, destination: ip.value.destination, ttl: ip.value.ttl });
    return { at, maxAdverInterval: advert.ok && advert.value.version === 3 ? advert.value.maxAdverInterval : undefined };
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

describe("standalone agent: live reconfiguration", () => {
  let bed: AgentBed;

  beforeAll(async () => {
    bed = await createAgentBed(2, "har");
  });

  afterEach(async (context) => {
    if (context.task.result?.state === "fail") await bed.dump(context.task.name);
    await bed.reset();
  });

  afterAll(async () => {
    await bed?.destroy();
  });

  it("a changed priority (still lower) and interval apply without a flip: the Master stays Master", async () => {
    const [n1, n2] = [bed.node(0), bed.node(1)];
    const manifest = (backupPriority: number, intervalMs: number): string => haVipManifest({
      addresses: [`${bed.vip}/24`],
      advertisementIntervalMs: intervalMs,
      priorities: { [n1.name]: 150, [n2.name]: backupPriority },
      probe: { periodMs: 200 },
    });
    const [a1, a2] = await Promise.all([bed.start(n1, manifest(100, 200)), bed.start(n2, manifest(100, 200))]);
    if (a1 === undefined || a2 === undefined) throw new Error("two agents expected");
    await waitForSingleHolder(bed.lab, bed.vip, 10_000, n1);
    await a1.waitForState("Master", 5_000);
    await a2.waitForState("Backup", 5_000);
    const [before1, before2] = [a1.transitions().length, a2.transitions().length];
    const probe = await bed.lab.startProbe(`http://${bed.vip}/`, { intervalMs: 10 });

    // The file watch picks both up, reading each file once it has been quiet for a moment, never half-written.
    writeFileSync(a2.configPath, manifest(120, 300));
    writeFileSync(a1.configPath, manifest(120, 300));
    await waitFor(async () => (await a2.state()).priority === 120, { timeoutMs: 5_000, what: "n2 at priority 120" });
    const reloaded = (agent: typeof a1) => agent.logs().some((line) => line.msg === "configuration reloaded" && line["priority"] !== undefined);
    await waitFor(() => reloaded(a1) && reloaded(a2), { timeoutMs: 5_000, what: "both agents reloaded" });
    // Several Master_Down_Intervals at the new interval: a flip would have shown by now. Meanwhile the Backup's link
    // shows what the Master now sends.
    const adverts = await captureAdverts(bed.lab, n2, n1.address, 2_000);
    const report = await probe.stop();
    reportMeasure("live reconfiguration (priority 100 → 120 on the Backup, interval 200 → 300 ms)", report);

    const s1 = await a1.state();
    const s2 = await a2.state();
    expect(s1).toMatchObject({ state: "Master", priority: 150, holdsVip: true });
    expect(s2).toMatchObject({ state: "Backup", priority: 120, effectivePriority: 120, holdsVip: false });
    expect(a1.transitions().slice(before1)).toEqual([]);
    expect(a2.transitions().slice(before2)).toEqual([]);
    expect(await vipHolders(bed.lab, bed.vip)).toEqual([n1.name]);
    expect(report.failed).toBe(0);
    const lastReload = a1.logs().filter((line) => line.msg === "configuration reloaded").at(-1);
    expect(lastReload?.["interval"]).toBeDefined();
    // The new interval is on the wire: every advert carries Max Adver Int 30 cs (RFC 5798 §5.2.7), and they leave
    // about 300 ms apart, not the 200 ms of before (a noisy host delays a timer, it does not fire it early).
    expect(adverts.length).toBeGreaterThanOrEqual(4);
    expect(adverts.map((advert) => advert.maxAdverInterval)).toEqual(adverts.map(() => 30));
    const spacingMs = adverts.slice(1).map((advert, index) => Math.round((advert.at - (adverts[index]?.at ?? advert.at)) * 1000));
    expect(median(spacingMs), `spacing ${spacingMs.join(", ")} ms`).toBeGreaterThanOrEqual(270);
    expect(median(spacingMs), `spacing ${spacingMs.join(", ")} ms`).toBeLessThan(400);
  });

  it("SIGHUP reloads the file too", async () => {
    const [n1] = [bed.node(0)];
    const manifest = (priority: number): string => haVipManifest({
      addresses: [`${bed.vip}/24`], advertisementIntervalMs: 200, priorities: { [n1.name]: priority },
    });
    const a1 = await bed.start(n1, manifest(110));
    await a1.waitForState("Master", 5_000);
    writeFileSync(a1.configPath, manifest(130));
    a1.signal("SIGHUP");
    await waitFor(async () => (await a1.state()).priority === 130, { timeoutMs: 5_000, what: "n1 at priority 130" });
    expect((await a1.state()).state).toBe("Master");
  });
});
