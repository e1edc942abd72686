import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { haVipManifest, vipHolders } from "../../../testing/lab/agent.js";
import { createAgentBed, waitForSingleHolder, type AgentBed } from "./support.js";

const intervalMs = 200;

describe("standalone agent: election", () => {
  let bed: AgentBed;

  beforeAll(async () => {
    bed = await createAgentBed(3, "hae");
  });

  afterEach(async (context) => {
    if (context.task.result?.state === "fail") await bed.dump(context.task.name);
    await bed.reset();
  });

  afterAll(async () => {
    await bed?.destroy();
  });

  it("RFC 5798 §6.4.2: the highest priority becomes Master and alone holds the VIP", async () => {
    const [n1, n2, n3] = [bed.node(0), bed.node(1), bed.node(2)];
    const manifest = haVipManifest({
      addresses: [`${bed.vip}/24`],
      advertisementIntervalMs: intervalMs,
      priorities: { [n1.name]: 100, [n2.name]: 150, [n3.name]: 120 },
      probe: { periodMs: 200 },
    });
    const agents = await Promise.all([n1, n2, n3].map((host) => bed.start(host, manifest)));
    await waitForSingleHolder(bed.lab, bed.vip, 10_000, n2);
    const [a1, a2, a3] = agents;
    expect((await a2?.waitForState("Master", 5_000))?.holdsVip).toBe(true);
    expect((await a1?.waitForState("Backup", 5_000))?.holdsVip).toBe(false);
    expect((await a3?.waitForState("Backup", 5_000))?.holdsVip).toBe(false);
    expect((await a1?.state())?.masterAddress).toBe(n2.address);
    // Stable: still exactly one holder after several advert intervals.
    await new Promise((resolve) => setTimeout(resolve, 10 * intervalMs));
    expect(await vipHolders(bed.lab, bed.vip)).toEqual([n2.name]);
    const answer = await bed.lab.httpGet(bed.lab.client, `http://${bed.vip}/`);
    expect(answer).toEqual({ status: 200, body: n2.name });
  });

  it("RFC 5798 §6.4.3: of two Masters with equal priority, the one with the higher primary address stays Master", async () => {
    const [n1, n2, n3] = [bed.node(0), bed.node(1), bed.node(2)];
    const manifest = haVipManifest({ addresses: [`${bed.vip}/24`], advertisementIntervalMs: intervalMs });
    // Apart, each one is alone on the link and becomes Master; together, the tie is broken by address (n3 is .13).
    await bed.lab.isolatePeers(n1, n2);
    await bed.lab.isolatePeers(n1, n3);
    await bed.lab.isolatePeers(n2, n3);
    const agents = await Promise.all([n1, n2, n3].map((host) => bed.start(host, manifest)));
    await Promise.all(agents.map((agent) => agent.waitForState("Master", 10_000)));
    expect((await vipHolders(bed.lab, bed.vip)).sort()).toEqual([n1.name, n2.name, n3.name]);
    await bed.lab.healPeers(n1, n2);
    await bed.lab.healPeers(n1, n3);
    await bed.lab.healPeers(n2, n3);
    await waitForSingleHolder(bed.lab, bed.vip, 5_000, n3);
    const [a1, a2, a3] = agents;
    expect((await a3?.state())?.state).toBe("Master");
    expect((await a1?.waitForState("Backup", 2_000))?.masterAddress).toBe(n3.address);
    expect((await a2?.waitForState("Backup", 2_000))?.masterAddress).toBe(n3.address);
    expect(a3?.transitions().filter((t) => t.from === "Master")).toEqual([]);
    // Whether the client follows (it may hold a loser's MAC for the VIP) is split-brain.test.ts's re-announce test.
  });
});
