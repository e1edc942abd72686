// The VRRP state machine (RFC 5798 §6.4, RFC 9568 §6.4.3), pure: `step(state, event)` returns the next state and
// the actions for the runtime to carry out. Time arrives as `event.now`; timers are deadlines in the state, and
// `nextDeadline(state)` tells the runtime when to deliver `timer-expired`. The configuration is `RouterConfig`
// (config.ts).
//
// Runtime contract:
//   let state = initialState(config); then for every event: ({ state, actions } = step(state, event)), carry out
//   `actions` in order, and (re)arm one timer at `nextDeadline(state)` (none when undefined). For `send-advert`,
//   encode once per `advertDestinations(state.config)` with `encodeContextFor(state.config, destination)`.
//
// Over 500 lines on purpose: every state's handling of every event sits in one file, so a transition can be read
// beside the others, as in FRR's vrrpd.c; the arithmetic (timers.ts), the checks (receive.ts) and the election
// (election.ts) live apart.

import type { Advertisement, HandoverMessage } from "./advertisement.js";
import type { RouterConfig, VirtualAddress } from "./config.js";
import { buildAdvert, computeEffectivePriority } from "./config.js";
import { formatAddress, parseAddress } from "./codec.js";
import { outranks } from "./election.js";
import type { PeerBook } from "./handover.js";
import {
  buildCandidacy,
  buildNomination,
  chooseSuccessor,
  emptyPeerBook,
  isNotedAdvertiser,
  isUnopposed,
  noteAdvertiser,
  noteCandidacySinceStart,
  noteHandover,
} from "./handover.js";
import type { NotForUsReason, RejectReason } from "./receive.js";
import { classifyAdvert, classifyHandover, isSameAddress } from "./receive.js";
import { advertisedInterval, computeMasterDownInterval, computeSkewTime, computeVipLease, computeVipLeaseFloor, nextOnGrid } from "./timers.js";
import type { Centiseconds, Milliseconds, Seconds } from "./units.js";
import { addMilliseconds, centisecondsToMilliseconds, milliseconds, secondsToMilliseconds } from "./units.js";

// ---------------------------------------------------------------------------------------------------------------
// States

/** RFC 5798 §6.4 states, plus Fault (extension, not in RFC 5798). */
export type StateKind = "Initialize" | "Backup" | "Master" | "Fault";

interface Shared {
  readonly config: RouterConfig;
  /** Latest health verdict (nginx Ready and the local probe); see RouterConfig.healthWeight. */
  readonly isHealthy: boolean;
  readonly isLinkUp: boolean;
  /** Extension, not in RFC 5798 (handover.ts): the other routers heard, for naming a successor. */
  readonly peers: PeerBook;
}

/**
 * A hand-over in progress (graceful shutdown, or a Master whose nginx failed): the VIPs stay until the new Master has
 * been heard for RouterConfig.releaseLinger, or the deadline passes.
 */
export interface VipHold {
  readonly deadline: Milliseconds;
  readonly addresses: readonly VirtualAddress[];
  /** Fault only: the successor has spoken, so healing must not take the VIPs back. */
  readonly isSuccessorHeard?: boolean;
}

/** RFC 5798 §6.4.1 */
export interface InitializeState extends Shared {
  readonly kind: "Initialize";
  /**
   * Extension, not in RFC 5798: §6.4.3 has a leaving Master send priority 0 and drop everything. Keeping the VIPs
   * until the next Master speaks closes the gap of one Skew_Time in which nobody answers ARP for them.
   */
  readonly hold: VipHold | undefined;
}

export type TakeoverReason = "master-down-timer-expired" | "priority-zero-received" | "preempted";

/** RFC 5798 §6.4.2 */
export interface BackupState extends Shared {
  readonly kind: "Backup";
  /** RFC 5798 §6.1 Master_Adver_Interval, learned from the Master's adverts. */
  readonly masterAdverInterval: Centiseconds;
  /** RFC 5798 §6.1 Master_Down_Timer, as a deadline. */
  readonly masterDownTimer: Milliseconds;
  /** keepalived preempt_delay: lower-priority adverts are accepted until then ("delayed" mode only). */
  readonly preemptAllowedAt: Milliseconds | undefined;
  /** Why this router would take over if the Master_Down_Timer fired now. */
  readonly takeoverReason: TakeoverReason;
  /**
   * Extension, not in RFC 5798: a Master displaced by a higher priority keeps the VIPs for releaseLinger, so the new
   * Master's gratuitous ARP reaches clients before this router stops answering for them.
   */
  readonly hold: VipHold | undefined;
  /** Extension, not in RFC 5798 (handover.ts): when to send the next candidacy; undefined when candidacy is off. */
  readonly candidacyTimer: Milliseconds | undefined;
  /**
   * Extension, not in RFC 5798 (handover.ts): the Master named this router; its priority-0 advert, if it follows by
   * `deadline`, makes this router Master at once instead of after Skew_Time.
   */
  readonly nomination: { readonly source: string; readonly deadline: Milliseconds } | undefined;
  /** The router whose priority-0 advert set Skew_Time running; only its nomination may cut Skew_Time short. */
  readonly leavingMaster: string | undefined;
  /**
   * Extension, not in RFC 5798 (handover.ts): the unicast peers whose candidacy arrived since this router entered
   * Backup through Startup; undefined once it has heard an advert, when it entered from Master, and without candidacy
   * or unicast peers.
   */
  readonly candidaciesSinceStart: readonly string[] | undefined;
}

/** When the kernel lease on the VIPs was last given, and for how long. */
export interface VipLease {
  readonly grantedAt: Milliseconds;
  readonly duration: Seconds;
}

/** RFC 5798 §6.4.3 */
export interface MasterState extends Shared {
  readonly kind: "Master";
  /** The oldest lease among the held VIPs: the one a renewal must come before. */
  readonly lease: VipLease;
  /** RFC 5798 §6.1 Adver_Timer, as a deadline. */
  readonly adverTimer: Milliseconds;
  /** keepalived garp_master_refresh, as a deadline; undefined when off. */
  readonly garpRefreshTimer: Milliseconds | undefined;
  /** When it last asserted itself against a lower-priority Master (RFC 9568 §6.4.3); limits that reply to one an interval. */
  readonly assertedAt: Milliseconds | undefined;
}

/**
 * Extension, not in RFC 5798 (keepalived FAULT): the link is down, or unhealthy with weight 0. Holds no VIP, except
 * during a hand-over: a Master whose nginx fails keeps the VIPs until the Backup that replaces it is heard, because a
 * planned move (nginx pod deleted, still draining) must lose no request, and an unplanned one loses nothing more.
 */
export interface FaultState extends Shared {
  readonly kind: "Fault";
  readonly hold: VipHold | undefined;
}

export type RouterState = InitializeState | BackupState | MasterState | FaultState;

// ---------------------------------------------------------------------------------------------------------------
// Events (past tense) and actions (commands)

export type RouterEvent =
  /** RFC 5798 §6.4.1 Startup event. */
  | { readonly kind: "started"; readonly now: Milliseconds }
  /** RFC 5798 §6.4.2/§6.4.3 Shutdown event (SIGTERM). A second one during hold ends it at once. */
  | { readonly kind: "shutdown-requested"; readonly now: Milliseconds }
  /** A decoded advert (codec checks passed) and the IP source address of its packet. */
  | { readonly kind: "advert-received"; readonly now: Milliseconds; readonly advert: Advertisement; readonly source: string }
  /** Extension, not in RFC 5798 (handover.ts): a decoded candidacy or nomination and its IP source address. */
  | { readonly kind: "handover-received"; readonly now: Milliseconds; readonly message: HandoverMessage; readonly source: string }
  /** The runtime's one timer fired (at or after nextDeadline). */
  | { readonly kind: "timer-expired"; readonly now: Milliseconds }
  /** A new configuration, applied live. */
  | { readonly kind: "config-changed"; readonly now: Milliseconds; readonly config: RouterConfig }
  | { readonly kind: "health-changed"; readonly now: Milliseconds; readonly isHealthy: boolean }
  | { readonly kind: "interface-down"; readonly now: Milliseconds }
  | { readonly kind: "interface-up"; readonly now: Milliseconds }
  /** A virtual address left the interface without this router removing it: its lease lapsed, or someone deleted it. */
  | { readonly kind: "vip-lost"; readonly now: Milliseconds; readonly address: string };

export type TransitionReason =
  | "started"
  | "address-owner"
  | TakeoverReason
  /**
   * Extension, not in RFC 5798 (handover.ts): the leaving Master named this Backup, which took over on its priority-0
   * advert without waiting Skew_Time (RFC 5798 §6.4.2 "Set the Master_Down_Timer to Skew_Time" is what it skips).
   */
  | "nominated"
  /**
   * Extension, not in RFC 5798 (handover.ts): no advert since Startup, and every unicast peer's candidacy outranked,
   * so this router took over without waiting Master_Down_Interval.
   */
  | "unopposed"
  | "higher-priority-advert"
  | "health-failed"
  | "health-recovered"
  | "link-down"
  | "link-up"
  | "config-changed"
  | "resumed-after-freeze"
  | "shutdown";

export type DiscardReason =
  | NotForUsReason
  | RejectReason
  /** RFC 5798 §6.4.2: a preempting Backup discards adverts of lower priority. */
  | "lower-priority"
  /** Initialize (not releasing) and Fault do not process adverts. */
  | "not-running"
  /** Extension, not in RFC 5798: a nomination of another router, or one this router cannot act on. */
  | "not-nominated"
  /** The timer fired before any deadline (the runtime just re-arms). */
  | "timer-not-due"
  | "impossible-in-state";

export type RouterAction =
  /** RFC 5798 §7.2: send to every advertDestinations(config). */
  | { readonly kind: "send-advert"; readonly advert: Advertisement }
  /** Adds the VIPs with a lifetime of `lease`, after which the kernel deletes them unless renewed. */
  | { readonly kind: "add-vip"; readonly addresses: readonly VirtualAddress[]; readonly lease: Seconds }
  /** Gives VIPs that are already on the interface a fresh `lease`; comes with every advert a holder sends. */
  | { readonly kind: "renew-vip-lease"; readonly addresses: readonly VirtualAddress[]; readonly lease: Seconds }
  /**
   * Extension, not in RFC 5798 (handover.ts): send on HANDOVER_PROTOCOL to `to`, one configured unicast peer, or else
   * to every advertDestinations(config).
   */
  | { readonly kind: "send-handover"; readonly message: HandoverMessage; readonly to?: string }
  | { readonly kind: "remove-vip"; readonly addresses: readonly VirtualAddress[] }
  /** RFC 5798 §6.4.1/§6.4.2: gratuitous ARP (IPv4) or unsolicited NA (IPv6), `repeat` times each. */
  | { readonly kind: "announce-vip"; readonly addresses: readonly VirtualAddress[]; readonly repeat: number }
  | { readonly kind: "report-transition"; readonly from: StateKind; readonly to: StateKind; readonly reason: TransitionReason; readonly priority: number }
  | { readonly kind: "discard"; readonly reason: DiscardReason; readonly ref?: string }
  /** End of a graceful shutdown: the process may exit. */
  | { readonly kind: "shutdown-complete" };

export interface StepResult {
  readonly state: RouterState;
  readonly actions: readonly RouterAction[];
}

/** Re-announces per garp refresh, as keepalived's garp_master_refresh_repeat default. */
const GARP_REFRESH_REPEAT = 1;

export function assertNever(value: never): never {
  throw new TypeError(`unhandled case: ${JSON.stringify(value)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

export function initialState(config: RouterConfig, initial: { readonly isHealthy?: boolean; readonly isLinkUp?: boolean } = {}): InitializeState {
  return { kind: "Initialize", config, isHealthy: initial.isHealthy ?? true, isLinkUp: initial.isLinkUp ?? true, peers: emptyPeerBook, hold: undefined };
}

export function effectivePriority(state: RouterState): number {
  return computeEffectivePriority(state.config, state.isHealthy);
}

function isFaulty(state: RouterState): boolean {
  return !state.isLinkUp || (!state.isHealthy && state.config.healthWeight === 0);
}

function intervalMs(config: RouterConfig): Milliseconds {
  return centisecondsToMilliseconds(config.advertisementInterval);
}

/**
 * RFC 5798 §6.4.3 "Reset the Adver_Timer to Advertisement_Interval", on the interval's grid: never later than the
 * RFC's deadline, and every Master with that interval advertises in the same instant, so one wake-up of the agent
 * sends all of them (docs/design-notes/agent-footprint.md).
 */
function nextAdverTimer(config: RouterConfig, now: Milliseconds): Milliseconds {
  return nextOnGrid(now, intervalMs(config));
}

function masterDownDeadline(state: RouterState, masterAdverInterval: Centiseconds, now: Milliseconds): Milliseconds {
  return addMilliseconds(now, computeMasterDownInterval(state.config.version, effectivePriority(state), masterAdverInterval));
}

function garpRefreshDeadline(config: RouterConfig, now: Milliseconds): Milliseconds | undefined {
  return config.garp.refresh > 0 ? addMilliseconds(now, config.garp.refresh) : undefined;
}

function unchanged(state: RouterState, actions: readonly RouterAction[] = []): StepResult {
  return { state, actions };
}

function discard(state: RouterState, reason: DiscardReason, ref?: string): StepResult {
  return { state, actions: [ref === undefined ? { kind: "discard", reason } : { kind: "discard", reason, ref }] };
}

function sendAdvert(state: RouterState, priority: number): RouterAction {
  return { kind: "send-advert", advert: buildAdvert(state.config, priority) };
}

function leaseFor(config: RouterConfig): Seconds {
  return computeVipLease(config.version, config.advertisementInterval);
}

function addVip(config: RouterConfig, addresses: readonly VirtualAddress[]): RouterAction {
  return { kind: "add-vip", addresses, lease: leaseFor(config) };
}

function isCandidacyOn(config: RouterConfig): boolean {
  return (config.candidacyInterval ?? 0) > 0;
}

/** A Backup's candidacy: its effective priority while it could take over, 0 (withdrawn) when it cannot. */
function sendCandidacy(state: RouterState, priority: number, to?: string): RouterAction {
  const message = buildCandidacy(state.config, priority);
  return to === undefined ? { kind: "send-handover", message } : { kind: "send-handover", message, to };
}

function candidacyDeadline(config: RouterConfig, now: Milliseconds): Milliseconds | undefined {
  return isCandidacyOn(config) ? nextOnGrid(now, config.candidacyInterval ?? milliseconds(0)) : undefined;
}

function announce(addresses: readonly VirtualAddress[], repeat: number): readonly RouterAction[] {
  return repeat > 0 && addresses.length > 0 ? [{ kind: "announce-vip", addresses, repeat }] : [];
}

function andThen(first: StepResult, second: (state: RouterState) => StepResult): StepResult {
  const next = second(first.state);
  return { state: next.state, actions: [...first.actions, ...next.actions] };
}

// ---------------------------------------------------------------------------------------------------------------
// The one place that changes state.kind (FRR's vrrp_change_state)

export type StateEntry =
  | { readonly to: "Master" }
  | { readonly to: "Backup"; readonly masterAdverInterval: Centiseconds; readonly hold?: VipHold }
  | { readonly to: "Initialize"; readonly hold: VipHold | undefined }
  | { readonly to: "Fault"; readonly hold?: VipHold };

/** Emits report-transition, the exit actions of the old state and the entry actions of RFC 5798 §6.4.x. */
export function enterState(state: RouterState, target: StateEntry, now: Milliseconds, reason: TransitionReason): StepResult {
  if (state.kind === target.to) return unchanged(state);
  const { config, isHealthy, isLinkUp, peers } = state;
  const shared: Shared = { config, isHealthy, isLinkUp, peers };
  const priority = effectivePriority(state);
  const actions: RouterAction[] = [{ kind: "report-transition", from: state.kind, to: target.to, reason, priority }];
  if (state.kind === "Master") {
    // RFC 5798 §6.4.3 Shutdown: "Send an ADVERTISEMENT with Priority = 0". Fault does the same, so that a
    // Backup takes over after Skew_Time instead of Master_Down_Interval. Extension, not in RFC 5798: the named
    // successor learns it first, so that it already knows when the priority-0 advert arrives.
    if (target.to === "Initialize" || target.to === "Fault") {
      const successor = chooseSuccessor(peers, config, now);
      if (successor !== undefined) actions.push({ kind: "send-handover", message: buildNomination(config, successor) });
      actions.push(sendAdvert(state, 0));
    }
    const isHolding = target.to !== "Master" && target.hold !== undefined;
    if (!isHolding) actions.push({ kind: "remove-vip", addresses: config.addresses });
  }
  // A Backup that can no longer take over says so, so that the Master does not name it. One that becomes Master says
  // so too: until its first advert is heard its candidacy would still count, and another router could start unopposed.
  if (state.kind === "Backup" && isCandidacyOn(config)) actions.push(sendCandidacy(state, 0));
  // A displaced Master still lingering: the VIPs go now, unless it becomes Master again and keeps them.
  if (state.kind === "Backup" && state.hold !== undefined && target.to !== "Master") {
    actions.push({ kind: "remove-vip", addresses: state.hold.addresses });
  }
  switch (target.to) {
    case "Master": {
      // RFC 5798 §6.4.1 / §6.4.2: send an ADVERTISEMENT, announce the addresses, set Adver_Timer.
      actions.push(addVip(config, config.addresses), sendAdvert(state, priority), ...announce(config.addresses, config.garp.repeat));
      const next: MasterState = {
        ...shared,
        kind: "Master",
        adverTimer: nextAdverTimer(config, now),
        garpRefreshTimer: garpRefreshDeadline(config, now),
        assertedAt: undefined,
        lease: { grantedAt: now, duration: leaseFor(config) },
      };
      return { state: next, actions };
    }
    case "Backup": {
      const next: BackupState = {
        ...shared,
        kind: "Backup",
        masterAdverInterval: target.masterAdverInterval,
        masterDownTimer: masterDownDeadline(state, target.masterAdverInterval, now),
        preemptAllowedAt: config.preemption.mode === "delayed" ? addMilliseconds(now, config.preemption.delay) : undefined,
        takeoverReason: "master-down-timer-expired",
        hold: target.hold,
        candidacyTimer: candidacyDeadline(config, now),
        nomination: undefined,
        leavingMaster: undefined,
        candidaciesSinceStart: state.kind !== "Master" && isCandidacyOn(config) && config.peers.length > 0 ? [] : undefined,
      };
      if (isCandidacyOn(config)) actions.push(sendCandidacy(next, priority));
      return { state: next, actions };
    }
    case "Initialize": {
      const next: InitializeState = { ...shared, kind: "Initialize", hold: target.hold };
      return { state: next, actions };
    }
    case "Fault": {
      const next: FaultState = { ...shared, kind: "Fault", hold: target.hold };
      return { state: next, actions };
    }
    default:
      return assertNever(target);
  }
}

/** RFC 5798 §6.4.1 Startup, also used to leave Fault. */
function start(state: RouterState, now: Milliseconds, reason: TransitionReason): StepResult {
  if (isFaulty(state)) return enterState(state, { to: "Fault" }, now, state.isLinkUp ? "health-failed" : "link-down");
  if (state.config.priority === 255 && effectivePriority(state) === 255) {
    return enterState(state, { to: "Master" }, now, reason === "started" ? "address-owner" : reason);
  }
  // RFC 5798 §6.4.1: "Set Master_Adver_Interval to Advertisement_Interval".
  return enterState(state, { to: "Backup", masterAdverInterval: state.config.advertisementInterval }, now, reason);
}

// ---------------------------------------------------------------------------------------------------------------
// step

export function step(state: RouterState, event: RouterEvent): StepResult {
  return withLeaseRenewal(stepByState(noteAdvert(state, event), event), event.now);
}

function stepByState(state: RouterState, event: RouterEvent): StepResult {
  switch (state.kind) {
    case "Initialize":
      return stepInitialize(state, event);
    case "Backup":
      return stepBackup(state, event);
    case "Master":
      return stepMaster(state, event);
    case "Fault":
      return stepFault(state, event);
    default:
      return assertNever(state);
  }
}

/** The VIPs this router has on the interface, or is holding through a hand-over. */
export function heldAddresses(state: RouterState): readonly VirtualAddress[] {
  if (state.kind === "Master") return state.config.addresses;
  return state.hold?.addresses ?? [];
}

/**
 * Backups time a Master's silence from its last advert, so each advert must leave the VIPs at least the floor: a
 * Master renews with the advert that would otherwise leave less (every advert at 1 s intervals, every fourth at
 * 250 ms). The last advert of a holder that leaves always renews, so the hold gets the whole lease. A step that adds
 * VIPs has given them a fresh lease already.
 */
function withLeaseRenewal(result: StepResult, now: Milliseconds): StepResult {
  const { state, actions } = result;
  const held = heldAddresses(state);
  if (held.length === 0 || !actions.some((action) => action.kind === "send-advert") || actions.some((action) => action.kind === "add-vip")) return result;
  if (state.kind === "Master" && !isLeaseRenewalDue(state, now)) return result;
  const duration = leaseFor(state.config);
  const renewed = state.kind === "Master" ? { ...state, lease: { grantedAt: now, duration } } : state;
  return { state: renewed, actions: [...actions, { kind: "renew-vip-lease", addresses: held, lease: duration }] };
}

function isLeaseRenewalDue(state: MasterState, now: Milliseconds): boolean {
  const { version, advertisementInterval } = state.config;
  const expiresAt = state.lease.grantedAt + secondsToMilliseconds(state.lease.duration);
  return expiresAt - now < computeVipLeaseFloor(version, advertisementInterval);
}

/**
 * Extension, not in RFC 5798 (handover.ts): whoever is Master later must know which routers advertise. Only with
 * candidacy on: a router that takes no part in the extension names no successor either.
 */
function noteAdvert<S extends RouterState>(state: S, event: RouterEvent): S {
  if (event.kind !== "advert-received" || event.advert.priority === 0 || !isCandidacyOn(state.config)) return state;
  if (isNotedAdvertiser(state.peers, event.source)) return state;
  const verdict = classifyAdvert(event.advert, event.source, state.config);
  const isHeard = verdict.kind === "accepted" || (verdict.kind === "rejected" && verdict.reason === "local-address-owner");
  return isHeard ? { ...state, peers: noteAdvertiser(state.peers, event.source, state.config.family) } : state;
}

/**
 * Extension, not in RFC 5798 (handover.ts): every state keeps the book of candidacies, so that a router that becomes
 * Master already knows whom to name. A nomination is acted upon by a Backup only (backupHandover).
 */
function receiveHandover(state: RouterState, message: HandoverMessage, source: string, now: Milliseconds): StepResult {
  const verdict = classifyHandover(message, source, state.config);
  if (verdict.kind !== "accepted") return discard(state, verdict.reason, verdict.ref);
  const next = { ...state, peers: noteHandover(state.peers, message, source, state.config.family, now) };
  return message.kind === "candidacy" ? unchanged(next) : discard(next, "not-nominated");
}

function backupHandover(state: BackupState, message: HandoverMessage, source: string, now: Milliseconds): StepResult {
  const received = receiveHandover(state, message, source, now);
  if (received.state.kind !== "Backup") return received;
  if (message.kind === "candidacy") return startupCandidacy(received.state, received, source, now);
  const noted = received.state;
  const isNamed = message.header.addresses.length === 1 && isSameAddress(message.header.addresses[0] ?? "", state.config.primaryAddress, state.config);
  const isAccepted = !received.actions.some((action) => action.kind === "discard" && action.reason !== "not-nominated");
  // An unhealthy Backup (negative weight) was not the Master's choice when it last heard from us: let the RFC decide.
  if (!isAccepted || !isNamed || !state.isHealthy) return received;
  // The two messages leave by different sockets, so the priority-0 advert may arrive first: Skew_Time is running.
  const isSkewRunning = state.takeoverReason === "priority-zero-received" && state.leavingMaster !== undefined;
  if (isSkewRunning && isSameAddress(state.leavingMaster ?? "", source, state.config)) {
    return enterState({ ...noted, nomination: undefined }, { to: "Master" }, now, "nominated");
  }
  // The priority-0 advert follows at once; allow one Master_Adver_Interval, so a stale nomination cannot fire later.
  const deadline = addMilliseconds(now, centisecondsToMilliseconds(state.masterAdverInterval));
  return unchanged({ ...noted, nomination: { source, deadline } });
}

/** Extension, not in RFC 5798 (handover.ts): a candidacy heard by a Backup that has heard no Master since Startup. */
function startupCandidacy(state: BackupState, received: StepResult, source: string, now: Milliseconds): StepResult {
  const isAccepted = !received.actions.some((action) => action.kind === "discard");
  if (!isAccepted || state.candidaciesSinceStart === undefined) return received;
  const heard = noteCandidacySinceStart(state.candidaciesSinceStart, source, state.config.family);
  const next: BackupState = { ...state, candidaciesSinceStart: heard };
  if (isUnopposed(next.peers, next.config, heard, effectivePriority(next), now)) return enterState(next, { to: "Master" }, now, "unopposed");
  // A peer heard for the first time may have started after our own candidacy went out: answer it, and it alone, so
  // that it need not wait for the repeat to learn of us, and a group's cold start costs one reply per pair.
  const peer = heard.length > state.candidaciesSinceStart.length ? next.config.peers.find((known) => isSameAddress(known, source, next.config)) : undefined;
  if (peer === undefined) return unchanged(next, received.actions);
  return unchanged(next, [...received.actions, sendCandidacy(next, effectivePriority(next), peer)]);
}

/** The deadline of the runtime's one timer; undefined: no timer. */
export function nextDeadline(state: RouterState): Milliseconds | undefined {
  switch (state.kind) {
    case "Initialize":
      return state.hold?.deadline;
    case "Backup":
      return Math.min(state.masterDownTimer, state.hold?.deadline ?? Infinity, state.candidacyTimer ?? Infinity) as Milliseconds;
    case "Master":
      return state.garpRefreshTimer !== undefined && state.garpRefreshTimer < state.adverTimer ? state.garpRefreshTimer : state.adverTimer;
    case "Fault":
      return state.hold?.deadline;
    default:
      return assertNever(state);
  }
}

/** The successor speaks: keep the VIPs only for the linger, never past the original bound. */
function lingerAfterSuccessor(hold: VipHold, config: RouterConfig, now: Milliseconds): VipHold {
  const end = addMilliseconds(now, config.releaseLinger);
  return end < hold.deadline ? { ...hold, deadline: end } : hold;
}

function isSuccessorAdvert(state: RouterState, advert: Advertisement, source: string): boolean {
  return advert.priority > 0 && classifyAdvert(advert, source, state.config).kind === "accepted";
}

/** Ends a Fault hand-over: the VIPs go now. */
function dropFaultHold(state: FaultState): StepResult {
  if (state.hold === undefined) return unchanged(state);
  return unchanged({ ...state, hold: undefined }, [{ kind: "remove-vip", addresses: state.hold.addresses }]);
}

function finishHold(state: InitializeState, hold: VipHold): StepResult {
  const next: InitializeState = { ...state, hold: undefined };
  return { state: next, actions: [{ kind: "remove-vip", addresses: hold.addresses }, { kind: "shutdown-complete" }] };
}

function isIdentityChange(before: RouterConfig, after: RouterConfig): boolean {
  return before.vrid !== after.vrid || before.version !== after.version || before.family !== after.family;
}

function stepInitialize(state: InitializeState, event: RouterEvent): StepResult {
  const hold = state.hold;
  switch (event.kind) {
    case "started":
      return hold === undefined ? start(state, event.now, "started") : discard(state, "impossible-in-state");
    case "shutdown-requested":
      return hold === undefined ? unchanged(state, [{ kind: "shutdown-complete" }]) : finishHold(state, hold);
    case "advert-received": {
      if (hold === undefined) return discard(state, "not-running");
      const verdict = classifyAdvert(event.advert, event.source, state.config);
      // The owner check of §7.1 protects a running owner; a leaving one must still hear its successor.
      const isHeard = verdict.kind === "accepted" || (verdict.kind === "rejected" && verdict.reason === "local-address-owner");
      if (isHeard && event.advert.priority > 0) {
        const lingering = lingerAfterSuccessor(hold, state.config, event.now);
        return lingering.deadline <= event.now ? finishHold(state, hold) : unchanged({ ...state, hold: lingering });
      }
      if (verdict.kind === "accepted") return discard(state, "not-running");
      return discard(state, verdict.reason, verdict.ref);
    }
    case "handover-received":
      return receiveHandover(state, event.message, event.source, event.now);
    case "timer-expired":
      if (hold === undefined) return discard(state, "impossible-in-state");
      return event.now >= hold.deadline ? finishHold(state, hold) : discard(state, "timer-not-due");
    case "config-changed":
      return unchanged({ ...state, config: event.config });
    case "health-changed":
      return unchanged({ ...state, isHealthy: event.isHealthy });
    case "interface-down": {
      // Nobody can be heard on a dead link: holding on gains nothing.
      const next: InitializeState = { ...state, isLinkUp: false };
      return hold === undefined ? unchanged(next) : finishHold(next, hold);
    }
    case "interface-up":
      return unchanged({ ...state, isLinkUp: true });
    case "vip-lost":
      return unchanged(state);
    default:
      return assertNever(event);
  }
}

function backupReceive(listening: BackupState, advert: Advertisement, source: string, now: Milliseconds): StepResult {
  const verdict = classifyAdvert(advert, source, listening.config);
  if (verdict.kind !== "accepted") return discard(listening, verdict.reason, verdict.ref);
  // Extension, not in RFC 5798 (handover.ts): a group with an advertiser has, or just had, a Master.
  const state: BackupState = listening.candidaciesSinceStart === undefined ? listening : { ...listening, candidaciesSinceStart: undefined };
  if (advert.priority === 0) {
    // Extension, not in RFC 5798 (handover.ts): the leaving Master named this router; take over now.
    const nomination = state.nomination;
    if (nomination !== undefined && now <= nomination.deadline && isSameAddress(nomination.source, source, state.config)) {
      // Reported as its own reason, so that status, events and metrics tell the extension from the RFC takeover.
      return enterState({ ...state, nomination: undefined }, { to: "Master" }, now, "nominated");
    }
    // RFC 5798 §6.4.2: "Set the Master_Down_Timer to Skew_Time".
    const skew = computeSkewTime(state.config.version, effectivePriority(state), state.masterAdverInterval);
    return unchanged({ ...state, masterDownTimer: addMilliseconds(now, skew), takeoverReason: "priority-zero-received", leavingMaster: source });
  }
  const { mode, delay } = state.config.preemption;
  const isLower = advert.priority < effectivePriority(state);
  let preemptAllowedAt = isLower ? state.preemptAllowedAt : undefined;
  let isPreemptionHeld = mode === "never";
  if (isLower && mode === "delayed") {
    preemptAllowedAt = preemptAllowedAt ?? addMilliseconds(now, delay);
    isPreemptionHeld = now < preemptAllowedAt;
  }
  if (!isLower || isPreemptionHeld) {
    // RFC 5798 §6.4.2: learn Master_Adver_Interval, recompute Master_Down_Interval, reset Master_Down_Timer.
    const masterAdverInterval = advertisedInterval(advert);
    return unchanged({
      ...state,
      masterAdverInterval,
      masterDownTimer: masterDownDeadline(state, masterAdverInterval, now),
      preemptAllowedAt: mode === "delayed" ? preemptAllowedAt : undefined,
      takeoverReason: "master-down-timer-expired",
      leavingMaster: undefined,
    });
  }
  // RFC 5798 §6.4.2: "Discard the ADVERTISEMENT"; the Master_Down_Timer then runs out and this router preempts.
  const next: BackupState = { ...state, preemptAllowedAt, takeoverReason: "preempted" };
  return { state: next, actions: [{ kind: "discard", reason: "lower-priority", ref: "5798 §6.4.2" }] };
}

function reinitialize(state: BackupState | MasterState, config: RouterConfig, now: Milliseconds): StepResult {
  // Another VRID, version or family is another virtual router: leave the old one as on shutdown, join the new one.
  return andThen(enterState(state, { to: "Initialize", hold: undefined }, now, "config-changed"), (left) =>
    start({ ...left, config }, now, "config-changed"),
  );
}

function backupTimer(state: BackupState, now: Milliseconds): StepResult {
  // RFC 5798 §6.4.2 Master_Down_Timer fires: advertise, announce, set Adver_Timer, become Master (keeping any VIPs
  // still lingering from a displacement).
  if (now >= state.masterDownTimer) return enterState(state, { to: "Master" }, now, state.takeoverReason);
  const isHoldDue = state.hold !== undefined && now >= state.hold.deadline;
  const isCandidacyDue = state.candidacyTimer !== undefined && now >= state.candidacyTimer;
  if (!isHoldDue && !isCandidacyDue) return discard(state, "timer-not-due");
  const actions: RouterAction[] = [];
  if (isHoldDue && state.hold !== undefined) actions.push({ kind: "remove-vip", addresses: state.hold.addresses });
  // Extension, not in RFC 5798 (handover.ts): the periodic candidacy.
  if (isCandidacyDue) actions.push(sendCandidacy(state, effectivePriority(state)));
  const next: BackupState = {
    ...state,
    hold: isHoldDue ? undefined : state.hold,
    candidacyTimer: isCandidacyDue ? candidacyDeadline(state.config, now) : state.candidacyTimer,
  };
  return unchanged(next, actions);
}

/**
 * Extension, not in RFC 5798: the Master must not name this router on a priority it no longer has, so a change of
 * priority or of the candidacy interval is announced at once, and candidacy turned off stops the repeats.
 */
function recandidate(before: BackupState, next: BackupState, now: Milliseconds): StepResult {
  const isIntervalChanged = next.config.candidacyInterval !== before.config.candidacyInterval;
  if (!isIntervalChanged && effectivePriority(next) === effectivePriority(before)) return unchanged(next);
  const renewed: BackupState = { ...next, candidacyTimer: candidacyDeadline(next.config, now) };
  return isCandidacyOn(next.config) ? unchanged(renewed, [sendCandidacy(renewed, effectivePriority(renewed))]) : unchanged(renewed);
}

function stepBackup(state: BackupState, event: RouterEvent): StepResult {
  switch (event.kind) {
    case "started":
      return discard(state, "impossible-in-state");
    case "shutdown-requested":
      // RFC 5798 §6.4.2: cancel the Master_Down_Timer, transition to Initialize.
      return andThen(enterState(state, { to: "Initialize", hold: undefined }, event.now, "shutdown"), (left) =>
        unchanged(left, [{ kind: "shutdown-complete" }]),
      );
    case "advert-received":
      return backupReceive(state, event.advert, event.source, event.now);
    case "handover-received":
      return backupHandover(state, event.message, event.source, event.now);
    case "timer-expired":
      return backupTimer(state, event.now);
    case "config-changed": {
      if (isIdentityChange(state.config, event.config)) return reinitialize(state, event.config, event.now);
      const next: BackupState = { ...state, config: event.config };
      if (isFaulty(next)) return enterState(next, { to: "Fault" }, event.now, "config-changed");
      return recandidate(state, next, event.now);
    }
    case "health-changed": {
      const next: BackupState = { ...state, isHealthy: event.isHealthy };
      if (isFaulty(next)) return enterState(next, { to: "Fault" }, event.now, "health-failed");
      return recandidate(state, next, event.now);
    }
    case "interface-down":
      return enterState({ ...state, isLinkUp: false }, { to: "Fault" }, event.now, "link-down");
    case "interface-up":
      return unchanged({ ...state, isLinkUp: true });
    case "vip-lost":
      return unchanged(state);
    default:
      return assertNever(event);
  }
}

function masterReceive(state: MasterState, advert: Advertisement, source: string, now: Milliseconds): StepResult {
  const verdict = classifyAdvert(advert, source, state.config);
  if (verdict.kind !== "accepted") return discard(state, verdict.reason, verdict.ref);
  const priority = effectivePriority(state);
  if (advert.priority > 0 && isResumedFromFreeze(state, now)) {
    return enterState(state, { to: "Backup", masterAdverInterval: advertisedInterval(advert) }, now, "resumed-after-freeze");
  }
  if (advert.priority === 0) {
    // RFC 5798 §6.4.3: "Send an ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval".
    const next: MasterState = { ...state, adverTimer: nextAdverTimer(state.config, now) };
    return { state: next, actions: [sendAdvert(state, priority)] };
  }
  const local = { priority, address: state.config.primaryAddress };
  if (outranks({ priority: advert.priority, address: source }, local, state.config.family)) {
    // RFC 5798 §6.4.3: cancel Adver_Timer, learn Master_Adver_Interval, set Master_Down_Timer, become Backup.
    const linger = state.config.releaseLinger;
    const hold = linger > 0 ? { deadline: addMilliseconds(now, linger), addresses: state.config.addresses } : undefined;
    const masterAdverInterval = advertisedInterval(advert);
    const yielded = enterState(state, hold === undefined ? { to: "Backup", masterAdverInterval } : { to: "Backup", masterAdverInterval, hold }, now, "higher-priority-advert");
    // Extension, not in RFC 5798: one last advert at our own priority. When the winner's advert reached us before
    // ours reached it (a healing split brain), the winner never heard a second Master and would not announce the
    // VIPs again, leaving clients on our MAC until their ARP entries go stale; this advert triggers its RFC 9568
    // assertion below, which re-announces them.
    return { state: yielded.state, actions: [sendAdvert(state, priority), ...yielded.actions] };
  }
  // RFC 9568 §6.4.3: discard it and "Send an ADVERTISEMENT immediately to assert the Master state to the sending
  // VRRP Router", which ends a split brain within one round trip instead of one Master_Down_Interval. The other
  // Master has been answering ARP for the VIPs too, so clients may point at it: announce them again, as keepalived's
  // garp_lower_prio_repeat does. Once per advertisement interval at most, so a flood of forged lower-priority
  // adverts cannot turn into a flood of adverts and ARPs.
  if (state.assertedAt !== undefined && now - state.assertedAt < intervalMs(state.config)) return discard(state, "lower-priority");
  return unchanged({ ...state, assertedAt: now }, [sendAdvert(state, priority), ...announce(state.config.addresses, state.config.garp.repeat)]);
}

function addressKey(vip: VirtualAddress, config: RouterConfig): string {
  const bytes = parseAddress(vip.address, config.family);
  return `${bytes === undefined ? vip.address : formatAddress(bytes)}/${vip.prefixLength}`;
}

function addressesMissingFrom(from: readonly VirtualAddress[], other: readonly VirtualAddress[], config: RouterConfig): readonly VirtualAddress[] {
  const keys = new Set(other.map((vip) => addressKey(vip, config)));
  return from.filter((vip) => !keys.has(addressKey(vip, config)));
}

function masterReconfigure(state: MasterState, config: RouterConfig, now: Milliseconds): StepResult {
  if (isIdentityChange(state.config, config)) return reinitialize(state, config, now);
  const next: MasterState = { ...state, config };
  if (isFaulty(next)) return enterState(next, { to: "Fault" }, now, "config-changed");
  const removed = addressesMissingFrom(state.config.addresses, config.addresses, config);
  const added = addressesMissingFrom(config.addresses, state.config.addresses, config);
  const actions: RouterAction[] = [];
  if (removed.length > 0) actions.push({ kind: "remove-vip", addresses: removed });
  if (added.length > 0) actions.push(addVip(config, added));
  // A lowered priority does not make a Master step down (RFC 5798 §6.4.3 only yields to a received advert);
  // advertising the new values at once lets a preempting Backup act one interval sooner.
  const before = JSON.stringify(buildAdvert(state.config, effectivePriority(state)));
  const isAdvertChanged = JSON.stringify(buildAdvert(config, effectivePriority(next))) !== before;
  const refreshChanged = config.garp.refresh !== state.config.garp.refresh;
  const reconfigured: MasterState = {
    ...next,
    adverTimer: isAdvertChanged ? nextAdverTimer(config, now) : state.adverTimer,
    garpRefreshTimer: refreshChanged ? garpRefreshDeadline(config, now) : state.garpRefreshTimer,
  };
  if (isAdvertChanged) actions.push(sendAdvert(reconfigured, effectivePriority(reconfigured)));
  actions.push(...announce(added, config.garp.repeat));
  return unchanged(reconfigured, actions);
}

/**
 * Extension, not in RFC 5798: an Adver_Timer overdue by more than any Backup's Master_Down_Interval
 * (< 4 × Advertisement_Interval) means this router was frozen (a paused container, a stopped VM). If, so overdue, it
 * hears another Master, that one took over meanwhile, and unless preemption is "always" this Master steps down
 * instead of taking the VIP back with its higher priority: the user asked for no preemption, and the node did leave.
 * A lateness with nobody else advertising (one node, or every node starved) keeps the RFC behaviour.
 */
const FROZEN_ADVERT_INTERVALS = 4;

function isResumedFromFreeze(state: MasterState, now: Milliseconds): boolean {
  return state.config.preemption.mode !== "always" && now - state.adverTimer > FROZEN_ADVERT_INTERVALS * intervalMs(state.config);
}

function masterTimer(state: MasterState, now: Milliseconds): StepResult {
  const isAdverDue = now >= state.adverTimer;
  const isRefreshDue = state.garpRefreshTimer !== undefined && now >= state.garpRefreshTimer;
  if (!isAdverDue && !isRefreshDue) return discard(state, "timer-not-due");
  const actions: RouterAction[] = [];
  // RFC 5798 §6.4.3 Adver_Timer fires: "Send an ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval".
  if (isAdverDue) actions.push(sendAdvert(state, effectivePriority(state)));
  if (isRefreshDue) actions.push(...announce(state.config.addresses, GARP_REFRESH_REPEAT));
  const next: MasterState = {
    ...state,
    adverTimer: isAdverDue ? nextAdverTimer(state.config, now) : state.adverTimer,
    garpRefreshTimer: isRefreshDue ? garpRefreshDeadline(state.config, now) : state.garpRefreshTimer,
  };
  return unchanged(next, actions);
}

function stepMaster(state: MasterState, event: RouterEvent): StepResult {
  switch (event.kind) {
    case "started":
      return discard(state, "impossible-in-state");
    case "shutdown-requested": {
      const bound = state.config.shutdownHold;
      const hold: VipHold | undefined = bound > 0 ? { deadline: addMilliseconds(event.now, bound), addresses: state.config.addresses } : undefined;
      const left = enterState(state, { to: "Initialize", hold }, event.now, "shutdown");
      return hold === undefined ? andThen(left, (next) => unchanged(next, [{ kind: "shutdown-complete" }])) : left;
    }
    case "advert-received":
      return masterReceive(state, event.advert, event.source, event.now);
    case "handover-received":
      return receiveHandover(state, event.message, event.source, event.now);
    case "timer-expired":
      return masterTimer(state, event.now);
    case "config-changed":
      return masterReconfigure(state, event.config, event.now);
    case "health-changed": {
      const next: MasterState = { ...state, isHealthy: event.isHealthy };
      if (isFaulty(next)) {
        const bound = next.config.shutdownHold;
        const hold = bound > 0 ? { deadline: addMilliseconds(event.now, bound), addresses: next.config.addresses } : undefined;
        return enterState(next, hold === undefined ? { to: "Fault" } : { to: "Fault", hold }, event.now, "health-failed");
      }
      const priority = effectivePriority(next);
      if (priority === effectivePriority(state)) return unchanged(next);
      // Tell the Backups the new priority now rather than at the next Adver_Timer.
      return unchanged({ ...next, adverTimer: nextAdverTimer(next.config, event.now) }, [sendAdvert(next, priority)]);
    }
    case "interface-down":
      return enterState({ ...state, isLinkUp: false }, { to: "Fault" }, event.now, "link-down");
    case "interface-up":
      return unchanged({ ...state, isLinkUp: true });
    case "vip-lost": {
      // A Master's VIP went behind its back (a stalled loop let the lease lapse): put it back and announce it, as on
      // becoming Master, or the clients' neighbour caches keep pointing elsewhere.
      const lost = state.config.addresses.filter((vip) => isSameAddress(vip.address, event.address, state.config));
      return unchanged(state, lost.length === 0 ? [] : [addVip(state.config, lost), ...announce(lost, state.config.garp.repeat)]);
    }
    default:
      return assertNever(event);
  }
}

function stepFault(state: FaultState, event: RouterEvent): StepResult {
  switch (event.kind) {
    case "started":
      return discard(state, "impossible-in-state");
    case "shutdown-requested":
      // A hand-over already under way goes on as the shutdown's: the priority-0 advert went out on entering Fault, and
      // the VIPs stay until the successor is heard (or the same bound), instead of leaving a gap until it takes over.
      if (state.hold !== undefined) return enterState(state, { to: "Initialize", hold: state.hold }, event.now, "shutdown");
      return andThen(enterState(state, { to: "Initialize", hold: undefined }, event.now, "shutdown"), (left) =>
        unchanged(left, [{ kind: "shutdown-complete" }]),
      );
    case "advert-received": {
      const hold = state.hold;
      if (hold === undefined || !isSuccessorAdvert(state, event.advert, event.source)) return discard(state, "not-running");
      const lingering = lingerAfterSuccessor(hold, state.config, event.now);
      return lingering.deadline <= event.now ? dropFaultHold(state) : unchanged({ ...state, hold: { ...lingering, isSuccessorHeard: true } });
    }
    case "handover-received":
      return receiveHandover(state, event.message, event.source, event.now);
    case "timer-expired":
      if (state.hold === undefined) return discard(state, "impossible-in-state");
      return event.now >= state.hold.deadline ? dropFaultHold(state) : discard(state, "timer-not-due");
    case "config-changed":
      return leaveFaultIfHealed({ ...state, config: event.config }, event.now, "config-changed");
    case "health-changed":
      return leaveFaultIfHealed({ ...state, isHealthy: event.isHealthy }, event.now, "health-recovered");
    case "interface-down":
      // Nobody can be heard on a dead link: holding on gains nothing.
      return dropFaultHold({ ...state, isLinkUp: false });
    case "interface-up":
      return leaveFaultIfHealed({ ...state, isLinkUp: true }, event.now, "link-up");
    case "vip-lost":
      return unchanged(state);
    default:
      return assertNever(event);
  }
}

/**
 * A hand-over the successor has joined ends first: a healed router rejoins through Startup holding nothing.
 * Extension, not in RFC 5798: a Master whose health returned before any successor spoke (a blip: two probe timeouts of a
 * stalled node) still holds the VIPs and the clients still point at it, so it is Master again at once. Dropping them
 * and rejoining as Backup left nobody answering until a Backup's Skew_Time, or its own Master_Down_Interval when the
 * other nodes were in Fault too. Its advert resets the Backups' timers that its priority-0 advert had shortened; a
 * Backup that took over meanwhile meets it as one Master meets another.
 */
function leaveFaultIfHealed(state: FaultState, now: Milliseconds, reason: TransitionReason): StepResult {
  if (isFaulty(state)) return unchanged(state);
  // Health only: a config change (other VIPs, another VRID) still goes through Startup.
  if (reason === "health-recovered" && state.hold !== undefined && state.hold.isSuccessorHeard !== true) {
    return enterState({ ...state, hold: undefined }, { to: "Master" }, now, reason);
  }
  return andThen(dropFaultHold(state), (dropped) => start(dropped, now, reason));
}
