import { aRouterConfig } from "../fixtures/router-config.js";
import { describe, expect, it } from "vitest";
import type { AdvertisementV2, AdvertisementV3 } from "../../src/vrrp/advertisement.js";
import type { RouterConfig, VirtualAddress } from "../../src/vrrp/config.js";
import { buildAdvert } from "../../src/vrrp/config.js";
import type { BackupState, FaultState, InitializeState, MasterState, RouterAction, RouterEvent, VipLease } from "../../src/vrrp/machine.js";
import { initialState, nextDeadline, step } from "../../src/vrrp/machine.js";
import { emptyPeerBook } from "../../src/vrrp/handover.js";
import type { Centiseconds } from "../../src/vrrp/units.js";
import { centiseconds, milliseconds as ms, seconds } from "../../src/vrrp/units.js";

const vip = { address: "192.168.0.150", prefixLength: 24 };
const higherPeer = "10.0.0.12";
const lowerPeer = "10.0.0.5";

function aConfig(overrides: Partial<RouterConfig> = {}): RouterConfig {
  return aRouterConfig({ addresses: [vip], ...overrides });
}

function aBackup(overrides: Partial<BackupState> = {}): BackupState {
  return {
    kind: "Backup",
    config: aConfig(),
    isHealthy: true,
    isLinkUp: true,
    peers: emptyPeerBook,
    masterAdverInterval: centiseconds(100),
    masterDownTimer: ms(13609),
    hold: undefined,
    preemptAllowedAt: undefined,
    takeoverReason: "master-down-timer-expired",
    candidacyTimer: undefined,
    nomination: undefined,
    leavingMaster: undefined,
    candidaciesSinceStart: undefined,
    ...overrides,
  };
}

function aMaster(overrides: Partial<MasterState> = {}): MasterState {
  return {
    kind: "Master",
    config: aConfig(),
    isHealthy: true,
    isLinkUp: true,
    peers: emptyPeerBook,
    adverTimer: ms(11000),
    garpRefreshTimer: undefined,
    assertedAt: undefined,
    lease: { grantedAt: ms(10000), duration: lease },
    ...overrides,
  };
}

function aFault(overrides: Partial<FaultState> = {}): FaultState {
  return { kind: "Fault", config: aConfig(), isHealthy: false, isLinkUp: true, peers: emptyPeerBook, hold: undefined, ...overrides };
}

function advert(priority: number, interval: Centiseconds = centiseconds(100), vrid = 51): AdvertisementV3 {
  return { version: 3, vrid, priority, maxAdverInterval: interval, addresses: [vip.address] };
}

function received(priority: number, source: string, now: number, interval?: Centiseconds): RouterEvent {
  return { kind: "advert-received", now: ms(now), advert: advert(priority, interval), source };
}

function sent(config: RouterConfig, priority: number): RouterAction {
  return { kind: "send-advert", advert: buildAdvert(config, priority) };
}

const config = aConfig();
const announced: RouterAction = { kind: "announce-vip", addresses: [vip], repeat: 5 };
/** 3 × 1 s + Skew_Time at priority 1 + a late renewal, in whole seconds (timers.ts computeVipLease). */
const lease = seconds(5);
const renewed: RouterAction = { kind: "renew-vip-lease", addresses: [vip], lease };

function leaseGrantedAt(at: number): VipLease {
  return { grantedAt: ms(at), duration: lease };
}

function added(addresses: readonly VirtualAddress[]): RouterAction {
  return { kind: "add-vip", addresses, lease };
}

describe("RFC 5798 §6.4.1 Initialize", () => {
  it("RFC 5798 §6.4.1 MUST: the address owner (priority 255) advertises, announces and becomes Master on Startup", () => {
    const owner = aConfig({ priority: 255 });
    const result = step(initialState(owner), { kind: "started", now: ms(1000) });
    expect(result.actions).toEqual([
      { kind: "report-transition", from: "Initialize", to: "Master", reason: "address-owner", priority: 255 },
      added([vip]),
      sent(owner, 255),
      announced,
    ]);
    expect(result.state).toEqual({ kind: "Master", config: owner, isHealthy: true, isLinkUp: true, peers: emptyPeerBook, adverTimer: ms(2000), garpRefreshTimer: undefined, lease: leaseGrantedAt(1000) });
  });

  it("RFC 5798 §6.4.1 MUST: below 255 sets Master_Adver_Interval to Advertisement_Interval, arms Master_Down_Timer and becomes Backup", () => {
    const result = step(initialState(config), { kind: "started", now: ms(1000) });
    expect(result.actions).toEqual([{ kind: "report-transition", from: "Initialize", to: "Backup", reason: "started", priority: 100 }]);
    expect(result.state).toEqual(aBackup({ masterDownTimer: ms(1000 + 3609) }));
  });

  it("Fault extension (not in RFC 5798): an unhealthy router with weight 0 starts in Fault", () => {
    const result = step(initialState(config, { isHealthy: false }), { kind: "started", now: ms(1000) });
    expect(result.actions).toEqual([{ kind: "report-transition", from: "Initialize", to: "Fault", reason: "health-failed", priority: 100 }]);
    expect(result.state).toEqual(aFault());
  });

  it("RFC 5798 §6.4.1 MUST: Initialize waits for Startup and does not process adverts", () => {
    const state = initialState(config);
    expect(step(state, received(200, higherPeer, 1000))).toEqual({ state, actions: [{ kind: "discard", reason: "not-running" }] });
    expect(step(state, { kind: "shutdown-requested", now: ms(1000) })).toEqual({ state, actions: [{ kind: "shutdown-complete" }] });
  });
});

describe("RFC 5798 §6.4.2 Backup", () => {
  it("RFC 5798 §6.4.2 MUST: Shutdown cancels Master_Down_Timer and goes to Initialize, exiting at once", () => {
    const result = step(aBackup(), { kind: "shutdown-requested", now: ms(12000) });
    expect(result.actions).toEqual([
      { kind: "report-transition", from: "Backup", to: "Initialize", reason: "shutdown", priority: 100 },
      { kind: "shutdown-complete" },
    ]);
    expect(result.state).toEqual(initialState(config));
    expect(nextDeadline(result.state)).toBeUndefined();
  });

  it("RFC 5798 §6.4.2 MUST: when Master_Down_Timer fires, send an advert, announce, arm Adver_Timer and become Master", () => {
    const result = step(aBackup(), { kind: "timer-expired", now: ms(13609) });
    expect(result.actions).toEqual([
      { kind: "report-transition", from: "Backup", to: "Master", reason: "master-down-timer-expired", priority: 100 },
      added([vip]),
      sent(config, 100),
      announced,
    ]);
    expect(result.state).toEqual(aMaster({ adverTimer: ms(14000), lease: leaseGrantedAt(13609) }));
  });

  it("RFC 5798 §6.4.2 MUST: a timer that fires before Master_Down_Timer changes nothing", () => {
    const state = aBackup();
    expect(step(state, { kind: "timer-expired", now: ms(13608) })).toEqual({ state, actions: [{ kind: "discard", reason: "timer-not-due" }] });
  });

  it("RFC 5798 §6.4.2 MUST: Backup receiving priority 0 sets Master_Down_Timer to Skew_Time", () => {
    const result = step(aBackup(), received(0, higherPeer, 12000));
    expect(result.actions).toEqual([]);
    expect(result.state).toEqual(aBackup({ masterDownTimer: ms(12000 + 609), takeoverReason: "priority-zero-received", leavingMaster: higherPeer }));
    const takeover = step(result.state, { kind: "timer-expired", now: ms(12609) });
    expect(takeover.actions[0]).toEqual({ kind: "report-transition", from: "Backup", to: "Master", reason: "priority-zero-received", priority: 100 });
  });

  it("RFC 5798 §6.4.2 MUST: an advert of higher priority sets Master_Adver_Interval from the advert and resets Master_Down_Timer", () => {
    const result = step(aBackup(), received(200, higherPeer, 12000, centiseconds(50)));
    expect(result.actions).toEqual([]);
    // 3 * 500 ms + (256 - 100) * 500 / 256 ms (304.7, rounded down)
    expect(result.state).toEqual(aBackup({ masterAdverInterval: centiseconds(50), masterDownTimer: ms(12000 + 1804) }));
  });

  it("RFC 5798 §6.4.2 MUST: an advert of equal priority is accepted whatever the sender's address", () => {
    const result = step(aBackup(), received(100, lowerPeer, 12000));
    expect(result).toEqual({ state: aBackup({ masterDownTimer: ms(15609) }), actions: [] });
  });

  it("RFC 5798 §6.4.2 MUST: with Preempt_Mode False a lower-priority advert still resets Master_Down_Timer", () => {
    const never = aBackup({ config: aConfig({ preemption: { mode: "never", delay: ms(0) } }) });
    const result = step(never, received(50, lowerPeer, 12000));
    expect(result).toEqual({ state: { ...never, masterDownTimer: ms(15609) }, actions: [] });
  });

  it("RFC 5798 §6.4.2 MUST: with Preempt_Mode True a lower-priority advert is discarded, so this Backup preempts", () => {
    const state = aBackup();
    const result = step(state, received(50, lowerPeer, 12000));
    expect(result.actions).toEqual([{ kind: "discard", reason: "lower-priority", ref: "5798 §6.4.2" }]);
    expect(result.state).toEqual(aBackup({ takeoverReason: "preempted" }));
    const takeover = step(result.state, { kind: "timer-expired", now: ms(13609) });
    expect(takeover.actions[0]).toEqual({ kind: "report-transition", from: "Backup", to: "Master", reason: "preempted", priority: 100 });
  });

  it("keepalived preempt_delay: a Backup accepts lower-priority adverts until the delay after becoming Backup, then preempts", () => {
    const delayed = aConfig({ preemption: { mode: "delayed", delay: ms(30000) } });
    const started = step(initialState(delayed), { kind: "started", now: ms(1000) }).state;
    expect(started).toMatchObject({ kind: "Backup", preemptAllowedAt: ms(31000) });
    const early = step(started, received(50, lowerPeer, 30999));
    expect(early.actions).toEqual([]);
    expect(early.state).toMatchObject({ masterDownTimer: ms(30999 + 3609), preemptAllowedAt: ms(31000) });
    const late = step(early.state, received(50, lowerPeer, 31000));
    expect(late.actions).toEqual([{ kind: "discard", reason: "lower-priority", ref: "5798 §6.4.2" }]);
    expect(late.state).toMatchObject({ masterDownTimer: ms(30999 + 3609), takeoverReason: "preempted" });
  });

  it("keepalived preempt_delay: the delay restarts when this Backup first outranks the Master again", () => {
    const delayed = aConfig({ preemption: { mode: "delayed", delay: ms(30000) } });
    const outranked = step(aBackup({ config: delayed, preemptAllowedAt: ms(5000) }), received(150, higherPeer, 12000));
    expect(outranked.state).toMatchObject({ preemptAllowedAt: undefined });
    const firstLower = step(outranked.state, received(50, lowerPeer, 13000));
    expect(firstLower.actions).toEqual([]);
    expect(firstLower.state).toMatchObject({ preemptAllowedAt: ms(43000) });
  });

  it("keepalived weight: an unhealthy Backup compares with its lowered effective priority", () => {
    const state = aBackup({ config: aConfig({ healthWeight: -60 }) });
    const unhealthy = step(state, { kind: "health-changed", now: ms(12000), isHealthy: false });
    expect(unhealthy).toEqual({ state: { ...state, isHealthy: false }, actions: [] });
    // 50 < 100 would be preempted, but not 50 >= 40.
    const result = step(unhealthy.state, received(50, lowerPeer, 12000));
    expect(result.actions).toEqual([]);
    // Master_Down_Interval with priority 40: 3000 + (216 * 1000 / 256 = 843.75)
    expect(result.state).toMatchObject({ masterDownTimer: ms(12000 + 3843) });
  });
});

describe("RFC 5798 §6.4.3 Master", () => {
  it("RFC 5798 §6.4.3 MUST: when Adver_Timer fires, send an advert and reset Adver_Timer", () => {
    const result = step(aMaster(), { kind: "timer-expired", now: ms(11003) });
    expect(result).toEqual({ state: aMaster({ adverTimer: ms(12000), lease: leaseGrantedAt(11003) }), actions: [sent(config, 100), renewed] });
  });

  it("RFC 5798 §6.4.3 Adver_Timer on the interval's grid: never later than the interval, and Masters that took over apart advertise together", () => {
    const early = step(aBackup(), { kind: "timer-expired", now: ms(13609) }).state;
    const late = step(aBackup(), { kind: "timer-expired", now: ms(13987) }).state;
    expect([nextDeadline(early), nextDeadline(late)]).toEqual([ms(14000), ms(14000)]);
    const fired = step(late, { kind: "timer-expired", now: ms(14002) });
    expect(nextDeadline(fired.state)).toBe(ms(15000));
    expect(nextDeadline(step(aMaster(), { kind: "timer-expired", now: ms(13999) }).state)).toBe(ms(14000));
  });

  it("Extension (not in RFC 5798), frozen Master: another Master heard with the Adver_Timer over 4 intervals overdue makes it step down, dropping the VIPs", () => {
    const never = aConfig({ preemption: { mode: "never", delay: ms(0) } });
    const result = step(aMaster({ config: never }), received(50, lowerPeer, 11000 + 4001));
    expect(result.actions).toEqual([
      { kind: "report-transition", from: "Master", to: "Backup", reason: "resumed-after-freeze", priority: 100 },
      { kind: "remove-vip", addresses: [vip] },
    ]);
    expect(result.state.kind).toBe("Backup");
  });

  it("Extension (not in RFC 5798), frozen Master: alone, or with preemption Always, or 4 intervals late, it keeps the RFC behaviour", () => {
    const never = aConfig({ preemption: { mode: "never", delay: ms(0) } });
    expect(step(aMaster({ config: never }), { kind: "timer-expired", now: ms(60000) }).actions).toEqual([sent(never, 100), renewed]);
    expect(step(aMaster({ config: never }), received(50, lowerPeer, 15000)).state.kind).toBe("Master");
    expect(step(aMaster(), received(50, lowerPeer, 60000)).state.kind).toBe("Master");
  });

  it("RFC 5798 §6.4.3 MUST: receiving priority 0 sends an advert and resets Adver_Timer", () => {
    const result = step(aMaster(), received(0, lowerPeer, 10500));
    expect(result).toEqual({ state: aMaster({ adverTimer: ms(11000) }), actions: [sent(config, 100)] });
  });

  it("RFC 5798 §6.4.3 MUST: a higher-priority advert makes the Master a Backup with the sender's interval", () => {
    const result = step(aMaster(), received(150, lowerPeer, 10500, centiseconds(200)));
    expect(result.actions).toContainEqual({ kind: "report-transition", from: "Master", to: "Backup", reason: "higher-priority-advert", priority: 100 });
    expect(result.actions).toContainEqual({ kind: "remove-vip", addresses: [vip] });
    // 3 * 2000 ms + (156 * 2000 / 256 = 1218.75)
    expect(result.state).toEqual(aBackup({ masterAdverInterval: centiseconds(200), masterDownTimer: ms(10500 + 7218) }));
  });

  it("RFC 5798 §6.4.3 MUST: on equal priority a sender with the higher primary address wins", () => {
    const result = step(aMaster(), received(100, higherPeer, 10500));
    expect(result.state.kind).toBe("Backup");
    expect(result.actions).toContainEqual(expect.objectContaining({ kind: "report-transition", reason: "higher-priority-advert" }));
  });

  it("Extension (not in RFC 5798), displacement linger: a Master displaced by a higher priority keeps its VIPs for releaseLinger, then drops them", () => {
    const lingering = aConfig({ releaseLinger: ms(200) });
    const displaced = step(aMaster({ config: lingering }), received(150, lowerPeer, 10500));
    expect(displaced.actions).toEqual([sent(lingering, 100), { kind: "report-transition", from: "Master", to: "Backup", reason: "higher-priority-advert", priority: 100 }, renewed]);
    expect(displaced.state).toMatchObject({ kind: "Backup", hold: { deadline: ms(10700), addresses: [vip] } });
    expect(nextDeadline(displaced.state)).toBe(10700);
    expect(step(displaced.state, { kind: "timer-expired", now: ms(10700) })).toEqual({
      state: { ...displaced.state, hold: undefined },
      actions: [{ kind: "remove-vip", addresses: [vip] }],
    });
  });

  it("Extension (not in RFC 5798), displacement linger: leaving Backup for Fault while lingering drops the VIPs", () => {
    const lingering = aBackup({ hold: { deadline: ms(10700), addresses: [vip] } });
    expect(step(lingering, { kind: "interface-down", now: ms(10600) }).actions).toEqual([
      { kind: "report-transition", from: "Backup", to: "Fault", reason: "link-down", priority: 100 },
      { kind: "remove-vip", addresses: [vip] },
    ]);
  });

  it("Extension (not in RFC 5798), split-brain heal: the yielding Master's last advert makes a winner that never heard a rival announce the VIPs again", () => {
    const yielding = step(aMaster(), received(150, higherPeer, 10500));
    // The last advert goes out before the transition, at the priority the yielding Master held.
    expect(yielding.actions).toEqual([
      sent(config, 100),
      { kind: "report-transition", from: "Master", to: "Backup", reason: "higher-priority-advert", priority: 100 },
      { kind: "remove-vip", addresses: [vip] },
    ]);
    const winner = aMaster({ config: aConfig({ priority: 150 }) });
    expect(step(winner, received(100, lowerPeer, 10501)).actions).toContainEqual(announced);
  });

  it("RFC 9568 §6.4.3 MUST: a lower-priority advert is discarded and answered with an advert at once, and the VIPs are announced again", () => {
    const state = aMaster();
    expect(step(state, received(50, higherPeer, 10500))).toEqual({ state: { ...state, assertedAt: ms(10500) }, actions: [sent(config, 100), announced] });
  });

  it("RFC 9568 §6.4.3 MUST: on equal priority a sender with a lower primary address is answered with an advert", () => {
    const state = aMaster();
    expect(step(state, received(100, lowerPeer, 10500))).toEqual({ state: { ...state, assertedAt: ms(10500) }, actions: [sent(config, 100), announced] });
  });

  it("RFC 9568 §6.4.3 (rate limit, extension): a flood of lower-priority adverts is answered once per advertisement interval", () => {
    const asserted = step(aMaster(), received(50, higherPeer, 10500)).state;
    expect(step(asserted, received(50, higherPeer, 11000))).toEqual({ state: asserted, actions: [{ kind: "discard", reason: "lower-priority" }] });
    expect(step(asserted, received(50, higherPeer, 11500)).actions).toEqual([sent(config, 100), announced, renewed]);
  });

  it("RFC 5798 §6.4.3 MUST: Shutdown sends priority 0; the VIPs are kept until the new Master is heard", () => {
    const result = step(aMaster(), { kind: "shutdown-requested", now: ms(10000) });
    expect(result.actions).toEqual([
      { kind: "report-transition", from: "Master", to: "Initialize", reason: "shutdown", priority: 100 },
      sent(config, 0),
      renewed,
    ]);
    const releasing: InitializeState = { ...initialState(config), hold: { deadline: ms(13000), addresses: [vip] } };
    expect(result.state).toEqual(releasing);
    expect(nextDeadline(result.state)).toBe(13000);
    const heard = step(result.state, received(90, lowerPeer, 10700));
    expect(heard).toEqual({ state: initialState(config), actions: [{ kind: "remove-vip", addresses: [vip] }, { kind: "shutdown-complete" }] });
  });

  it("Extension (not in RFC 5798), graceful shutdown: the hold ends at its bound when no new Master speaks", () => {
    const releasing: InitializeState = { ...initialState(config), hold: { deadline: ms(13000), addresses: [vip] } };
    expect(step(releasing, { kind: "timer-expired", now: ms(12999) })).toEqual({ state: releasing, actions: [{ kind: "discard", reason: "timer-not-due" }] });
    expect(step(releasing, { kind: "timer-expired", now: ms(13000) })).toEqual({
      state: initialState(config),
      actions: [{ kind: "remove-vip", addresses: [vip] }, { kind: "shutdown-complete" }],
    });
  });

  it("Extension (not in RFC 5798), graceful shutdown: priority 0 or another VRID does not end the hold; a second SIGTERM or link loss does", () => {
    const releasing: InitializeState = { ...initialState(config), hold: { deadline: ms(13000), addresses: [vip] } };
    expect(step(releasing, received(0, lowerPeer, 10500))).toEqual({ state: releasing, actions: [{ kind: "discard", reason: "not-running" }] });
    const other: RouterEvent = { kind: "advert-received", now: ms(10500), advert: advert(100, centiseconds(100), 52), source: lowerPeer };
    expect(step(releasing, other)).toEqual({ state: releasing, actions: [{ kind: "discard", reason: "other-vrid", ref: "5798 §7.1" }] });
    const done = [{ kind: "remove-vip", addresses: [vip] }, { kind: "shutdown-complete" }];
    expect(step(releasing, { kind: "shutdown-requested", now: ms(10500) }).actions).toEqual(done);
    expect(step(releasing, { kind: "interface-down", now: ms(10500) }).actions).toEqual(done);
  });

  it("RFC 5798 §7.1 MAY: a leaving Master does not take another virtual router on its VRID for its successor", () => {
    const releasing: InitializeState = { ...initialState(config), hold: { deadline: ms(13000), addresses: [vip] } };
    const foreign: RouterEvent = { kind: "advert-received", now: ms(10500), advert: { ...advert(150), addresses: ["192.168.0.151"] }, source: higherPeer };
    expect(step(releasing, foreign)).toEqual({ state: releasing, actions: [{ kind: "discard", reason: "address-mismatch", ref: "5798 §7.1" }] });
  });

  it("RFC 5798 §6.4.3 MUST: with shutdownHold 0 the Master sends priority 0, drops the VIPs and exits at once", () => {
    const state = aMaster({ config: aConfig({ shutdownHold: ms(0) }) });
    const result = step(state, { kind: "shutdown-requested", now: ms(10000) });
    expect(result.actions).toEqual([
      { kind: "report-transition", from: "Master", to: "Initialize", reason: "shutdown", priority: 100 },
      sent(state.config, 0),
      { kind: "remove-vip", addresses: [vip] },
      { kind: "shutdown-complete" },
    ]);
  });

  it("keepalived garp_master_refresh: a Master re-announces its addresses on its own deadline", () => {
    const refreshing = aConfig({ garp: { repeat: 5, refresh: ms(60000) } });
    const master = step(aBackup({ config: refreshing }), { kind: "timer-expired", now: ms(13609) }).state;
    expect(master).toMatchObject({ kind: "Master", adverTimer: ms(14000), garpRefreshTimer: ms(73609) });
    const state = aMaster({ config: refreshing, adverTimer: ms(74000), garpRefreshTimer: ms(73609) });
    expect(nextDeadline(state)).toBe(73609);
    const result = step(state, { kind: "timer-expired", now: ms(73609) });
    expect(result).toEqual({
      state: { ...state, garpRefreshTimer: ms(133609) },
      actions: [{ kind: "announce-vip", addresses: [vip], repeat: 1 }],
    });
  });
});

describe("RFC 5798 §7.1 receiving checks that need the configuration", () => {
  const cases: ReadonlyArray<[string, MasterState | BackupState, RouterEvent, RouterAction]> = [
    [
      "MUST: discard an advert for another VRID (not for us)",
      aBackup(),
      { kind: "advert-received", now: ms(12000), advert: advert(200, centiseconds(100), 52), source: higherPeer },
      { kind: "discard", reason: "other-vrid", ref: "5798 §7.1" },
    ],
    [
      "MUST: ignore our own advert looped back by multicast",
      aMaster(),
      received(100, "10.0.0.11", 10500),
      { kind: "discard", reason: "own-advert", ref: "5798 §7.1" },
    ],
    [
      "MUST: the local address owner discards adverts",
      aMaster({ config: aConfig({ priority: 255 }) }),
      received(254, higherPeer, 10500),
      { kind: "discard", reason: "local-address-owner", ref: "5798 §7.1" },
    ],
    [
      "MUST: discard an advert of the other VRRP version",
      aBackup(),
      {
        kind: "advert-received",
        now: ms(12000),
        advert: { version: 2, vrid: 51, priority: 200, adverInterval: seconds(1), authentication: { type: "none" }, addresses: [vip.address] },
        source: higherPeer,
      },
      { kind: "discard", reason: "version-mismatch", ref: "5798 §7.1" },
    ],
    [
      "keepalived check_unicast_src: in unicast mode discard an advert from an unconfigured peer",
      aBackup({ config: aConfig({ peers: ["10.0.0.13"] }) }),
      received(200, higherPeer, 12000),
      { kind: "discard", reason: "unknown-peer", ref: "keepalived check_unicast_src" },
    ],
    [
      "MAY: discard an advert whose address list differs from ours (another virtual router on our VRID), even from a higher priority",
      aMaster(),
      { kind: "advert-received", now: ms(10500), advert: { ...advert(200), addresses: ["192.168.0.151"] }, source: higherPeer },
      { kind: "discard", reason: "address-mismatch", ref: "5798 §7.1" },
    ],
    [
      "MAY: a priority-0 advert with another address list does not make a Backup take over after Skew_Time",
      aBackup(),
      { kind: "advert-received", now: ms(12000), advert: { ...advert(0), addresses: ["192.168.0.151"] }, source: higherPeer },
      { kind: "discard", reason: "address-mismatch", ref: "5798 §7.1" },
    ],
  ];
  for (const [name, state, event, action] of cases) {
    it(`RFC 5798 §7.1 ${name}`, () => {
      expect(step(state, event)).toEqual({ state, actions: [action] });
    });
  }

  it("RFC 5798 §7.1 MUST: in unicast mode a configured peer is accepted whatever its spelling", () => {
    const state = aBackup({ config: aConfig({ family: "ipv6", primaryAddress: "fe80::11", peers: ["FE80:0::12"], addresses: [{ address: "2001:db8::150", prefixLength: 64 }] }) });
    const result = step(state, { kind: "advert-received", now: ms(12000), advert: { ...advert(200), addresses: ["2001:db8::150"] }, source: "fe80::12" });
    expect(result.actions).toEqual([]);
    expect(result.state).toMatchObject({ masterDownTimer: ms(15609) });
  });

  describe("VRRPv2", () => {
    const v2 = aConfig({ version: 2, password: "secret" });
    const v2Advert = (overrides: Partial<AdvertisementV2>): RouterEvent => ({
      kind: "advert-received",
      now: ms(12000),
      advert: { ...(buildAdvert(v2, 200) as AdvertisementV2), ...overrides },
      source: higherPeer,
    });

    it("RFC 2338 §7.1 MUST: accept an advert with the configured password", () => {
      expect(step(aBackup({ config: v2 }), v2Advert({})).actions).toEqual([]);
    });

    it("RFC 2338 §7.1 MUST: discard an advert with another password or without authentication", () => {
      const state = aBackup({ config: v2 });
      const wrong = buildAdvert(aConfig({ version: 2, password: "secreT" }), 200) as AdvertisementV2;
      const mismatch = { kind: "discard", reason: "auth-mismatch", ref: "2338 §7.1" };
      expect(step(state, v2Advert({ authentication: wrong.authentication }))).toEqual({ state, actions: [mismatch] });
      expect(step(state, v2Advert({ authentication: { type: "none" } }))).toEqual({ state, actions: [mismatch] });
    });

    it("RFC 3768 §7.1 MUST: discard an advert whose Adver Interval differs from the configured one", () => {
      const state = aBackup({ config: v2 });
      expect(step(state, v2Advert({ adverInterval: seconds(2) }))).toEqual({
        state,
        actions: [{ kind: "discard", reason: "interval-mismatch", ref: "3768 §7.1" }],
      });
    });
  });
});

describe("Fault (extension, not in RFC 5798)", () => {
  it("Extension (not in RFC 5798), Fault: health failure with weight 0: a Master sends priority 0 and hands over, keeping its VIPs until the successor is heard", () => {
    const result = step(aMaster(), { kind: "health-changed", now: ms(10500), isHealthy: false });
    expect(result.actions).toEqual([
      { kind: "report-transition", from: "Master", to: "Fault", reason: "health-failed", priority: 100 },
      sent(config, 0),
      renewed,
    ]);
    expect(result.state).toEqual(aFault({ hold: { deadline: ms(13500), addresses: [vip] } }));
    expect(nextDeadline(result.state)).toBe(13500);
    const heard = step(result.state, received(90, lowerPeer, 11000));
    expect(heard).toEqual({ state: aFault(), actions: [{ kind: "remove-vip", addresses: [vip] }] });
    expect(nextDeadline(heard.state)).toBeUndefined();
  });

  it("Extension (not in RFC 5798), Fault hand-over: the VIPs go at the bound when no successor speaks, or at once on link loss", () => {
    const handingOver = aFault({ hold: { deadline: ms(13500), addresses: [vip] } });
    expect(step(handingOver, { kind: "timer-expired", now: ms(13000) })).toEqual({ state: handingOver, actions: [{ kind: "discard", reason: "timer-not-due" }] });
    expect(step(handingOver, { kind: "timer-expired", now: ms(13500) })).toEqual({ state: aFault(), actions: [{ kind: "remove-vip", addresses: [vip] }] });
    expect(step(handingOver, { kind: "interface-down", now: ms(11000) })).toEqual({
      state: aFault({ isLinkUp: false }),
      actions: [{ kind: "remove-vip", addresses: [vip] }],
    });
  });

  it("Extension (not in RFC 5798), Fault hand-over: recovering before the successor speaks makes it Master again, keeping the VIPs", () => {
    const handingOver = aFault({ hold: { deadline: ms(13500), addresses: [vip] } });
    const recovered = step(handingOver, { kind: "health-changed", now: ms(11000), isHealthy: true });
    expect(recovered.actions).toEqual([
      { kind: "report-transition", from: "Fault", to: "Master", reason: "health-recovered", priority: 100 },
      added([vip]),
      sent(config, 100),
      { kind: "announce-vip", addresses: [vip], repeat: config.garp.repeat },
    ]);
    expect(recovered.state).toEqual(aMaster({ adverTimer: ms(12000), lease: leaseGrantedAt(11000) }));
  });

  it("Extension (not in RFC 5798), Fault hand-over: recovering after the successor spoke drops the VIPs and rejoins as Backup", () => {
    const handingOver = aFault({ config: aConfig({ releaseLinger: ms(200) }), hold: { deadline: ms(13500), addresses: [vip] } });
    const heard = step(handingOver, received(90, lowerPeer, 10900));
    expect(heard.actions).toEqual([]);
    const recovered = step(heard.state, { kind: "health-changed", now: ms(11000), isHealthy: true });
    expect(recovered.actions).toEqual([
      { kind: "remove-vip", addresses: [vip] },
      { kind: "report-transition", from: "Fault", to: "Backup", reason: "health-recovered", priority: 100 },
    ]);
    expect(recovered.state).toMatchObject({ kind: "Backup", hold: undefined, masterDownTimer: ms(14609) });
  });

  it("Extension (not in RFC 5798), Fault hand-over: a shutdown during it keeps the VIPs until the successor is heard", () => {
    const handingOver = aFault({ hold: { deadline: ms(13500), addresses: [vip] } });
    const leaving = step(handingOver, { kind: "shutdown-requested", now: ms(11000) });
    expect(leaving.actions).toEqual([{ kind: "report-transition", from: "Fault", to: "Initialize", reason: "shutdown", priority: 100 }]);
    expect(leaving.state).toEqual({ ...initialState(config, { isHealthy: false }), hold: { deadline: ms(13500), addresses: [vip] } });
    expect(step(leaving.state, received(90, lowerPeer, 11500))).toEqual({
      state: { ...leaving.state, hold: undefined },
      actions: [{ kind: "remove-vip", addresses: [vip] }, { kind: "shutdown-complete" }],
    });
  });

  it("Extension (not in RFC 5798), release linger: after hearing the successor the VIPs stay for releaseLinger, so its gratuitous ARP lands first", () => {
    const lingering = aConfig({ releaseLinger: ms(200) });
    const releasing: InitializeState = { ...initialState(lingering), hold: { deadline: ms(13000), addresses: [vip] } };
    const heard = step(releasing, received(90, lowerPeer, 10700));
    expect(heard).toEqual({ state: { ...releasing, hold: { deadline: ms(10900), addresses: [vip] } }, actions: [] });
    const again = step(heard.state, received(90, lowerPeer, 10800));
    expect(again.state).toEqual(heard.state);
    expect(step(again.state, { kind: "timer-expired", now: ms(10900) })).toEqual({
      state: initialState(lingering),
      actions: [{ kind: "remove-vip", addresses: [vip] }, { kind: "shutdown-complete" }],
    });
  });

  it("Extension (not in RFC 5798), Fault: link down: a Backup goes to Fault, and back to Backup when the link returns", () => {
    const down = step(aBackup(), { kind: "interface-down", now: ms(12000) });
    expect(down.actions).toEqual([{ kind: "report-transition", from: "Backup", to: "Fault", reason: "link-down", priority: 100 }]);
    expect(down.state).toEqual(aFault({ isHealthy: true, isLinkUp: false }));
    const up = step(down.state, { kind: "interface-up", now: ms(20000) });
    expect(up.actions).toEqual([{ kind: "report-transition", from: "Fault", to: "Backup", reason: "link-up", priority: 100 }]);
    expect(up.state).toEqual(aBackup({ masterDownTimer: ms(23609) }));
  });

  it("Extension (not in RFC 5798), Fault: a Master whose link goes down goes to Fault and removes its VIPs", () => {
    const result = step(aMaster(), { kind: "interface-down", now: ms(10500) });
    expect(result.actions).toEqual([
      { kind: "report-transition", from: "Master", to: "Fault", reason: "link-down", priority: 100 },
      sent(config, 0),
      { kind: "remove-vip", addresses: [vip] },
    ]);
  });

  it("Extension (not in RFC 5798), Fault: health recovery leaves Fault for Backup, or straight to Master for the address owner", () => {
    expect(step(aFault(), { kind: "health-changed", now: ms(20000), isHealthy: true }).state).toEqual(aBackup({ masterDownTimer: ms(23609) }));
    const owner = step(aFault({ config: aConfig({ priority: 255 }) }), { kind: "health-changed", now: ms(20000), isHealthy: true });
    expect(owner.actions[0]).toEqual({ kind: "report-transition", from: "Fault", to: "Master", reason: "health-recovered", priority: 255 });
  });

  it("Extension (not in RFC 5798), Fault: a link that returns while still unhealthy stays in Fault", () => {
    const state = aFault({ isLinkUp: false });
    expect(step(state, { kind: "interface-up", now: ms(20000) })).toEqual({ state: { ...state, isLinkUp: true }, actions: [] });
  });

  it("Extension (not in RFC 5798), Fault: does not process adverts and exits at once on shutdown", () => {
    const state = aFault();
    expect(step(state, received(200, higherPeer, 12000))).toEqual({ state, actions: [{ kind: "discard", reason: "not-running" }] });
    expect(step(state, { kind: "shutdown-requested", now: ms(12000) }).actions).toEqual([
      { kind: "report-transition", from: "Fault", to: "Initialize", reason: "shutdown", priority: 100 },
      { kind: "shutdown-complete" },
    ]);
  });
});

describe("keepalived weight (negative)", () => {
  it("keepalived weight: an unhealthy Master advertises its lowered priority at once and stays Master", () => {
    const weighted = aConfig({ healthWeight: -30 });
    const result = step(aMaster({ config: weighted }), { kind: "health-changed", now: ms(10500), isHealthy: false });
    expect(result).toEqual({ state: aMaster({ config: weighted, isHealthy: false, adverTimer: ms(11000) }), actions: [sent(weighted, 70)] });
  });

  it("keepalived weight: the effective priority is clamped to 1..254", () => {
    const low = aConfig({ priority: 20, healthWeight: -100 });
    expect(step(aMaster({ config: low }), { kind: "health-changed", now: ms(10500), isHealthy: false }).actions).toEqual([sent(low, 1)]);
    const owner = aConfig({ priority: 255, healthWeight: -1 });
    expect(step(aMaster({ config: owner }), { kind: "health-changed", now: ms(10500), isHealthy: false }).actions).toEqual([sent(owner, 254)]);
  });
});

describe("config-changed, applied live", () => {
  it("RFC 5798 §6.4.3 MUST: a Master whose priority is lowered stays Master until it hears a higher advert", () => {
    const lower = aConfig({ priority: 50 });
    const result = step(aMaster(), { kind: "config-changed", now: ms(10500), config: lower });
    expect(result).toEqual({ state: aMaster({ config: lower, adverTimer: ms(11000) }), actions: [sent(lower, 50)] });
  });

  it("Extension (not in RFC 5798), config-changed: a Master adds and removes only the addresses that changed and announces the new ones", () => {
    const newVip = { address: "192.168.0.151", prefixLength: 24 };
    const next = aConfig({ addresses: [newVip] });
    const result = step(aMaster(), { kind: "config-changed", now: ms(10500), config: next });
    expect(result.actions).toEqual([
      { kind: "remove-vip", addresses: [vip] },
      added([newVip]),
      sent(next, 100),
      { kind: "announce-vip", addresses: [newVip], repeat: 5 },
    ]);
    expect(result.state).toEqual(aMaster({ config: next, adverTimer: ms(11000) }));
  });

  it("Extension (not in RFC 5798), config-changed: a change the adverts do not carry (peers) leaves the Master's timers alone", () => {
    const next = aConfig({ peers: [higherPeer] });
    expect(step(aMaster(), { kind: "config-changed", now: ms(10500), config: next })).toEqual({ state: aMaster({ config: next }), actions: [] });
  });

  it("RFC 5798 §6.4.3 MUST: a new VRID is another virtual router: the Master leaves with priority 0 and joins the new one as Backup", () => {
    const next = aConfig({ vrid: 52 });
    const result = step(aMaster(), { kind: "config-changed", now: ms(10500), config: next });
    expect(result.actions).toEqual([
      { kind: "report-transition", from: "Master", to: "Initialize", reason: "config-changed", priority: 100 },
      sent(config, 0),
      { kind: "remove-vip", addresses: [vip] },
      { kind: "report-transition", from: "Initialize", to: "Backup", reason: "config-changed", priority: 100 },
    ]);
    expect(result.state).toEqual(aBackup({ config: next, masterDownTimer: ms(10500 + 3609) }));
  });

  it("Extension (not in RFC 5798), config-changed: weight set to 0 while unhealthy sends a Backup to Fault; weight back lets it out", () => {
    const state = aBackup({ config: aConfig({ healthWeight: -10 }), isHealthy: false });
    const fault = step(state, { kind: "config-changed", now: ms(12000), config: aConfig() });
    expect(fault.state.kind).toBe("Fault");
    const back = step(fault.state, { kind: "config-changed", now: ms(13000), config: aConfig({ healthWeight: -10 }) });
    expect(back.state.kind).toBe("Backup");
  });

  it("RFC 5798 §6.4.1 MUST: Initialize only records the new configuration", () => {
    const next = aConfig({ priority: 255 });
    expect(step(initialState(config), { kind: "config-changed", now: ms(1), config: next })).toEqual({ state: initialState(next), actions: [] });
  });
});

describe("impossible combinations are reported, never ignored", () => {
  it("RFC 5798 §6.4 MUST: Startup in a running state is discarded as impossible-in-state", () => {
    for (const state of [aBackup(), aMaster(), aFault()]) {
      expect(step(state, { kind: "started", now: ms(1) })).toEqual({ state, actions: [{ kind: "discard", reason: "impossible-in-state" }] });
    }
  });

  it("RFC 5798 §6.2 MUST: a timer in a state without deadlines is impossible-in-state", () => {
    for (const state of [initialState(config), aFault()]) {
      expect(nextDeadline(state)).toBeUndefined();
      expect(step(state, { kind: "timer-expired", now: ms(1) })).toEqual({ state, actions: [{ kind: "discard", reason: "impossible-in-state" }] });
    }
  });

  it("Extension (not in RFC 5798), graceful shutdown: Startup during a graceful release is impossible-in-state", () => {
    const releasing: InitializeState = { ...initialState(config), hold: { deadline: ms(13000), addresses: [vip] } };
    expect(step(releasing, { kind: "started", now: ms(1) })).toEqual({ state: releasing, actions: [{ kind: "discard", reason: "impossible-in-state" }] });
  });
});
