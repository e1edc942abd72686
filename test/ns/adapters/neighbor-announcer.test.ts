import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLab, waitFor, type Lab, type LabHost } from "../../../testing/lab/index.js";
import { startDriver, type Driver } from "./driver.js";

// The client first learns the VIP at n2's MAC (a connection attempt resolves it); then the VIP moves to n1, and one
// announcement from n1 must repoint the client's neighbour entry to n1's MAC.
describe("neighbour announcements move a VIP in the client's neighbour table", () => {
  let lab: Lab | undefined;
  let hosts: { n1: LabHost; n2: LabHost; client: LabHost };
  let n1: Driver;
  let n2: Driver;

  beforeAll(async () => {
    lab = await createLab({ nodes: 2, idPrefix: "hcna" });
    const [first, second] = lab.nodes;
    if (first === undefined || second === undefined) throw new Error("lab without two nodes");
    hosts = { n1: first, n2: second, client: lab.client };
    [n1, n2] = await Promise.all([startDriver(lab, first), startDriver(lab, second)]);
  });

  afterAll(async () => {
    n1?.close();
    n2?.close();
    await lab?.destroy();
  });

  async function clientNeighbor(address: string): Promise<string | undefined> {
    const shown = await lab?.exec(hosts.client, "ip", ["-j", "neigh", "show", "to", address, "dev", "eth0"]);
    const entries = JSON.parse(shown?.stdout || "[]") as { lladdr?: string }[];
    return entries[0]?.lladdr;
  }

  it.each([
    ["RFC 5798 §6.4.2 MUST: gratuitous ARP for an IPv4 VIP", "ipv4", 32],
    ["RFC 5798 §6.4.2 MUST: unsolicited Neighbor Advertisement for an IPv6 VIP", "ipv6", 128],
  ] as const)("%s updates the client to the new master's MAC", async (_, family, prefixLength) => {
    if (lab === undefined) throw new Error("no lab");
    const { address: vip4, address6: vip6 } = lab.vip(family === "ipv4" ? 0 : 1);
    const address = family === "ipv4" ? vip4 : vip6;
    const vip = { family, address, prefixLength };
    expect(await n2.call({ op: "vip", backend: "netlink", action: "add", vip, ifname: "eth0" })).toEqual({ ok: true });
    const url = family === "ipv4" ? `http://${address}:9/` : `http://[${address}]:9/`;
    await waitFor(async () => {
      await lab?.httpGet(hosts.client, url, { timeoutMs: 500 });
      return (await clientNeighbor(address)) === hosts.n2.mac;
    }, { timeoutMs: 15_000, what: `the client to learn ${address} at n2's MAC` });

    expect(await n2.call({ op: "vip", backend: "netlink", action: "remove", vip, ifname: "eth0" })).toEqual({ ok: true });
    expect(await n1.call({ op: "vip", backend: "netlink", action: "add", vip, ifname: "eth0" })).toEqual({ ok: true });
    // Adding the address announces nothing by itself: the entry still points at n2 until n1 announces.
    expect(await clientNeighbor(address)).toBe(hosts.n2.mac);

    const started = performance.now();
    const announced = n1.call<{ ok: boolean; elapsedMs: number }>({ op: "announce", address, ifname: "eth0" });
    await waitFor(async () => (await clientNeighbor(address)) === hosts.n1.mac, {
      timeoutMs: 10_000,
      intervalMs: 5,
      what: `the client to see ${address} at n1's MAC`,
    });
    const updatedAfterMs = performance.now() - started;
    const outcome = await announced;
    expect(outcome.ok).toBe(true);
    console.log(
      `[measure] ${family} announcement: client neighbour entry updated ${updatedAfterMs.toFixed(0)} ms after the ` +
        `request (includes driver round trip and polling); announce() resolved after ${outcome.elapsedMs.toFixed(0)} ms`,
    );
    expect(await n1.call({ op: "vip", backend: "netlink", action: "remove", vip, ifname: "eth0" })).toEqual({ ok: true });
  });

  it("reports a missing interface instead of announcing", async () => {
    if (lab === undefined) throw new Error("no lab");
    const { address, address6 } = lab.vip(2);
    expect(await n1.call({ op: "announce", address, ifname: "nope0" })).toMatchObject({ ok: false, code: "no-such-interface" });
    expect(await n1.call({ op: "announce", address: address6, ifname: "nope0" })).toMatchObject({ ok: false, code: "no-such-interface" });
  });
});
