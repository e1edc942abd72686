import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { haVipManifest, vipHolders, type AgentProcess } from "../../../testing/lab/agent.js";
import { waitFor, type Probe } from "../../../testing/lab/index.js";
import { createAgentBed, reportMeasure, waitForSingleHolder, type AgentBed } from "./support.js";

const intervalMs = 500;
// Counted from the end of the heal command (its four nft runs took 0.2-1.5 s here, and the path opens partway through):
// n2 steps down on n1's next advert, within one interval plus 250 ms of timer lateness (its own log's transition
// time; measured -150 to 233 ms in four runs here). One holder as polled with `ip` in both namespaces adds n2's
// release linger and the polling, which on two busy cores took 290-1043 ms; 2.1 s keeps twice the worst.
const stepDownBoundMs = intervalMs + 250;
const singleHolderBoundMs = 2_100;
// The client's outage once healed: measured 0 ms in every run (n1 announces again before n2 lets the VIP go).
const clientOutageBoundMs = intervalMs + 500;

describe("standalone agent: split brain", () => {
  let bed: AgentBed;

  beforeAll(async () => {
    bed = await createAgentBed(2, "has");
  });

  afterEach(async (context) => {
    if (context.task.result?.state === "fail") await bed.dump(context.task.name);
    await bed.reset();
  });

  afterAll(async () => {
    await bed?.destroy();
  });

  /** n1 (150) Master, n2 (100) Backup; then they lose each other and both become Master, with the client watching. */
  async function split(): Promise<{ a1: AgentProcess; a2: AgentProcess; probe: Probe }> {
    const [n1, n2] = [bed.node(0), bed.node(1)];
    const manifest = haVipManifest({
      addresses: [`${bed.vip}/24`],
      advertisementIntervalMs: intervalMs,
      priorities: { [n1.name]: 150, [n2.name]: 100 },
      probe: { periodMs: 200 },
    });
    const [a1, a2] = await Promise.all([bed.start(n1, manifest), bed.start(n2, manifest)]);
    if (a1 === undefined || a2 === undefined) throw new Error("two agents expected");
    await waitForSingleHolder(bed.lab, bed.vip, 10_000, n1);
    await a2.waitForState("Backup", 5_000);
    await bed.lab.isolatePeers(n1, n2);
    await a2.waitForState("Master", 5_000);
    // n2 announced last, so the client now sends the VIP's traffic to n2's MAC.
    const probe = await bed.lab.startProbe(`http://${bed.vip}/`, { intervalMs: 10 });
    return { a1, a2, probe };
  }

  it("RFC 9568 §6.4.3: peers that cannot hear each other both become Master; once healed, the lower one steps down within an advert interval plus 250 ms and one holder is seen within 2.1 s", async () => {
    const [n1, n2] = [bed.node(0), bed.node(1)];
    const { a1, a2, probe } = await split();
    await probe.stop();
    expect(a2.transitions().at(-1)?.reason).toBe("master-down-timer-expired");
    expect((await a1.state()).state).toBe("Master");
    expect((await vipHolders(bed.lab, bed.vip)).sort()).toEqual([n1.name, n2.name]);

    // Counted from the end of the heal command: its four nft runs take up to a second on a busy machine.
    const healStartedAt = Date.now();
    await bed.lab.healPeers(n1, n2);
    const healedAt = Date.now();
    await waitForSingleHolder(bed.lab, bed.vip, 5_000, n1);
    const resolvedMs = Date.now() - healedAt;
    const stepDown = a2.transitions().at(-1);
    console.log(`[measure] split brain healed: heal command ${healedAt - healStartedAt} ms, then one holder after ${resolvedMs} ms (polled), n2 stepped down ${(stepDown?.time ?? NaN) - healedAt} ms after the command, interval ${intervalMs} ms`);
    expect(stepDown).toMatchObject({ from: "Master", to: "Backup", reason: "higher-priority-advert" });
    expect((stepDown?.time ?? Infinity) - healedAt).toBeLessThan(stepDownBoundMs);
    expect(resolvedMs).toBeLessThan(singleHolderBoundMs);
    expect(a1.transitions().filter((t) => t.from === "Master")).toEqual([]);
  });

  it("keepalived garp_lower_prio_repeat: once healed, the remaining Master re-announces the VIP and wins the client back, its outage under an advert interval plus 500 ms", async () => {
    const [n1, n2] = [bed.node(0), bed.node(1)];
    const { a2, probe } = await split();
    await bed.lab.healPeers(n1, n2);
    await a2.waitForState("Backup", 5_000);
    // Without a new announcement the client keeps n2's MAC: Linux looks again only after DELAY (5 s) and 3 unicast
    // probes, ~8 s in all.
    try {
      await waitFor(() => (probe.snapshot().answeredBy[n1.name] ?? 0) > 10, {
        timeoutMs: 5_000, what: "the client served by n1 after healing",
      });
    } finally {
      reportMeasure("split brain healed, client back on n1", await probe.stop());
    }
    expect((await probe.stop()).maxOutageMs).toBeLessThan(clientOutageBoundMs);
  });
});
