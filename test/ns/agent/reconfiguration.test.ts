import { writeFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { haVipManifest, vipHolders } from "../../../src/lab/agent.js";
import { waitFor } from "../../../src/lab/index.js";
import { createAgentBed, reportMeasure, sleep, waitForSingleHolder, type AgentBed } from "./support.js";

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
    // Several Master_Down_Intervals at the new interval: a flip would have shown by now.
    await sleep(2_000);
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
