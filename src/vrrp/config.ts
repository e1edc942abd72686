// The configuration of one virtual router on this node, as the state machine consumes it. Plain data: the agent
// builds it from the HighAvailabilityVIP spec (or a file) and hands a new one over with `config-changed`.

import type { AddressFamily, Advertisement, VrrpVersion } from "./advertisement.js";
import { VRRP_MULTICAST_IPV4, VRRP_MULTICAST_IPV6 } from "./advertisement.js";
import type { EncodeContext, V3Ipv4ChecksumMode } from "./codec.js";
import { isLinkLocalAddress, parseAddress, passwordToAuthData } from "./codec.js";
import type { Centiseconds, Milliseconds } from "./units.js";
import { centisecondsToSeconds } from "./units.js";

/** A virtual address with the prefix length it gets on the interface. */
export interface VirtualAddress {
  readonly address: string;
  readonly prefixLength: number;
}

/**
 * RFC 5798 §6.1 Preempt_Mode, plus keepalived's `preempt_delay`:
 * - "always": RFC Preempt_Mode True.
 * - "never": RFC Preempt_Mode False (keepalived `nopreempt`).
 * - "delayed": Preempt_Mode True, but a Backup only starts to preempt `delay` after it became Backup or first
 *   saw a lower-priority Master, whichever is later (keepalived `preempt_delay`): lets nginx warm up after a reboot.
 */
export type PreemptMode = "always" | "never" | "delayed";

export interface PreemptionConfig {
  readonly mode: PreemptMode;
  /** Used by "delayed" only. */
  readonly delay: Milliseconds;
}

export interface GarpConfig {
  /** Gratuitous ARPs / unsolicited NAs sent on becoming Master (keepalived `garp_master_repeat`, default 5). */
  readonly repeat: number;
  /** Re-announce period while Master; 0 = off (keepalived `garp_master_refresh`). */
  readonly refresh: Milliseconds;
}

export interface RouterConfig {
  /** RFC 5798 §5.2.3, 1..255. */
  readonly vrid: number;
  /** RFC 5798 (3) or RFC 3768 (2, IPv4 only). */
  readonly version: VrrpVersion;
  readonly family: AddressFamily;
  /** RFC 5798 §6.1 Priority: 1..254, or 255 for the address owner. */
  readonly priority: number;
  /** RFC 5798 §6.1 IPvX_Addresses: the VIPs, 1..255 of them, all of `family`. */
  readonly addresses: readonly VirtualAddress[];
  /** RFC 5798 §7.2: this router's primary address, the source of its adverts and its tie-breaker. */
  readonly primaryAddress: string;
  /** RFC 5798 §6.1 Advertisement_Interval: v3 1..4095 cs; v2 whole seconds (multiples of 100 cs, 1..255 s). */
  readonly advertisementInterval: Centiseconds;
  readonly preemption: PreemptionConfig;
  /** Unicast peers (keepalived `unicast_peer`). Empty: multicast to 224.0.0.18 / ff02::12. */
  readonly peers: readonly string[];
  /**
   * VRRPv2 `auth_type PASS` password; undefined: no authentication. Must be undefined for v3. Only its first 8 bytes
   * travel (RFC 2338 §5.3.6.1), and keepalived cuts a longer auth_pass the same way, so a longer one still interoperates.
   */
  readonly password: string | undefined;
  readonly garp: GarpConfig;
  /** See codec.ts; keepalived interoperability needs "pseudo-header" (the default). */
  readonly v3Ipv4Checksum: V3Ipv4ChecksumMode;
  /** Graceful shutdown: how long a leaving Master keeps the VIPs while waiting to hear the new Master. */
  readonly shutdownHold: Milliseconds;
  /**
   * How long a leaving Master still keeps the VIPs after it has heard the new Master. The new Master's first advert
   * leaves before its gratuitous ARP; dropping the VIPs at once would send clients with the old ARP entry into a hole
   * for that gap. Keep it shorter than the new Master's ARP burst, so a client that asks in between is corrected.
   */
  readonly releaseLinger: Milliseconds;
  /**
   * Health weight (keepalived `weight`), 0 or negative. 0: unhealthy means Fault (the VIPs are released).
   * Negative: unhealthy means effective priority = priority + weight, clamped to 1..254.
   */
  readonly healthWeight: number;
  /**
   * Extension, not in RFC 5798 (handover.ts): how often a Backup tells the group it can take over, so that a leaving
   * Master can name it and it takes over without waiting Skew_Time. Absent or 0: off (a Backup stays silent, as RFC
   * 5798 has it). Whole centiseconds from 1 s to 40.95 s (the 12-bit interval field); whole seconds for VRRPv2.
   */
  readonly candidacyInterval?: Milliseconds;
}

export type ConfigProblem =
  | "vrid-out-of-range"
  | "priority-out-of-range"
  | "interval-out-of-range"
  | "no-addresses"
  | "too-many-addresses"
  | "address-wrong-family"
  | "prefix-out-of-range"
  | "primary-address-wrong-family"
  | "peer-wrong-family"
  /** RFC 5798 §6.4.3 compares the source of a received advert with ours: IPv6 link-local with link-local, global with global. */
  | "primary-address-scope-mismatch"
  | "v2-needs-ipv4"
  | "password-needs-v2"
  | "preempt-delay-negative"
  | "garp-out-of-range"
  | "shutdown-hold-negative"
  | "release-linger-negative"
  | "health-weight-positive"
  | "candidacy-interval-out-of-range";

function isIntegerIn(value: number, min: number, max: number): boolean {
  return Number.isInteger(value) && value >= min && value <= max;
}

/**
 * An IPv6 unicast advert leaves from the address of our peer's scope, the link-local one for a link-local peer and a
 * global one otherwise, and that is the source our peers compare with their own primary address. A primary of the
 * other scope makes both of two Masters find their own address the higher, so neither yields.
 */
function isScopeMismatched(config: RouterConfig): boolean {
  if (config.family !== "ipv6") return false;
  const primary = parseAddress(config.primaryAddress, config.family);
  if (primary === undefined) return false;
  return config.peers.some((peer) => {
    const bytes = parseAddress(peer, config.family);
    return bytes !== undefined && isLinkLocalAddress(bytes) !== isLinkLocalAddress(primary);
  });
}

/** Every rule the core relies on; the agent refuses a config with problems instead of letting `step` throw. */
export function checkRouterConfig(config: RouterConfig): readonly ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const maxPrefix = config.family === "ipv4" ? 32 : 128;
  if (!isIntegerIn(config.vrid, 1, 255)) problems.push("vrid-out-of-range");
  if (!isIntegerIn(config.priority, 1, 255)) problems.push("priority-out-of-range");
  const interval = config.advertisementInterval;
  const isIntervalValid = config.version === 3 ? isIntegerIn(interval, 1, 4095) : isIntegerIn(interval, 100, 25500) && interval % 100 === 0;
  if (!isIntervalValid) problems.push("interval-out-of-range");
  if (config.addresses.length === 0) problems.push("no-addresses");
  if (config.addresses.length > 255) problems.push("too-many-addresses");
  if (config.addresses.some((vip) => parseAddress(vip.address, config.family) === undefined)) problems.push("address-wrong-family");
  if (config.addresses.some((vip) => !isIntegerIn(vip.prefixLength, 1, maxPrefix))) problems.push("prefix-out-of-range");
  if (parseAddress(config.primaryAddress, config.family) === undefined) problems.push("primary-address-wrong-family");
  if (config.peers.some((peer) => parseAddress(peer, config.family) === undefined)) problems.push("peer-wrong-family");
  if (isScopeMismatched(config)) problems.push("primary-address-scope-mismatch");
  if (config.version === 2 && config.family !== "ipv4") problems.push("v2-needs-ipv4");
  if (config.password !== undefined && config.version !== 2) problems.push("password-needs-v2");
  if (config.preemption.delay < 0) problems.push("preempt-delay-negative");
  if (!isIntegerIn(config.garp.repeat, 0, 255) || config.garp.refresh < 0) problems.push("garp-out-of-range");
  if (config.shutdownHold < 0) problems.push("shutdown-hold-negative");
  if (config.releaseLinger < 0) problems.push("release-linger-negative");
  if (config.healthWeight > 0) problems.push("health-weight-positive");
  const candidacy = config.candidacyInterval ?? 0;
  const isCandidacyValid =
    candidacy === 0 || (isIntegerIn(candidacy, 1000, 40950) && candidacy % (config.version === 2 ? 1000 : 10) === 0);
  if (!isCandidacyValid) problems.push("candidacy-interval-out-of-range");
  return problems;
}

/** keepalived semantics: a negative weight lowers the priority while unhealthy, never below 1 nor up to 255. */
export function computeEffectivePriority(config: RouterConfig, isHealthy: boolean): number {
  if (isHealthy || config.healthWeight === 0) return config.priority;
  return Math.min(254, Math.max(1, config.priority + config.healthWeight));
}

/** RFC 5798 §5.1.1.2 / §5.1.2.2: where adverts go. Unicast peers when configured, else the VRRP group. */
export function advertDestinations(config: RouterConfig): readonly string[] {
  if (config.peers.length > 0) return config.peers;
  return [config.family === "ipv4" ? VRRP_MULTICAST_IPV4 : VRRP_MULTICAST_IPV6];
}

/** The encoding context of an advert from this router to one destination (the v3 checksum depends on it). */
export function encodeContextFor(config: RouterConfig, destination: string): EncodeContext {
  return { family: config.family, source: config.primaryAddress, destination, v3Ipv4Checksum: config.v3Ipv4Checksum };
}

/** RFC 5798 §7.2: the advert this router sends with `priority` (the effective one, or 0 on release). */
export function buildAdvert(config: RouterConfig, priority: number): Advertisement {
  const addresses = config.addresses.map((vip) => vip.address);
  if (config.version === 2) {
    return {
      version: 2,
      vrid: config.vrid,
      priority,
      adverInterval: centisecondsToSeconds(config.advertisementInterval),
      authentication: config.password === undefined ? { type: "none" } : { type: "simple-password", data: passwordToAuthData(config.password) },
      addresses,
    };
  }
  return { version: 3, vrid: config.vrid, priority, maxAdverInterval: config.advertisementInterval, addresses };
}
