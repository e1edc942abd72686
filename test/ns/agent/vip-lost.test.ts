import { describe, expect, it } from "vitest";
import { haVipManifest } from "../../../testing/lab/agent.js";
import { addressesOn, waitFor } from "../../../testing/lab/index.js";
import { sleep, useAgentBed } from "./support.js";

describe("standalone agent: a VIP that leaves the interface behind the Master's back", () => {
  const bed = useAgentBed(1, "hvl");
  const manifest = (): string => haVipManifest({ addresses: [`${bed().vip}/24`], advertisementIntervalMs: 200 });
  const held = async (): Promise<boolean> => (await addressesOn(bed().lab, bed().node(0))).some((entry) => entry.address === bed().vip);

  it("a loop stalled past the VIP's kernel lease: the kernel deletes it, the Master puts it back, announces and counts it", async () => {
    const agent = await bed().start(bed().node(0), manifest());
    await agent.waitForState("Master", 5_000);
    await waitFor(held, { timeoutMs: 5_000, what: "the VIP on the interface" });
    agent.signal("SIGSTOP");
    try {
      // The lease at a 200 ms interval is 1 s; the kernel checks lifetimes on a timer of whole seconds.
      await waitFor(async () => !(await held()), { timeoutMs: 5_000, intervalMs: 100, what: "the kernel to delete the VIP whose lease lapsed" });
    } finally {
      agent.signal("SIGCONT");
    }
    await waitFor(async () => ((await agent.state()).counters["vip-restored"] ?? 0) >= 1, { timeoutMs: 5_000, what: "the restore to be counted" });
    expect(await held()).toBe(true);
    expect(agent.logs().some((line) => line.msg.startsWith("a virtual address this Master holds left the interface"))).toBe(true);
    expect((await agent.state()).state).toBe("Master");
  });

  it("removed by hand: back within moments, and the Master stays Master", async () => {
    const agent = await bed().start(bed().node(0), manifest());
    await agent.waitForState("Master", 5_000);
    await waitFor(held, { timeoutMs: 5_000, what: "the VIP on the interface" });
    await bed().lab.exec(bed().node(0), "ip", ["addr", "del", `${bed().vip}/24`, "dev", bed().node(0).ifname]);
    await waitFor(held, { timeoutMs: 2_000, intervalMs: 20, what: "the VIP back" });
    await sleep(100);
    expect((await agent.state()).counters["vip-restored"]).toBe(1);
    expect(agent.transitions().map((transition) => transition.to)).toEqual(["Backup", "Master"]);
  });
});
