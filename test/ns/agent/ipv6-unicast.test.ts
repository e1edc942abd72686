import { describe, expect, it } from "vitest";
import { haVipManifest, vipHolders } from "../../../testing/lab/agent.js";
import type { LabHost } from "../../../testing/lab/index.js";
import { compareAddressBytes, parseAddress } from "../../../src/vrrp/codec.js";
import { useAgentBed, waitForSingleHolder } from "./support.js";

const intervalMs = 200;

function compareAddress6(a: LabHost, b: LabHost): number {
  const [left, right] = [parseAddress(a.address6, "ipv6"), parseAddress(b.address6, "ipv6")];
  if (left === undefined || right === undefined) throw new Error(`lab IPv6 addresses ${a.address6}, ${b.address6}`);
  return compareAddressBytes(left, right);
}

describe("standalone agent: IPv6 unicast", () => {
  const bed = useAgentBed(2, "hu6");
  const vip6 = (): string => bed().lab.vip(0).address6;

  it("RFC 5798 §6.4.3: of two IPv6 unicast Masters with equal priority, the one with the higher primary address stays Master", async () => {
    const [n1, n2] = [bed().node(0), bed().node(1)];
    const higher = compareAddress6(n1, n2) > 0 ? n1 : n2;
    const manifestFor = (peer: LabHost): string => haVipManifest({
      addresses: [`${vip6()}/64`],
      advertisementIntervalMs: intervalMs,
      transport: { mode: "Unicast", peers: [peer.address6] },
    });
    // Apart, each is alone and becomes Master; together, equal priorities leave the tie to the addresses.
    await bed().lab.isolatePeers(n1, n2);
    const [a1, a2] = await Promise.all([bed().start(n1, manifestFor(n2)), bed().start(n2, manifestFor(n1))]);
    await Promise.all([a1, a2].map((agent) => agent.waitForState("Master", 10_000)));
    expect((await vipHolders(bed().lab, vip6())).sort()).toEqual([n1.name, n2.name].sort());

    await bed().lab.healPeers(n1, n2);
    // A few advert intervals, generous for a loaded machine.
    await waitForSingleHolder(bed().lab, vip6(), 20 * intervalMs, higher);
    const [winner, loser] = higher === n1 ? [a1, a2] : [a2, a1];
    expect((await winner.state()).state).toBe("Master");
    expect(await loser.waitForState("Backup", 2_000)).toMatchObject({ holdsVip: false, masterAddress: higher.address6 });
    expect(loser.transitions().at(-1)).toMatchObject({ from: "Master", to: "Backup", reason: "higher-priority-advert" });
    expect(winner.transitions().filter((t) => t.from === "Master")).toEqual([]);
    // Each hears the other's adverts: nothing is dropped for a wrong checksum or an unknown source.
    expect((await loser.state()).counters).not.toHaveProperty("dropped:bad-checksum");
    expect((await winner.state()).counters).not.toHaveProperty("dropped:unknown-peer");
  });
});
