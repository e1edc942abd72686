import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLab, waitFor, type Lab } from "../../../testing/lab/index.js";
import { decodeIpv4Datagram } from "../../../src/vrrp/codec.js";
import { startDriver, type Driver, type DriverEvent } from "./driver.js";

// 40 bytes, like a VRRPv3 advert with 9 IPv4 addresses; bytes 6-7 are where the kernel writes the IPv6 checksum.
const payload = Buffer.from(Array.from({ length: 40 }, (_, index) => (index * 7 + 1) & 0xff));
const payloadHex = payload.toString("hex");
/** Byte 1 of the payload, where an advert carries its VRID (RFC 5798 §5.2.3). */
const vrid = payload[1] ?? 0;

function withVrid(other: number): string {
  const bytes = Buffer.from(payload);
  bytes[1] = other;
  return bytes.toString("hex");
}

function datagramsOf(driver: Driver, name: string): readonly DriverEvent[] {
  return driver.events.filter((event) => event.event === "datagram" && event.name === name);
}

function ipv4(event: DriverEvent) {
  const decoded = decodeIpv4Datagram(Buffer.from(String(event.hex), "hex"));
  if (!decoded.ok) throw new Error(`not an IPv4 VRRP datagram: ${JSON.stringify(decoded.error)}`);
  return decoded.value;
}

describe("raw VRRP transport between two lab nodes", () => {
  let lab: Lab | undefined;
  let n1: Driver;
  let n2: Driver;

  beforeAll(async () => {
    lab = await createLab({ nodes: 2, idPrefix: "hcrt" });
    const [host1, host2] = lab.nodes;
    if (host1 === undefined || host2 === undefined) throw new Error("lab without two nodes");
    [n1, n2] = await Promise.all([startDriver(lab, host1), startDriver(lab, host2)]);
    for (const driver of [n1, n2]) {
      for (const family of ["ipv4", "ipv6"] as const) {
        const started = await driver.call({ op: "transport-start", name: `m-${family}`, family, ifname: "eth0", vrid, isMulticast: true });
        expect(started).toEqual({ ok: true });
      }
    }
    // Bound to lo: proves SO_BINDTODEVICE keeps a socket off every other interface.
    expect(await n2.call({ op: "transport-start", name: "lo", family: "ipv4", ifname: "lo", vrid, isMulticast: false })).toEqual({ ok: true });
  });

  afterAll(async () => {
    n1?.close();
    n2?.close();
    await lab?.destroy();
  });

  it("RFC 5798 §5.1.1.3 MUST: IPv4 multicast advert arrives at the peer with TTL 255, to 224.0.0.18, payload intact", async () => {
    const [host1] = lab?.nodes ?? [];
    expect(await n1.call({ op: "transport-send", name: "m-ipv4", hex: payloadHex, destination: "224.0.0.18" })).toEqual({ ok: true });
    const event = await n2.nextEvent((e) => e.event === "datagram" && e.name === "m-ipv4", "n2 hears n1's multicast advert");
    const datagram = ipv4(event);
    expect(datagram.ttl).toBe(255);
    expect(datagram.protocol).toBe(112);
    expect(datagram.source).toBe(host1?.address);
    expect(datagram.destination).toBe("224.0.0.18");
    expect(Buffer.from(datagram.payload).toString("hex")).toBe(payloadHex);
    expect(event.source).toBe(host1?.address);
  });

  it("IPv4 unicast advert reaches the peer's address with TTL 255", async () => {
    const [host1, host2] = lab?.nodes ?? [];
    const before = datagramsOf(n2, "m-ipv4").length;
    const sent = await n1.call({ op: "transport-send", name: "m-ipv4", hex: payloadHex, destination: host2?.address });
    expect(sent).toEqual({ ok: true });
    const event = await n2.nextEvent(
      (e) => e.event === "datagram" && e.name === "m-ipv4" && ipv4(e).destination === host2?.address,
      "n2 hears n1's unicast advert",
    );
    expect(datagramsOf(n2, "m-ipv4").length).toBe(before + 1);
    expect(ipv4(event)).toMatchObject({ ttl: 255, source: host1?.address });
  });

  it("RFC 5798 §5.1.2.1/§5.1.2.3: IPv6 multicast advert comes from n1's link-local address, checksum filled and verified by the kernel", async () => {
    expect(await n1.call({ op: "transport-send", name: "m-ipv6", hex: payloadHex, destination: "ff02::12" })).toEqual({ ok: true });
    const event = await n2.nextEvent((e) => e.event === "datagram" && e.name === "m-ipv6", "n2 hears n1's IPv6 advert");
    const linkLocal = await n1.call<{ ok: boolean; value: string }>({
      op: "primary-address", ifname: "eth0", family: "ipv6", scope: "link",
    });
    expect(linkLocal.ok).toBe(true);
    expect(event.source).toBe(linkLocal.value);
    const bytes = Buffer.from(String(event.hex), "hex");
    expect(bytes.length).toBe(40);
    expect(Buffer.concat([bytes.subarray(0, 6), bytes.subarray(8)])).toEqual(Buffer.concat([payload.subarray(0, 6), payload.subarray(8)]));
    expect(bytes.readUInt16BE(6)).not.toBe(payload.readUInt16BE(6));
  });

  it("IPv6 unicast advert reaches the peer from n1's global address", async () => {
    const [host1, host2] = lab?.nodes ?? [];
    expect(await n1.call({ op: "transport-send", name: "m-ipv6", hex: payloadHex, destination: host2?.address6 })).toEqual({ ok: true });
    const event = await n2.nextEvent(
      (e) => e.event === "datagram" && e.name === "m-ipv6" && e.source === host1?.address6,
      "n2 hears n1's IPv6 unicast advert",
    );
    expect(Buffer.from(String(event.hex), "hex").length).toBe(40);
  });

  it("a sender does not hear its own multicast, and a socket bound to lo hears nothing from eth0", async () => {
    // A looped-back copy would be queued on n1 before the frame even leaves, so once n2 has it, n1 would too.
    await n1.call({ op: "transport-send", name: "m-ipv4", hex: payloadHex, destination: "224.0.0.18" });
    await n2.nextEvent((e) => e.event === "datagram" && e.name === "m-ipv4", "n2 hears one more multicast advert");
    await n1.call({ op: "transport-send", name: "m-ipv6", hex: payloadHex, destination: "ff02::12" });
    await n2.nextEvent((e) => e.event === "datagram" && e.name === "m-ipv6", "n2 hears one more IPv6 advert");
    expect(datagramsOf(n1, "m-ipv4")).toEqual([]);
    expect(datagramsOf(n1, "m-ipv6")).toEqual([]);
    expect(datagramsOf(n2, "lo")).toEqual([]);
  });

  it("a burst of 1,000 adverts sent in one turn of the loop waits whole in the receiver's buffer while its loop is busy", async () => {
    const before = datagramsOf(n2, "m-ipv4").length;
    const busy = n2.call({ op: "busy", ms: 3_000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await n1.call({ op: "transport-burst", name: "m-ipv4", hex: payloadHex, destination: "224.0.0.18", count: 1_000 })).toEqual({ ok: true, failed: 0 });
    await busy;
    await waitFor(async () => datagramsOf(n2, "m-ipv4").length - before >= 1_000, { timeoutMs: 10_000, what: "n2 to read the burst" }).catch(() => undefined);
    expect(datagramsOf(n2, "m-ipv4").length - before).toBe(1_000);
  });

  it("RFC 5798 §5.1.1.1 MUST: the source stays n1's primary address while n1 holds a VIP on the same interface", async () => {
    const [host1, host2] = lab?.nodes ?? [];
    if (lab === undefined || host1 === undefined || host2 === undefined) throw new Error("no lab");
    const vip = { family: "ipv4", address: lab.vip(0).address, prefixLength: 32 };
    expect(await n1.call({ op: "vip", backend: "netlink", action: "add", vip, ifname: "eth0" })).toEqual({ ok: true });
    try {
      for (const destination of ["224.0.0.18", host2.address]) {
        expect(await n1.call({ op: "transport-send", name: "m-ipv4", hex: payloadHex, destination })).toEqual({ ok: true });
        const event = await n2.nextEvent(
          (e) => e.event === "datagram" && e.name === "m-ipv4" && ipv4(e).destination === destination,
          `n2 hears n1's advert to ${destination}`,
        );
        expect(ipv4(event).source).toBe(host1.address);
      }
    } finally {
      await n1.call({ op: "vip", backend: "netlink", action: "remove", vip, ifname: "eth0" });
    }
  });

  it("routers on one interface share one socket per family: each hears only its VRID, a VRID nobody serves is counted, a VRID serves once", async () => {
    const [host1] = lab?.nodes ?? [];
    const before = await n2.call<{ open: number; unclaimed: string[] }>({ op: "socket-pool" });
    expect(await n2.call({ op: "transport-start", name: "vrid-9", family: "ipv4", ifname: "eth0", vrid: 9, isMulticast: true })).toEqual({ ok: true });
    expect((await n2.call<{ open: number }>({ op: "socket-pool" })).open).toBe(before.open);
    expect(await n2.call({ op: "transport-start", name: "again", family: "ipv4", ifname: "eth0", vrid: 9, isMulticast: false })).toMatchObject({ ok: false, code: "vrid-in-use" });

    const ownBefore = datagramsOf(n2, "m-ipv4").length;
    expect(await n1.call({ op: "transport-send", name: "m-ipv4", hex: withVrid(9), destination: "224.0.0.18" })).toEqual({ ok: true });
    const event = await n2.nextEvent((e) => e.event === "datagram" && e.name === "vrid-9", "n2's VRID 9 router hears its advert");
    expect(Buffer.from(ipv4(event).payload)[1]).toBe(9);
    expect(await n1.call({ op: "transport-send", name: "m-ipv4", hex: withVrid(200), destination: "224.0.0.18" })).toEqual({ ok: true });
    const unclaimedFrom = `other-vrid from ${host1?.address ?? ""}`;
    let unclaimed: string[] = [];
    await waitFor(async () => {
      unclaimed = (await n2.call<{ unclaimed: string[] }>({ op: "socket-pool" })).unclaimed.slice(before.unclaimed.length);
      return unclaimed.length > 0;
    }, { timeoutMs: 5_000, what: "n2's socket to count the advert for VRID 200" });
    expect(unclaimed).toEqual([unclaimedFrom]);
    expect(datagramsOf(n2, "m-ipv4").length).toBe(ownBefore);

    expect(await n2.call({ op: "transport-stop", name: "vrid-9" })).toEqual({ ok: true });
    expect((await n2.call<{ open: number }>({ op: "socket-pool" })).open).toBe(before.open);
  });

  it("fails to start on a missing interface, refuses to send when stopped, and stops twice without harm", async () => {
    const missing = await n1.call({ op: "transport-start", name: "missing", family: "ipv4", ifname: "nope0", vrid, isMulticast: true });
    expect(missing).toMatchObject({ ok: false, code: "no-such-interface" });
    expect(await n1.call({ op: "transport-stop", name: "m-ipv4" })).toEqual({ ok: true });
    const sent = await n1.call({ op: "transport-send", name: "m-ipv4", hex: payloadHex, destination: "224.0.0.18" });
    expect(sent).toMatchObject({ ok: false, code: "not-started" });
  });

  it("finds the interface that holds the node's address, and its primary addresses", async () => {
    const [host1] = lab?.nodes ?? [];
    expect(await n1.call({ op: "interface-for", address: host1?.address })).toEqual({ ok: true, value: "eth0" });
    expect(await n1.call({ op: "interface-for", address: host1?.address6 })).toEqual({ ok: true, value: "eth0" });
    expect(await n1.call({ op: "interface-for", address: "192.0.2.1" })).toMatchObject({ ok: false, code: "no-such-interface" });
    expect(await n1.call({ op: "primary-address", ifname: "eth0", family: "ipv4", scope: "global" })).toEqual({ ok: true, value: host1?.address });
    expect(await n1.call({ op: "primary-address", ifname: "eth0", family: "ipv6", scope: "global" })).toEqual({ ok: true, value: host1?.address6 });
  });

  it("does not take a VIP added later for the node's primary address (the kernel lists newer IPv6 addresses first)", async () => {
    const [host1] = lab?.nodes ?? [];
    if (lab === undefined || host1 === undefined) throw new Error("no lab");
    const vips = [
      { family: "ipv4", address: lab.vip(3).address, prefixLength: 32 },
      { family: "ipv6", address: lab.vip(3).address6, prefixLength: 128 },
    ];
    for (const vip of vips) expect(await n1.call({ op: "vip", backend: "netlink", action: "add", vip, ifname: "eth0" })).toEqual({ ok: true });
    try {
      expect(await n1.call({ op: "primary-address", ifname: "eth0", family: "ipv4", scope: "global" })).toEqual({ ok: true, value: host1.address });
      expect(await n1.call({ op: "primary-address", ifname: "eth0", family: "ipv6", scope: "global" })).toEqual({ ok: true, value: host1.address6 });
    } finally {
      for (const vip of vips) await n1.call({ op: "vip", backend: "netlink", action: "remove", vip, ifname: "eth0" });
    }
  });
});
