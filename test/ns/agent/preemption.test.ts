import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { haVipManifest, vipHolders, type ManifestPreemption } from "../../../testing/lab/agent.js";
import { createAgentBed, reportMeasure, sleep, waitForSingleHolder, type AgentBed } from "./support.js";

const intervalMs = 200;

// n2 (priority 100) is Master alone; then n1 (priority 150) comes back, as after a reboot.
describe("standalone agent: preemption of a recovered higher-priority node", () => {
  let bed: AgentBed;

  beforeAll(async () => {
    bed = await createAgentBed(2, "hap");
  });

  afterEach(async (context) => {
    if (context.task.result?.state === "fail") await bed.dump(context.task.name);
    await bed.reset();
  });

  afterAll(async () => {
    await bed?.destroy();
  });

  async function lowerPriorityMaster(preemption: ManifestPreemption) {
    const manifest = haVipManifest({
      addresses: [`${bed.vip}/24`],
      advertisementIntervalMs: intervalMs,
      priorities: { [bed.node(0).name]: 150, [bed.node(1).name]: 100 },
      preemption,
    });
    const a2 = await bed.start(bed.node(1), manifest);
    await a2.waitForState("Master", 10_000);
    await waitForSingleHolder(bed.lab, bed.vip, 5_000, bed.node(1));
    return { a2, start: () => bed.start(bed.node(0), manifest) };
  }

  it("RFC 5798 §6.4.2 Preempt_Mode True: the higher priority takes the VIP back", async () => {
    const { a2, start } = await lowerPriorityMaster({ mode: "Always" });
    const probe = await bed.lab.startProbe(`http://${bed.vip}/`, { intervalMs: 10 });
    const a1 = await start();
    await a1.waitForState("Master", 5_000);
    await waitForSingleHolder(bed.lab, bed.vip, 5_000, bed.node(0));
    await sleep(300);
    const report = await probe.stop();
    reportMeasure("preemption Always (n1 takes the VIP back)", report);
    expect(a1.transitions().at(-1)).toMatchObject({ from: "Backup", to: "Master", reason: "preempted" });
    expect(a2.transitions().at(-1)).toMatchObject({ from: "Master", to: "Backup", reason: "higher-priority-advert" });
    expect(report.answeredBy[bed.node(0).name] ?? 0).toBeGreaterThan(0);
    expect(report.maxOutageMs).toBeLessThan(1_500);
  });

  it("RFC 5798 §6.4.2 Preempt_Mode False: the higher priority stays Backup", async () => {
    const { a2, start } = await lowerPriorityMaster({ mode: "Never" });
    const a1 = await start();
    await a1.waitForState("Backup", 5_000);
    // Many Master_Down_Intervals (≈ 3 × 200 ms + skew): a preempting router would have taken over long before.
    await sleep(3_000);
    expect((await a1.state()).state).toBe("Backup");
    expect((await a2.state()).state).toBe("Master");
    expect(a1.transitions().some((t) => t.to === "Master")).toBe(false);
    expect(await vipHolders(bed.lab, bed.vip)).toEqual([bed.node(1).name]);
    expect((await a1.state()).masterAddress).toBe(bed.node(1).address);
  });

  it("keepalived preempt_delay (mode Delayed, 2 s): the higher priority takes over only after the delay", async () => {
    const { a2, start } = await lowerPriorityMaster({ mode: "Delayed", delayMs: 2_000 });
    const a1 = await start();
    const backup = await a1.waitForState("Backup", 5_000);
    expect(backup.holdsVip).toBe(false);
    await sleep(1_000);
    expect(await vipHolders(bed.lab, bed.vip)).toEqual([bed.node(1).name]);
    await a1.waitForState("Master", 8_000);
    await waitForSingleHolder(bed.lab, bed.vip, 5_000, bed.node(0));
    const joined = a1.transitions().find((t) => t.to === "Backup");
    const tookOver = a1.transitions().find((t) => t.to === "Master");
    if (joined === undefined || tookOver === undefined) throw new Error("n1 should have joined as Backup, then taken over");
    const waitedMs = tookOver.time - joined.time;
    console.log(`[measure] preemption Delayed 2 s: n1 took over ${waitedMs} ms after joining as Backup`);
    expect(waitedMs).toBeGreaterThanOrEqual(1_500);
    expect(waitedMs).toBeLessThanOrEqual(5_000);
    expect(tookOver.reason).toBe("preempted");
    expect(a2.transitions().at(-1)).toMatchObject({ from: "Master", to: "Backup" });
  });
});
