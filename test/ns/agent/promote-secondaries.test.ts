import { writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { haVipManifest } from "../../../testing/lab/agent.js";
import { addressesOn, waitFor } from "../../../testing/lab/index.js";
import { useAgentBed } from "./support.js";

// The kernel's promote_secondaries (default 0): when an interface's primary address of a subnet goes, its secondaries
// of that subnet go too. The agent sets it on its interfaces, so a released VIP takes nothing else with it.
describe("standalone agent: promote_secondaries on the VRRP interface", () => {
  const bed = useAgentBed(1, "hps");
  const outside = ["10.99.0.10", "10.99.0.11"];

  const held = async (address: string): Promise<boolean> => (await addressesOn(bed().lab, bed().node(0))).some((entry) => entry.address === address);

  async function turnOff(): Promise<void> {
    const host = bed().node(0);
    for (const scope of ["all", host.ifname]) await bed().lab.exec(host, "sysctl", ["-qw", `net.ipv4.conf.${scope}.promote_secondaries=0`]);
  }

  function document(name: string, vrid: number, address: string): string {
    return haVipManifest({ name, virtualRouterID: vrid, addresses: [`${address}/24`], advertisementIntervalMs: 200 });
  }

  it("a released VIP that was its subnet's first address leaves another resource's VIP of that subnet in place", async () => {
    await turnOff();
    const [first = "", second = ""] = outside;
    // The first VIP of a subnet on the interface is its primary: add them one after the other.
    const agent = await bed().start(bed().node(0), document("first", 21, first));
    await waitFor(() => held(first), { timeoutMs: 5_000, what: "the first VIP on the interface" });
    writeFileSync(agent.configPath, [document("first", 21, first), document("second", 22, second)].join("---\n"));
    await waitFor(() => held(second), { timeoutMs: 5_000, what: "the second VIP on the interface" });
    writeFileSync(agent.configPath, document("second", 22, second));
    // Without the setting the kernel deletes the second VIP with the first; its next lease renewal puts it back within
    // an advert interval, so only sampling in between shows the gap.
    const samples: boolean[] = [];
    await waitFor(async () => {
      samples.push(await held(second));
      return !(await held(first));
    }, { timeoutMs: 5_000, intervalMs: 10, what: "the first VIP to go" });
    for (let sample = 0; sample < 20; sample++) samples.push(await held(second));
    expect(samples.every(Boolean)).toBe(true);
    const setting = await bed().lab.exec(bed().node(0), "sysctl", ["-n", `net.ipv4.conf.${bed().node(0).ifname}.promote_secondaries`]);
    expect(setting.stdout.trim()).toBe("1");
    expect(agent.logs().some((line) => line.msg.startsWith("set promote_secondaries"))).toBe(true);
  });

  it("the node's own address, re-added while a VIP of its subnet is the primary, stays when the VIP is released", async () => {
    await turnOff();
    const host = bed().node(0);
    const agent = await bed().start(host, document("web", 23, bed().vip));
    await agent.waitForState("Master", 5_000);
    await waitFor(() => held(bed().vip), { timeoutMs: 5_000, what: "the VIP on the interface" });
    // As a DHCP client's renewal or a network manager does: the node's address goes and comes back, now behind the VIP.
    await bed().lab.exec(host, "ip", ["addr", "del", `${host.address}/24`, "dev", host.ifname]);
    await bed().lab.exec(host, "ip", ["addr", "add", `${host.address}/24`, "dev", host.ifname]);
    await waitFor(() => held(bed().vip), { timeoutMs: 5_000, what: "the VIP back on the interface" });
    await agent.stop();
    expect(await held(bed().vip)).toBe(false);
    expect(await held(host.address)).toBe(true);
  });
});
