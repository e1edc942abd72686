import { readFileSync } from "node:fs";
import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { AgentMetrics } from "../../src/agent/metrics.js";
import { AgentRuntime } from "../../src/agent/runtime.js";
import { HANDOVER_PROTOCOL } from "../../src/vrrp/advertisement.js";
import { decodeAdvertisement, encodeHandover, parseAddress } from "../../src/vrrp/codec.js";
import type { RouterConfig } from "../../src/vrrp/config.js";
import { encodeContextFor } from "../../src/vrrp/config.js";
import { buildCandidacy } from "../../src/vrrp/handover.js";
import { centiseconds, milliseconds } from "../../src/vrrp/units.js";
import { FakeAddressWatcher, FakeAnnouncer, FakeLinkMonitor, FakeTimerClock, FakeTransport, FakeVipManager } from "../fakes/ports.js";

// keepalived 2.2.7 as Master of VRID 51 at priority 150, from 10.77.0.11 (see test/fixtures/keepalived/README.md).
const keepalivedAdvert = Uint8Array.from(Buffer.from(readFileSync(new URL("../fixtures/keepalived/v3-ipv4-multicast.hex", import.meta.url), "utf8").trim(), "hex"));

const config: RouterConfig = {
  vrid: 51,
  version: 3,
  family: "ipv4",
  priority: 100,
  addresses: [{ address: "10.77.0.200", prefixLength: 24 }],
  primaryAddress: "10.77.0.12",
  advertisementInterval: centiseconds(100),
  preemption: { mode: "always", delay: milliseconds(0) },
  peers: [],
  password: undefined,
  garp: { repeat: 2, refresh: milliseconds(0) },
  v3Ipv4Checksum: "pseudo-header",
  shutdownHold: milliseconds(3000),
  releaseLinger: milliseconds(0),
  healthWeight: 0,
};

// Master_Down_Interval for priority 100 at 1 s: 3 s + (256 - 100) * 1000 / 256 ms (RFC 5798 §6.1).
const MASTER_DOWN_MS = 3000 + Math.floor((156 * 1000) / 256);

function aRuntime(initialAddresses: { address: string; prefixLength: number }[] = [], routerConfig: RouterConfig = config) {
  const clock = new FakeTimerClock(1_000);
  const transport = new FakeTransport();
  const handoverTransport = new FakeTransport();
  const vips = new FakeVipManager({ eth0: initialAddresses.map((entry) => ({ family: "ipv4" as const, ...entry })) });
  const announcer = new FakeAnnouncer(vips);
  const link = new FakeLinkMonitor();
  const addresses = new FakeAddressWatcher();
  const runtime = new AgentRuntime(
    { transport, handoverTransport, vips, announcer, link, addresses, clock },
    { config: routerConfig, ifname: "eth0", logger: pino({ level: "silent" }), metrics: new AgentMetrics("test").router("test", 51), announceSpacing: milliseconds(1) },
  );
  return { clock, transport, handoverTransport, vips, announcer, link, addresses, runtime };
}

const afterPollPhase = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function sentPriorities(transport: FakeTransport): number[] {
  return transport.sent.map(({ message, destination }) => {
    const decoded = decodeAdvertisement(message, { family: "ipv4", source: config.primaryAddress, destination });
    if (!decoded.ok) throw new Error(`the runtime sent an undecodable advert: ${decoded.error.code}`);
    return decoded.value.priority;
  });
}

async function becomeMaster(setup: ReturnType<typeof aRuntime>): Promise<void> {
  await setup.runtime.start();
  setup.clock.advance(MASTER_DOWN_MS);
  await afterPollPhase();
  await vi.waitFor(() => expect(setup.announcer.announced).toHaveLength(2));
}

/** What the hand-over socket hands over: the IPv4 header (TTL 255, protocol 253) and the message. */
function handoverDatagram(payload: Uint8Array, source: string, destination: string): Uint8Array {
  const bytes = new Uint8Array(20 + payload.length);
  bytes.set([0x45, 0, bytes.length >>> 8, bytes.length & 0xff, 0, 0, 0, 0, 255, HANDOVER_PROTOCOL]);
  bytes.set(parseAddress(source, "ipv4") ?? [], 12);
  bytes.set(parseAddress(destination, "ipv4") ?? [], 16);
  bytes.set(payload, 20);
  return bytes;
}

describe("AgentRuntime", () => {
  it("a hand-over socket that cannot open fails the start and closes the VRRP socket already open, so its VRID is free again", async () => {
    const transport = new FakeTransport();
    const link = new FakeLinkMonitor();
    const addresses = new FakeAddressWatcher();
    const vips = new FakeVipManager();
    const runtime = new AgentRuntime(
      { transport, handoverTransport: new FakeTransport({ ok: false, code: "permission-denied", detail: "Operation not permitted" }), vips, announcer: new FakeAnnouncer(vips), link, addresses, clock: new FakeTimerClock(1_000) },
      { config, ifname: "eth0", logger: pino({ level: "silent" }), metrics: new AgentMetrics("test").router("test", 51) },
    );
    await expect(runtime.start()).rejects.toThrow(/hand-over socket \(IP protocol 253\).*permission-denied/);
    expect(transport.isStopped).toBe(true);
    expect(runtime.snapshot().state).toBe("Initialize");
  });

  it("extension (handover.ts): a started Backup answers a peer's first candidacy to that peer alone", async () => {
    const peers = ["10.77.0.11", "10.77.0.13"];
    const unicast: RouterConfig = { ...config, peers, candidacyInterval: milliseconds(5000) };
    const setup = aRuntime([], unicast);
    await setup.runtime.start();
    expect(setup.handoverTransport.sent.map((sent) => sent.destination)).toEqual(peers);
    const peer: RouterConfig = { ...unicast, primaryAddress: "10.77.0.11", peers: ["10.77.0.12", "10.77.0.13"], priority: 150 };
    const message = encodeHandover(buildCandidacy(peer, 150), encodeContextFor(peer, "10.77.0.12"));
    setup.handoverTransport.deliver({ family: "ipv4", bytes: handoverDatagram(message, "10.77.0.11", "10.77.0.12"), source: "10.77.0.11" });
    await afterPollPhase();
    expect(setup.handoverTransport.sent.slice(peers.length).map((sent) => sent.destination)).toEqual(["10.77.0.11"]);
    expect(setup.runtime.snapshot().state).toBe("Backup");
  });

  it("removes a stale VIP of a crashed run before it starts as Backup", async () => {
    const setup = aRuntime([{ address: "10.77.0.200", prefixLength: 24 }, { address: "10.77.0.12", prefixLength: 24 }]);
    await setup.runtime.start();
    expect(setup.vips.log).toEqual(["remove 10.77.0.200 eth0"]);
    expect(setup.vips.holds("10.77.0.12", "eth0")).toBe(true);
    expect(setup.runtime.snapshot().state).toBe("Backup");
  });

  it("a health verdict that arrives while start awaits the kernel is the one the router starts with, not the one read before", async () => {
    const turnedUnhealthy = aRuntime();
    const starting = turnedUnhealthy.runtime.start();
    turnedUnhealthy.runtime.setHealthy(false);
    await starting;
    expect(turnedUnhealthy.runtime.snapshot()).toMatchObject({ state: "Fault", isHealthy: false });

    // The agent's case: nginx not Ready when the router was created, its pod list answering Ready during start.
    const turnedHealthy = aRuntime();
    turnedHealthy.runtime.setHealthy(false);
    const startingUnhealthy = turnedHealthy.runtime.start();
    turnedHealthy.runtime.setHealthy(true);
    await startingUnhealthy;
    expect(turnedHealthy.runtime.snapshot()).toMatchObject({ state: "Backup", isHealthy: true });
  });

  it("RFC 5798 §6.4.2: with no Master heard, takes over after Master_Down_Interval and announces only once the VIP is on the link", async () => {
    const setup = aRuntime();
    await setup.runtime.start();
    setup.clock.advance(MASTER_DOWN_MS - 1);
    await afterPollPhase();
    expect(setup.runtime.snapshot().state).toBe("Backup");
    await becomeMaster(setup);
    expect(setup.runtime.snapshot()).toMatchObject({ state: "Master", holdsVip: true });
    expect(setup.vips.holds("10.77.0.200", "eth0")).toBe(true);
    expect(setup.announcer.announced).toEqual([
      { address: "10.77.0.200", wasPresent: true },
      { address: "10.77.0.200", wasPresent: true },
    ]);
    expect(setup.transport.sent.map((sent) => sent.destination)).toEqual(["224.0.0.18"]);
    expect(sentPriorities(setup.transport)).toEqual([100]);
  });

  it("RFC 5798 §6.4.2 MUST: adverts from a higher-priority Master (real keepalived bytes) reset the Master_Down_Timer", async () => {
    const setup = aRuntime();
    await setup.runtime.start();
    for (let round = 0; round < 5; round++) {
      setup.clock.advance(1_000);
      setup.transport.deliver({ family: "ipv4", bytes: keepalivedAdvert, source: "10.77.0.11" });
      await afterPollPhase();
    }
    expect(setup.runtime.snapshot()).toMatchObject({ state: "Backup", masterAddress: "10.77.0.11", holdsVip: false });
    expect(setup.runtime.snapshot().counters["adverts-received"]).toBe(5);
    expect(setup.transport.sent).toHaveLength(0);
  });

  it("counts a corrupted advert by its codec code and does not let it reset the timer", async () => {
    const setup = aRuntime();
    await setup.runtime.start();
    const corrupted = keepalivedAdvert.slice();
    corrupted[20 + 6] = (corrupted[20 + 6] ?? 0) ^ 0xff;
    setup.clock.advance(MASTER_DOWN_MS - 10);
    setup.transport.deliver({ family: "ipv4", bytes: corrupted, source: "10.77.0.11" });
    expect(setup.runtime.snapshot().counters["dropped:bad-checksum"]).toBe(1);
    await becomeMaster(setup);
    expect(setup.runtime.snapshot().state).toBe("Master");
  });

  it("a leaving Master sends priority 0 and keeps the VIP until it hears the new Master", async () => {
    const setup = aRuntime();
    await becomeMaster(setup);
    const stopped = setup.runtime.shutdown();
    await afterPollPhase();
    expect(sentPriorities(setup.transport).at(-1)).toBe(0);
    expect(setup.vips.holds("10.77.0.200", "eth0")).toBe(true);
    setup.clock.advance(50);
    setup.transport.deliver({ family: "ipv4", bytes: keepalivedAdvert, source: "10.77.0.11" });
    await stopped;
    expect(setup.vips.holds("10.77.0.200", "eth0")).toBe(false);
    expect(setup.transport.isStopped).toBe(true);
  });

  it("a Master renews the VIP's lease with every advert it sends, and not once the VIP is to go", async () => {
    const setup = aRuntime();
    await becomeMaster(setup);
    // vipLease at a 1 s interval: the Master_Down_Interval at priority 1, 3996 ms, plus 100 ms, in whole seconds.
    const add = "add 10.77.0.200/24 eth0 lease 5 s";
    expect(setup.vips.log).toEqual([add]);
    for (let advert = 0; advert < 3; advert++) {
      setup.clock.advance(1_000);
      await afterPollPhase();
    }
    await vi.waitFor(() => expect(setup.vips.log).toEqual([add, add, add, add]));
    expect(sentPriorities(setup.transport)).toEqual([100, 100, 100, 100]);
    // Yielding to a higher priority sends one last advert, then removes the VIP: a renewal run after the removal
    // would put the address back, so the one due with that advert is dropped.
    setup.transport.deliver({ family: "ipv4", bytes: keepalivedAdvert, source: "10.77.0.11" });
    await vi.waitFor(() => expect(setup.vips.holds("10.77.0.200", "eth0")).toBe(false));
    expect(sentPriorities(setup.transport)).toEqual([100, 100, 100, 100, 100]);
    expect(setup.vips.log.slice(4)).toEqual(["remove 10.77.0.200 eth0"]);
  });

  it("a held VIP that leaves the interface behind the Master's back (its lease lapsed in a stall) is added again, announced and counted", async () => {
    const setup = aRuntime();
    await becomeMaster(setup);
    const before = setup.announcer.announced.length;
    setup.addresses.lose({ family: "ipv4", address: "10.77.0.200", prefixLength: 24 }, setup.vips, "eth0");
    await vi.waitFor(() => expect(setup.announcer.announced.length).toBe(before + 2));
    expect(setup.vips.holds("10.77.0.200", "eth0")).toBe(true);
    expect(setup.announcer.announced.slice(before).every((entry) => entry.wasPresent)).toBe(true);
    expect(setup.runtime.snapshot()).toMatchObject({ state: "Master", holdsVip: true, counters: { "vip-restored": 1 } });
    // Another address of the interface going is none of this router's business.
    setup.addresses.lose({ family: "ipv4", address: "10.77.0.12", prefixLength: 24 }, setup.vips, "eth0");
    await afterPollPhase();
    expect(setup.runtime.snapshot().counters["vip-restored"]).toBe(1);
  });

  it("a renewal still in flight when the VIP is removed cannot bring the address back", async () => {
    const setup = aRuntime();
    await becomeMaster(setup);
    const release = setup.vips.holdAdds();
    setup.clock.advance(1_000);
    await afterPollPhase();
    expect(sentPriorities(setup.transport)).toEqual([100, 100]);
    setup.link.set(false);
    expect(setup.runtime.snapshot()).toMatchObject({ state: "Fault", holdsVip: false });
    release();
    await vi.waitFor(() => expect(setup.vips.log.at(-1)).toBe("remove 10.77.0.200 eth0"));
    expect(setup.vips.log).toEqual(["add 10.77.0.200/24 eth0 lease 5 s", "add 10.77.0.200/24 eth0 lease 5 s", "remove 10.77.0.200 eth0"]);
    expect(setup.vips.holds("10.77.0.200", "eth0")).toBe(false);
  });

  it("a Master whose config drops one of two VIPs removes that one and goes on renewing the other's lease", async () => {
    const both: RouterConfig = { ...config, addresses: [...config.addresses, { address: "10.77.0.201", prefixLength: 24 }] };
    const setup = aRuntime([], both);
    await setup.runtime.start();
    setup.clock.advance(MASTER_DOWN_MS);
    await afterPollPhase();
    await vi.waitFor(() => expect(setup.announcer.announced).toHaveLength(4));
    setup.runtime.applyConfig(config);
    await vi.waitFor(() => expect(setup.vips.holds("10.77.0.201", "eth0")).toBe(false));
    setup.clock.advance(1_000);
    await afterPollPhase();
    const renewal = "add 10.77.0.200/24 eth0 lease 5 s";
    // The changed advert goes out at once on a lease still fresh; the next one renews what is left, and only that.
    await vi.waitFor(() => expect(setup.vips.log.slice(2)).toEqual(["remove 10.77.0.201 eth0", renewal]));
    expect(setup.runtime.snapshot()).toMatchObject({ state: "Master", holdsVip: true });
  });

  it("link down sends the Master to Fault and releases the VIP; link up returns it to Backup", async () => {
    const setup = aRuntime();
    await becomeMaster(setup);
    setup.link.set(false);
    await vi.waitFor(() => expect(setup.vips.holds("10.77.0.200", "eth0")).toBe(false));
    expect(setup.runtime.snapshot().state).toBe("Fault");
    setup.link.set(true);
    expect(setup.runtime.snapshot().state).toBe("Backup");
  });
});
