import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addressesOn, createLab, type Lab, type LabHost } from "../../../testing/lab/index.js";
import type { InterfaceAddress } from "../../../src/agent/ports.js";
import { startDriver, type Driver, type DriverEvent } from "./driver.js";

describe.each(["netlink", "iproute"] as const)("VIP manager over %s", (backend) => {
  let lab: Lab | undefined;
  let host: LabHost;
  let n1: Driver;
  let vip4: InterfaceAddress;
  let vip6: InterfaceAddress;

  beforeAll(async () => {
    lab = await createLab({ nodes: 1, idPrefix: "hcvip" });
    const [first] = lab.nodes;
    if (first === undefined) throw new Error("lab without a node");
    host = first;
    n1 = await startDriver(lab, host);
    expect(await n1.call({ op: "watch-start", ifname: "eth0" })).toEqual({ ok: true });
    const { address, address6 } = lab.vip(0);
    vip4 = { family: "ipv4", address, prefixLength: 32 };
    vip6 = { family: "ipv6", address: address6, prefixLength: 128 };
  });

  afterAll(async () => {
    n1?.close();
    await lab?.destroy();
  });

  async function held(): Promise<string[]> {
    if (lab === undefined) return [];
    return (await addressesOn(lab, host)).map((entry) => `${entry.address}/${entry.prefixLength}`);
  }

  it.each([["IPv4 /32", () => vip4], ["IPv6 /128", () => vip6]])("adds, lists and removes an %s idempotently", async (_, vipOf) => {
    const vip = vipOf();
    const change = (action: "add" | "remove") => n1.call({ op: "vip", backend, action, vip, ifname: "eth0" });
    expect(await change("add")).toEqual({ ok: true });
    expect(await change("add")).toEqual({ ok: true });
    expect(await held()).toContain(`${vip.address}/${vip.prefixLength}`);
    const listed = await n1.call<{ ok: true; value: InterfaceAddress[] }>({ op: "vip-list", backend, ifname: "eth0" });
    expect(listed.value).toContainEqual(vip);
    expect(listed.value).toContainEqual({ family: "ipv4", address: host.address, prefixLength: 24 });
    expect(await change("remove")).toEqual({ ok: true });
    expect(await change("remove")).toEqual({ ok: true });
    expect(await held()).not.toContain(`${vip.address}/${vip.prefixLength}`);
    const after = await n1.call<{ ok: true; value: InterfaceAddress[] }>({ op: "vip-list", backend, ifname: "eth0" });
    expect(after.value).not.toContainEqual(vip);
  });

  it("changes asked for together each get their own outcome: the ones the kernel refuses fail alone, the others are made", async () => {
    if (lab === undefined) throw new Error("no lab");
    // 40 changes, more than one batch of the netlink manager (RtNetlinkQueue), with refusals (EINVAL: an IPv4 prefix
    // longer than 32) inside a batch, at the end of the first one and at the very end.
    const refused = new Set([5, 31, 39]);
    const vips: InterfaceAddress[] = Array.from({ length: 40 }, (_, i) => ({ family: "ipv4", address: lab?.vip(10 + i).address ?? "", prefixLength: refused.has(i) ? 33 : 32 }));
    const together = (action: "add" | "remove", changed: InterfaceAddress[]) => n1.call<{ ok: boolean; code?: string }[]>({ op: "vip-together", backend, action, vips: changed, ifname: "eth0" });
    const expected = vips.map((_, i) => (refused.has(i) ? { ok: false, code: "failed" } : { ok: true }));
    expect(await together("add", vips)).toMatchObject(expected);
    const valid = vips.filter((_, i) => !refused.has(i)).map((vip) => `${vip.address}/32`);
    const afterAdding = await held();
    expect(valid.filter((vip) => !afterAdding.includes(vip))).toEqual([]);
    expect(afterAdding.filter((entry) => vips.some((vip) => entry.startsWith(`${vip.address}/`)))).toHaveLength(valid.length);
    // The kernel finds no IPv4 address with a prefix longer than 32 to remove, which succeeds; an IPv6 prefix longer
    // than 128 it refuses (EINVAL).
    const removals = vips.map((vip, i): InterfaceAddress => (refused.has(i) ? { family: "ipv6", address: lab?.vip(10 + i).address6 ?? "", prefixLength: 129 } : vip));
    expect(await together("remove", removals)).toMatchObject(expected);
    const afterRemoving = await held();
    expect(afterRemoving.filter((entry) => vips.some((vip) => entry.startsWith(`${vip.address}/`)))).toEqual([]);
  });

  it("an interface deleted and created again under its name still gets the VIP (the manager may remember the old index)", async () => {
    if (lab === undefined) throw new Error("no lab");
    const ip = (...args: string[]) => lab?.exec(host, "ip", args, { check: true });
    const onDummy = (action: "add" | "remove") => n1.call({ op: "vip", backend, action, vip: vip4, ifname: "hcdummy" });
    // A veth pair inside the node's namespace: this kernel has no dummy driver.
    const create = async () => {
      await ip("link", "add", "hcdummy", "type", "veth", "peer", "name", "hcdummy-peer");
      await ip("link", "set", "hcdummy", "up");
    };
    await create();
    try {
      expect(await onDummy("add")).toEqual({ ok: true });
      await ip("link", "del", "hcdummy");
      await create();
      expect(await onDummy("add")).toEqual({ ok: true });
      const shown = await ip("-4", "addr", "show", "dev", "hcdummy");
      expect(shown?.stdout).toContain(`${vip4.address}/32`);
      expect(await onDummy("remove")).toEqual({ ok: true });
    } finally {
      await lab.exec(host, "ip", ["link", "del", "hcdummy"]);
    }
  });

  it("adds an IPv6 VIP without duplicate address detection, so it is usable at once", async () => {
    expect(await n1.call({ op: "vip", backend, action: "add", vip: vip6, ifname: "eth0" })).toEqual({ ok: true });
    const shown = await lab?.exec(host, "ip", ["-6", "addr", "show", "dev", "eth0", "to", `${vip6.address}/128`]);
    expect(shown?.stdout).toContain(vip6.address);
    expect(shown?.stdout).not.toContain("tentative");
    expect(await n1.call({ op: "vip", backend, action: "remove", vip: vip6, ifname: "eth0" })).toEqual({ ok: true });
  });

  it("RFC 6724 §5 rule 3: an IPv6 VIP is deprecated, so the kernel never picks it as the source of the node's own traffic (unicast adverts)", async () => {
    // A /64 in the node's own prefix ties with the node's address up to rule 8, where the newer address would win.
    const onLink = { ...vip6, prefixLength: 64 };
    const peer = lab?.vip(9).address6 ?? "";
    expect(await n1.call({ op: "vip", backend, action: "add", vip: onLink, ifname: "eth0" })).toEqual({ ok: true });
    try {
      const route = await lab?.exec(host, "ip", ["-6", "route", "get", peer], { check: true });
      expect(route?.stdout).toContain(`src ${host.address6} `);
      const shown = await lab?.exec(host, "ip", ["-6", "addr", "show", "dev", "eth0", "to", `${onLink.address}/128`]);
      expect(shown?.stdout).toContain("deprecated");
    } finally {
      expect(await n1.call({ op: "vip", backend, action: "remove", vip: onLink, ifname: "eth0" })).toEqual({ ok: true });
    }
  });

  // The lease a Master renews at every advert (computeVipLease in src/vrrp/timers.ts): once the renewals stop, as when the agent is
  // SIGKILLed, the kernel deletes the address by itself. Renewals are RTM_NEWADDR, so the agent's address watcher,
  // which reports RTM_DELADDR, sees the expiry once and the renewals never.
  it.each([["IPv4 /32", () => vip4], ["IPv6 /128", () => vip6]])("an %s whose lease is not renewed disappears by itself within lease + lag", async (_, vipOf) => {
    const vip = vipOf();
    const lease = 1;
    // The kernel's lifetime check runs on a timer rounded to whole seconds and at least 1 s apart; 1.5 s over the
    // lease is that second plus a loaded machine's workqueue delay.
    const lagBoundMs = 1_500;
    const renewed = await n1.call<{ ok: true; firstAddAt: number; lastRenewalAt: number }>({ op: "vip-lease", backend, vip, ifname: "eth0", lease, everyMs: 200, renewals: 8 });
    expect(renewed.ok).toBe(true);
    const shown = await lab?.exec(host, "ip", ["addr", "show", "dev", "eth0", "to", `${vip.address}/${vip.prefixLength}`]);
    expect(shown?.stdout).toMatch(/valid_lft [01]sec preferred_lft [01]sec/);
    const removals = (): DriverEvent[] =>
      n1.events.filter((event) => event.event === "removed" && (event.address as InterfaceAddress).address === vip.address && (event.at as number) >= renewed.firstAddAt);
    // Eight renewals over 1.6 s, longer than the lease: only renewals kept it, and none was reported as a removal.
    expect(removals()).toEqual([]);
    const removed = await n1.nextEvent((event) => removals().includes(event), `${vip.address} to expire`, lease * 1000 + lagBoundMs + 2_000);
    const lagMs = (removed.at as number) - renewed.lastRenewalAt - lease * 1000;
    console.log(`[measure] ${backend} ${vip.family} VIP lease ${lease} s: the kernel deleted it ${lagMs.toFixed(0)} ms after the lease ran out`);
    // The kernel rounds an address's age to whole seconds with 20 ms of slack (ADDRCONF_TIMER_FUZZ_MINUS), never more.
    expect(lagMs).toBeGreaterThanOrEqual(-50);
    expect(lagMs).toBeLessThanOrEqual(lagBoundMs);
    expect(await held()).not.toContain(`${vip.address}/${vip.prefixLength}`);
    expect(removals()).toEqual([removed]);
  });

  it("reports a missing interface as no-such-interface", async () => {
    expect(await n1.call({ op: "vip", backend, action: "add", vip: vip4, ifname: "nope0" })).toMatchObject({
      ok: false,
      code: "no-such-interface",
    });
    expect(await n1.call({ op: "vip-list", backend, ifname: "nope0" })).toMatchObject({ ok: false, code: "no-such-interface" });
  });

  it("measures add/remove latency (median of 20)", async () => {
    const bench = await n1.call<{ ok: boolean; addMs: number; removeMs: number }>({
      op: "vip-bench", backend, vip: vip4, ifname: "eth0", rounds: 20,
    });
    expect(bench.ok).toBe(true);
    console.log(`[measure] ${backend} VIP add median ${bench.addMs.toFixed(2)} ms, remove median ${bench.removeMs.toFixed(2)} ms`);
    expect(bench.addMs).toBeLessThan(1_000);
    expect(bench.removeMs).toBeLessThan(1_000);
  });
});

describe("address watcher", () => {
  let lab: Lab | undefined;
  let n1: Driver;

  beforeAll(async () => {
    lab = await createLab({ nodes: 1, idPrefix: "hcaw" });
    const [host] = lab.nodes;
    if (host === undefined) throw new Error("lab without a node");
    n1 = await startDriver(lab, host);
  });

  afterAll(async () => {
    n1?.close();
    await lab?.destroy();
  });

  it("reports a VIP that someone else deletes, IPv4 and IPv6", async () => {
    const [host] = lab?.nodes ?? [];
    if (lab === undefined || host === undefined) throw new Error("no lab");
    const { address, address6 } = lab.vip(1);
    await lab.exec(host, "ip", ["addr", "add", `${address}/32`, "dev", "eth0"]);
    await lab.exec(host, "ip", ["addr", "add", `${address6}/128`, "dev", "eth0", "nodad"]);
    expect(await n1.call({ op: "watch-start", ifname: "eth0" })).toEqual({ ok: true });
    await lab.exec(host, "ip", ["addr", "del", `${address}/32`, "dev", "eth0"]);
    const removed = await n1.nextEvent((e) => e.event === "removed", "the IPv4 removal to be reported");
    expect(removed.address).toEqual({ family: "ipv4", address, prefixLength: 32 });
    await lab.exec(host, "ip", ["addr", "del", `${address6}/128`, "dev", "eth0"]);
    const removed6 = await n1.nextEvent((e) => e.event === "removed", "the IPv6 removal to be reported");
    expect(removed6.address).toEqual({ family: "ipv6", address: address6, prefixLength: 128 });
  });
});
