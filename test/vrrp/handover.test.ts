import { aRouterConfig } from "../fixtures/router-config.js";
import { describe, expect, it } from "vitest";
import type { HandoverMessage } from "../../src/vrrp/advertisement.js";
import { decodeAdvertisement, decodeHandover, encodeAdvertisement, encodeHandover } from "../../src/vrrp/codec.js";
import type { RouterConfig } from "../../src/vrrp/config.js";
import { buildAdvert, checkRouterConfig, encodeContextFor } from "../../src/vrrp/config.js";
import { buildCandidacy, buildNomination, emptyPeerBook, isNotedAdvertiser, noteAdvertiser } from "../../src/vrrp/handover.js";
import type { BackupState, MasterState, RouterEvent, RouterState } from "../../src/vrrp/machine.js";
import { initialState, nextDeadline, step } from "../../src/vrrp/machine.js";
import { centiseconds, milliseconds as ms, seconds } from "../../src/vrrp/units.js";

// Extension, not in RFC 5798: successor nomination (src/vrrp/handover.ts).

const me = "10.0.0.11";
const master = "10.0.0.5";
const other = "10.0.0.7";
const on = aRouterConfig({ candidacyInterval: ms(1000) });

function peerConfig(address: string, priority: number, overrides: Partial<RouterConfig> = {}): RouterConfig {
  return { ...on, primaryAddress: address, priority, ...overrides };
}

function aBackup(overrides: Partial<BackupState> = {}): BackupState {
  return {
    kind: "Backup", config: on, isHealthy: true, isLinkUp: true, peers: emptyPeerBook, masterAdverInterval: centiseconds(100),
    masterDownTimer: ms(13_609), hold: undefined, preemptAllowedAt: undefined, takeoverReason: "master-down-timer-expired",
    candidacyTimer: ms(11_000), nomination: undefined, leavingMaster: undefined, candidaciesSinceStart: undefined, ...overrides,
  };
}

function aMaster(overrides: Partial<MasterState> = {}): MasterState {
  return {
    kind: "Master", config: on, isHealthy: true, isLinkUp: true, peers: emptyPeerBook, adverTimer: ms(11_000), garpRefreshTimer: undefined, assertedAt: undefined,
    lease: { grantedAt: ms(10_000), duration: seconds(5) }, ...overrides,
  };
}

function handover(message: HandoverMessage, source: string, now: number): RouterEvent {
  return { kind: "handover-received", now: ms(now), message, source };
}

function priorityZero(source: string, now: number, config: RouterConfig = on): RouterEvent {
  return { kind: "advert-received", now: ms(now), advert: buildAdvert({ ...config, primaryAddress: source }, 0), source };
}

function feed(state: RouterState, ...events: RouterEvent[]): RouterState {
  return events.reduce((current, event) => step(current, event).state, state);
}

describe("successor nomination, Backup side (extension, not in RFC 5798)", () => {
  it("RFC 5798 §6.4.2 extension: the Backup the leaving Master names becomes Master at once on the priority-0 advert that follows", () => {
    const named = feed(aBackup(), handover(buildNomination(peerConfig(master, 200), me), master, 10_000));
    expect(named.kind === "Backup" && named.nomination).toEqual({ source: master, deadline: ms(11_000) });
    const result = step(named, priorityZero(master, 10_001));
    expect(result.state.kind).toBe("Master");
    expect(result.actions.map((action) => action.kind)).toEqual(["report-transition", "send-handover", "add-vip", "send-advert", "announce-vip"]);
    expect(result.actions[0]).toMatchObject({ kind: "report-transition", from: "Backup", to: "Master", reason: "nominated" });
  });

  it("RFC 5798 §6.4.2 extension: the nominee takes over at once when the priority-0 advert overtook the nomination", () => {
    const skewing = step(aBackup(), priorityZero(master, 10_000));
    expect(skewing.state).toMatchObject({ kind: "Backup", takeoverReason: "priority-zero-received" });
    const result = step(skewing.state, handover(buildNomination(peerConfig(master, 200), me), master, 10_002));
    expect(result.state.kind).toBe("Master");
    expect(result.actions[0]).toMatchObject({ kind: "report-transition", reason: "nominated" });
    expect(result.actions.map((action) => action.kind)).toEqual(["report-transition", "send-handover", "add-vip", "send-advert", "announce-vip"]);
  });

  it("RFC 5798 §6.4.2 MUST: once Skew_Time runs, only the router that sent the priority 0 may cut it short", () => {
    const skewing = step(aBackup(), priorityZero(master, 10_000)).state;
    const fromOther = step(skewing, handover(buildNomination(peerConfig(other, 200), me), other, 10_002));
    expect(fromOther.state).toMatchObject({ kind: "Backup", masterDownTimer: ms(10_000 + 609), takeoverReason: "priority-zero-received" });
    const afterAdvert = feed(skewing, { kind: "advert-received", now: ms(10_001), advert: buildAdvert({ ...on, primaryAddress: other }, 200), source: other });
    expect(step(afterAdvert, handover(buildNomination(peerConfig(master, 200), me), master, 10_002)).state.kind).toBe("Backup");
  });

  it("RFC 5798 §6.4.2 MUST: a Backup the nomination does not name sets Master_Down_Timer to Skew_Time", () => {
    const result = step(aBackup(), handover(buildNomination(peerConfig(master, 200), other), master, 10_000));
    expect(result.actions).toEqual([{ kind: "discard", reason: "not-nominated" }]);
    const after = step(result.state, priorityZero(master, 10_001));
    expect(after.state).toMatchObject({ kind: "Backup", masterDownTimer: ms(10_001 + 609), takeoverReason: "priority-zero-received" });
  });

  it("RFC 5798 §6.4.2 MUST: a stale nomination (older than one Master_Adver_Interval) leaves Skew_Time in force", () => {
    const named = feed(aBackup(), handover(buildNomination(peerConfig(master, 200), me), master, 10_000));
    expect(step(named, priorityZero(master, 11_001)).state).toMatchObject({ kind: "Backup", masterDownTimer: ms(11_001 + 609) });
  });

  it("RFC 5798 §6.4.2 MUST: a nomination forged by another source than the leaving Master leaves Skew_Time in force", () => {
    const named = feed(aBackup(), handover(buildNomination(peerConfig(other, 200), me), other, 10_000));
    expect(step(named, priorityZero(master, 10_001)).state).toMatchObject({ kind: "Backup", masterDownTimer: ms(10_001 + 609) });
  });

  it("RFC 5798 §7.1 MUST: a nomination for another VRID is not for us", () => {
    const result = step(aBackup(), handover(buildNomination(peerConfig(master, 200, { vrid: 52 }), me), master, 10_000));
    expect(result.actions).toEqual([{ kind: "discard", reason: "other-vrid", ref: "5798 §7.1" }]);
    expect(result.state).toMatchObject({ nomination: undefined });
  });

  it("RFC 2338 §7.1 MUST: a VRRPv2 nomination with the wrong password is rejected", () => {
    const v2 = aRouterConfig({ version: 2, password: "secret", candidacyInterval: ms(1000) });
    const forged = buildNomination({ ...v2, password: "guess", primaryAddress: master }, me);
    const result = step(aBackup({ config: v2 }), handover(forged, master, 10_000));
    expect(result.actions).toEqual([{ kind: "discard", reason: "auth-mismatch", ref: "2338 §7.1" }]);
    expect(result.state).toMatchObject({ nomination: undefined });
  });

  it("RFC 5798 §6.4.2 MUST: an unhealthy Backup (negative weight) named anyway waits Skew_Time", () => {
    const weighted = { ...on, healthWeight: -50 };
    const named = feed(aBackup({ config: weighted, isHealthy: false }), handover(buildNomination(peerConfig(master, 200), me), master, 10_000));
    expect(step(named, priorityZero(master, 10_001)).state).toMatchObject({ kind: "Backup", takeoverReason: "priority-zero-received" });
  });

  it("a Backup with candidacy on announces itself on entry and every candidacyInterval, and withdraws on Fault", () => {
    const entered = step(initialState(on), { kind: "started", now: ms(0) });
    expect(entered.actions).toContainEqual({ kind: "send-handover", message: buildCandidacy(on, 100) });
    expect(nextDeadline(entered.state)).toBe(ms(1000));
    const periodic = step(entered.state, { kind: "timer-expired", now: ms(1000) });
    expect(periodic.actions).toEqual([{ kind: "send-handover", message: buildCandidacy(on, 100) }]);
    const fault = step(periodic.state, { kind: "health-changed", now: ms(1500), isHealthy: false });
    expect(fault.actions).toContainEqual({ kind: "send-handover", message: buildCandidacy(on, 0) });
  });

  it("a Backup whose configured priority changes announces the new one at once; turning candidacy off stops the repeats", () => {
    const entered = step(initialState(on), { kind: "started", now: ms(0) }).state;
    const lowered = step(entered, { kind: "config-changed", now: ms(400), config: { ...on, priority: 60 } });
    expect(lowered.actions).toEqual([{ kind: "send-handover", message: buildCandidacy({ ...on, priority: 60 }, 60) }]);
    // The repeats stay on the interval's grid, with every other router's.
    expect(nextDeadline(lowered.state)).toBe(ms(1000));
    const off = step(lowered.state, { kind: "config-changed", now: ms(500), config: { ...on, priority: 60, candidacyInterval: undefined } });
    expect(off.actions).toEqual([]);
    expect(off.state).toMatchObject({ kind: "Backup", candidacyTimer: undefined });
  });

  it("with candidacy off a Backup sends nothing but adverts, as RFC 5798 has it", () => {
    const entered = step(initialState(aRouterConfig()), { kind: "started", now: ms(0) });
    expect(entered.actions.some((action) => action.kind === "send-handover")).toBe(false);
  });
});

describe("successor nomination, Master side (extension, not in RFC 5798)", () => {
  const leaving = (state: MasterState, now: number) => step(state, { kind: "health-changed", now: ms(now), isHealthy: false });

  it("RFC 5798 §6.4.3 extension: a Master whose nginx fails names the best healthy Backup heard, then sends priority 0", () => {
    const state = feed(
      aMaster(),
      handover(buildCandidacy(peerConfig(other, 80), 80), other, 10_000),
      handover(buildCandidacy(peerConfig(master, 90), 90), master, 10_100),
    );
    const result = leaving(state as MasterState, 10_200);
    const sends = result.actions.filter((action) => action.kind === "send-handover" || action.kind === "send-advert");
    expect(sends).toEqual([
      { kind: "send-handover", message: buildNomination(on, master) },
      { kind: "send-advert", advert: buildAdvert(on, 0) },
    ]);
  });

  it("RFC 5798 §6.4.3 MUST: with a foreign (keepalived) router heard advertising, no one is named", () => {
    const state = feed(
      aBackup(),
      { kind: "advert-received", now: ms(9_000), advert: buildAdvert(on, 150), source: "10.0.0.9" },
      handover(buildCandidacy(peerConfig(master, 90), 90), master, 10_000),
    );
    const asMaster = aMaster({ peers: state.peers });
    expect(leaving(asMaster, 10_100).actions.some((action) => action.kind === "send-handover")).toBe(false);
  });

  it("RFC 5798 §6.4.3 MUST: with unicast peers, no one is named unless every peer has spoken as ours", () => {
    const unicast = { ...on, peers: [master, other] };
    const state = feed(aMaster({ config: unicast }), handover(buildCandidacy(peerConfig(master, 90, { peers: [me, other] }), 90), master, 10_000));
    expect(leaving(state as MasterState, 10_100).actions.some((action) => action.kind === "send-handover")).toBe(false);
    const both = feed(state, handover(buildCandidacy(peerConfig(other, 80, { peers: [me, master] }), 80), other, 10_050));
    expect(leaving(both as MasterState, 10_100).actions).toContainEqual({ kind: "send-handover", message: buildNomination(unicast, master) });
  });

  it("with unicast peers, a peer that spoke as ours and then went quiet (down, or in Fault) does not stop the others being named", () => {
    const unicast = { ...on, peers: [master, other] };
    const state = feed(
      aMaster({ config: unicast }),
      handover(buildCandidacy(peerConfig(other, 80, { peers: [me, master] }), 0), other, 10_000),
      handover(buildCandidacy(peerConfig(master, 90, { peers: [me, other] }), 90), master, 40_000),
    );
    expect(leaving(state as MasterState, 40_100).actions).toContainEqual({ kind: "send-handover", message: buildNomination(unicast, master) });
  });

  it("a withdrawn or lapsed candidacy is never named", () => {
    const withdrawn = feed(aMaster(), handover(buildCandidacy(peerConfig(master, 90), 90), master, 10_000), handover(buildCandidacy(peerConfig(master, 90), 0), master, 10_100));
    expect(leaving(withdrawn as MasterState, 10_200).actions.some((action) => action.kind === "send-handover")).toBe(false);
    const lapsed = feed(aMaster(), handover(buildCandidacy(peerConfig(master, 90), 90), master, 10_000));
    expect(leaving(lapsed as MasterState, 13_001).actions.some((action) => action.kind === "send-handover")).toBe(false);
  });
});

describe("an unopposed start (extension, not in RFC 5798)", () => {
  const unicast: RouterConfig = { ...on, peers: [master, other] };
  const started = (config: RouterConfig = unicast) => step(initialState(config), { kind: "started", now: ms(0) }).state;
  const groupOf = (address: string) => [me, master, other].filter((peer) => peer !== address);
  const candidacy = (address: string, priority: number, now: number) =>
    handover(buildCandidacy(peerConfig(address, priority, { peers: groupOf(address) }), priority), address, now);

  it("RFC 5798 §6.4.1 extension: a started Backup that hears every unicast peer's candidacy, none outranking it, becomes Master at once", () => {
    const one = step(started(), candidacy(master, 90, 100));
    expect(one.state.kind).toBe("Backup");
    // Equal priority: the higher primary address wins (RFC 5798 §6.4.3), and 10.0.0.11 > 10.0.0.7.
    const result = step(one.state, candidacy(other, 100, 200));
    expect(result.state.kind).toBe("Master");
    expect(result.actions.map((action) => action.kind)).toEqual(["report-transition", "send-handover", "add-vip", "send-advert", "announce-vip"]);
    expect(result.actions[0]).toMatchObject({ from: "Backup", to: "Master", reason: "unopposed" });
  });

  it("a Backup that becomes Master withdraws its candidacy, so that no router starts unopposed against it before its first advert", () => {
    const result = step(feed(started(), candidacy(master, 90, 100)), candidacy(other, 90, 200));
    expect(result.actions[1]).toEqual({ kind: "send-handover", message: buildCandidacy(unicast, 0) });
    const heardOurs = feed(started(peerConfig(master, 150, { peers: groupOf(master) })), candidacy(me, 100, 100), candidacy(me, 0, 150), candidacy(other, 90, 200));
    expect(heardOurs.kind).toBe("Backup");
  });

  it("three routers started together, in every order of delivery: the best takes over at once and the others stay Backup", () => {
    const priorities: Record<string, number> = { [me]: 100, [master]: 150, [other]: 120 };
    const addresses = Object.keys(priorities);
    for (const order of [[0, 1, 2], [2, 1, 0], [1, 0, 2]]) {
      const routers = new Map(addresses.map((address) => [address, started(peerConfig(address, priorities[address] ?? 0, { peers: groupOf(address) }))]));
      for (const sender of order.map((index) => addresses[index] ?? "")) {
        for (const [address, state] of routers) {
          if (address !== sender) routers.set(address, step(state, candidacy(sender, priorities[sender] ?? 0, 100)).state);
        }
      }
      expect(Object.fromEntries([...routers].map(([address, state]) => [address, state.kind]))).toEqual({ [me]: "Backup", [master]: "Master", [other]: "Backup" });
    }
  });

  it("a started Backup answers the first candidacy of each peer with its own, so that a peer started later learns of it", () => {
    const first = step(started(), candidacy(master, 150, 100));
    expect(first.actions).toEqual([{ kind: "send-handover", message: buildCandidacy(unicast, 100), to: master }]);
    expect(step(first.state, candidacy(master, 150, 200)).actions).toEqual([]);
  });

  it("RFC 5798 §6.4.1 MUST: a peer that outranks it, or one not heard, leaves Master_Down_Interval in force", () => {
    const outranked = feed(started(), candidacy(master, 150, 100), candidacy(other, 90, 200));
    expect(outranked).toMatchObject({ kind: "Backup", masterDownTimer: ms(3609) });
    expect(feed(started(), candidacy(other, 90, 200), candidacy(other, 90, 300)).kind).toBe("Backup");
  });

  it("RFC 5798 §6.4.1 MUST: a peer that withdrew its candidacy (cannot take over) leaves Master_Down_Interval in force", () => {
    expect(feed(started(), candidacy(master, 90, 100), candidacy(master, 0, 150), candidacy(other, 90, 200)).kind).toBe("Backup");
  });

  it("RFC 5798 §6.4.2 MUST: once any advert is heard, candidacies no longer make it Master", () => {
    const advert: RouterEvent = { kind: "advert-received", now: ms(50), advert: buildAdvert({ ...unicast, primaryAddress: master }, 90), source: master };
    expect(feed(started(), advert, candidacy(master, 90, 100), candidacy(other, 90, 200)).kind).toBe("Backup");
  });

  it("RFC 5798 §6.4.1 MUST: candidacies heard before Startup (in Fault) do not count, only those since", () => {
    const fault = step(initialState(unicast, { isHealthy: false }), { kind: "started", now: ms(0) }).state;
    const heardInFault = feed(fault, candidacy(master, 90, 100), candidacy(other, 90, 200));
    const healed = feed(heardInFault, { kind: "health-changed", now: ms(300), isHealthy: true }, candidacy(master, 90, 400));
    expect(healed.kind).toBe("Backup");
    expect(step(healed, candidacy(other, 90, 500)).state.kind).toBe("Master");
  });

  it("RFC 5798 §6.4.1 MUST: multicast (the group unknown) or candidacy off leaves Master_Down_Interval in force", () => {
    expect(feed(started(on), candidacy(master, 90, 100), candidacy(other, 90, 200)).kind).toBe("Backup");
    expect(feed(started({ ...unicast, candidacyInterval: undefined }), candidacy(master, 90, 100), candidacy(other, 90, 200)).kind).toBe("Backup");
  });

  it("RFC 5798 §6.4.3 MUST: a Master displaced into Backup waits for the new Master's silence, whatever the candidacies", () => {
    const displaced = step(aMaster({ config: unicast }), { kind: "advert-received", now: ms(10_000), advert: buildAdvert({ ...unicast, primaryAddress: master }, 150), source: master });
    expect(feed(displaced.state, candidacy(master, 90, 10_100), candidacy(other, 90, 10_200)).kind).toBe("Backup");
  });
});

describe("the peer book (extension, not in RFC 5798)", () => {
  it("an advertiser already noted and no candidate needs no noting again; one that became a candidate does", () => {
    expect(isNotedAdvertiser(emptyPeerBook, master)).toBe(false);
    const noted = noteAdvertiser(emptyPeerBook, master, "ipv4");
    expect(isNotedAdvertiser(noted, master)).toBe(true);
    expect(noteAdvertiser(noted, master, "ipv4")).toEqual(noted);
    const asMaster = feed(aMaster({ peers: noted }), handover(buildCandidacy(peerConfig(master, 90), 90), master, 10_000));
    expect(isNotedAdvertiser(asMaster.peers, master)).toBe(false);
  });
});

describe("hand-over codec (extension, not in RFC 5798)", () => {
  const ctx = encodeContextFor(on, "224.0.0.18");

  it("RFC 5798 §5.2 round trip: candidacy and nomination, v3 IPv4, v3 IPv6 and v2 with a password", () => {
    const v6 = aRouterConfig({ family: "ipv6", primaryAddress: "fe80::11", addresses: [{ address: "2001:db8::150", prefixLength: 64 }], candidacyInterval: ms(1000) });
    const v2 = aRouterConfig({ version: 2, password: "secret", candidacyInterval: ms(2000) });
    const cases: [HandoverMessage, RouterConfig, string][] = [
      [buildCandidacy(on, 100), on, "224.0.0.18"],
      [buildNomination(on, master), on, "224.0.0.18"],
      [buildCandidacy(v6, 100), v6, "ff02::12"],
      [buildNomination(v2, master), v2, "224.0.0.18"],
      [buildCandidacy(v2, 100), v2, "224.0.0.18"],
    ];
    for (const [message, config, destination] of cases) {
      const encodeCtx = encodeContextFor(config, destination);
      const bytes = encodeHandover(message, encodeCtx);
      const decoded = decodeHandover(bytes, { ...encodeCtx, ttl: 255, version: config.version });
      expect(decoded).toEqual({ ok: true, value: message, bytesRead: bytes.length });
      if (decoded.ok) expect(encodeHandover(decoded.value, encodeCtx)).toEqual(bytes);
    }
  });

  it("RFC 5798 §5.2.2 MUST: were one to reach a VRRP socket, an RFC decoder discards it as an unknown type", () => {
    const bytes = encodeHandover(buildCandidacy(on, 100), ctx);
    expect(bytes[0]).toBe(0x3e);
    expect(decodeAdvertisement(bytes, ctx)).toEqual({ ok: false, error: { code: "bad-type", expected: 1, actual: 14, offset: 0, rfc: "5798 §5.2.2" } });
  });

  it("an advert, or an unassigned type other than ours, is bad-type on the hand-over protocol", () => {
    const bytes = encodeAdvertisement(buildAdvert(on, 100), ctx);
    expect(decodeHandover(bytes, ctx)).toMatchObject({ ok: false, error: { code: "bad-type", actual: 1 } });
    bytes[0] = 0x3d;
    const decoded = decodeHandover(bytes, ctx);
    expect(decoded.ok ? undefined : decoded.error.code).toBe("bad-type");
  });

  it("a hand-over message with more than one address is handover-address-count", () => {
    const two = aRouterConfig({ addresses: [{ address: "192.168.0.150", prefixLength: 24 }, { address: "192.168.0.151", prefixLength: 24 }] });
    const bytes = encodeAdvertisement(buildAdvert(two, 100), ctx);
    bytes[0] = 0x3f;
    // The checksum now fails; the decoder's error says which one would pass.
    const decoded = decodeHandover(bytes, ctx);
    expect(decoded.ok ? undefined : decoded.error.code).toBe("bad-checksum");
    const checksum = decoded.ok ? 0 : decoded.error.code === "bad-checksum" ? decoded.error.expected : 0;
    bytes[6] = checksum >>> 8;
    bytes[7] = checksum & 0xff;
    expect(decodeHandover(bytes, ctx)).toEqual({ ok: false, error: { code: "handover-address-count", expected: 1, actual: 2, offset: 3, rfc: "extension" } });
  });

  it("RFC 5798 §7.1 MUST: truncated, padded or corrupted hand-over messages return typed errors and never throw", () => {
    const bytes = encodeHandover(buildNomination(on, master), ctx);
    const codeOf = (input: Uint8Array) => {
      const decoded = decodeHandover(input, ctx);
      return decoded.ok ? "ok" : decoded.error.code;
    };
    expect(codeOf(bytes.subarray(0, 7))).toBe("truncated");
    expect(codeOf(Uint8Array.from([...bytes, 0, 0]))).toBe("too-long");
    const corrupted = Uint8Array.from(bytes);
    corrupted[9] = (corrupted[9] ?? 0) ^ 0xff;
    expect(codeOf(corrupted)).toBe("bad-checksum");
    let seed = 7;
    for (let round = 0; round < 2000; round++) {
      const input = Uint8Array.from(bytes, (byte) => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed % 7 === 0 ? seed & 0xff : byte;
      });
      expect(() => decodeHandover(input.subarray(0, seed % (input.length + 1)), ctx)).not.toThrow();
    }
  });

  it("checkRouterConfig refuses a candidacy interval the interval field cannot carry", () => {
    expect(checkRouterConfig(aRouterConfig({ candidacyInterval: ms(500) }))).toContain("candidacy-interval-out-of-range");
    expect(checkRouterConfig(aRouterConfig({ version: 2, candidacyInterval: ms(1500) }))).toContain("candidacy-interval-out-of-range");
    expect(checkRouterConfig(aRouterConfig({ candidacyInterval: ms(1000) }))).toEqual([]);
  });
});
