import { describe, expect, it } from "vitest";
import { haVipManifest, vipHolders } from "../../../testing/lab/agent.js";
import { sleep, useAgentBed, waitForSingleHolder } from "./support.js";

const intervalMs = 200;
const vrid = 51;

describe("standalone agent: two resources share a VRID on one segment", () => {
  const bed = useAgentBed(2, "hax");
  const vipB = (): string => bed().lab.vip(1).address;

  it("RFC 5798 §7.1 MAY: adverts with another address list are dropped and counted, so A's Master keeps its VIP next to B", async () => {
    const [n1, n2] = [bed().node(0), bed().node(1)];
    // One agent process refuses two documents with one VRID on one interface: B runs as a second process per node.
    const manifestA = haVipManifest({
      name: "a", virtualRouterID: vrid, addresses: [`${bed().vip}/24`], advertisementIntervalMs: intervalMs,
      priorities: { [n1.name]: 150, [n2.name]: 100 },
    });
    // B's Master outranks A's: were its adverts taken for A's, A's Master would yield and A's VIP would go.
    const manifestB = haVipManifest({
      name: "b", virtualRouterID: vrid, addresses: [`${vipB()}/24`], advertisementIntervalMs: intervalMs,
      priorities: { [n1.name]: 50, [n2.name]: 200 },
    });
    const [a1, a2] = await Promise.all([bed().start(n1, manifestA), bed().start(n2, manifestA)]);
    await waitForSingleHolder(bed().lab, bed().vip, 10_000, n1);
    await a2.waitForState("Backup", 5_000);

    const [b1, b2] = await Promise.all([bed().start(n1, manifestB, { httpPort: 9751 }), bed().start(n2, manifestB, { httpPort: 9751 })]);
    await waitForSingleHolder(bed().lab, vipB(), 10_000, n2);
    await b1.waitForState("Backup", 5_000);
    // Many advert intervals of both resources on the segment.
    await sleep(15 * intervalMs);

    expect(await vipHolders(bed().lab, bed().vip)).toEqual([n1.name]);
    expect(await vipHolders(bed().lab, vipB())).toEqual([n2.name]);
    expect(await a1.state()).toMatchObject({ state: "Master", holdsVip: true });
    expect(await a2.state()).toMatchObject({ state: "Backup", masterAddress: n1.address });
    expect(await b2.state()).toMatchObject({ state: "Master", holdsVip: true });
    expect(await b1.state()).toMatchObject({ state: "Backup", masterAddress: n2.address });
    expect(a1.transitions().filter((t) => t.from === "Master")).toEqual([]);
    expect(b2.transitions().filter((t) => t.from === "Master")).toEqual([]);

    // Each Master counts the other's adverts under the new reason and logs them with the sender (not a quiet drop). The
    // Backups do not hear the other Master: it runs on their own node, and multicast loopback is off.
    for (const agent of [a1, b2]) expect((await agent.state()).counters["dropped:address-mismatch"]).toBeGreaterThan(0);
    expect(a1.logs()).toContainEqual(expect.objectContaining({ reason: "address-mismatch", source: n2.address }));
    expect(b2.logs()).toContainEqual(expect.objectContaining({ reason: "address-mismatch", source: n1.address }));
  });
});
