// The agent's ports: what the runtime needs from the outside world, named by role. Adapters in ./adapters implement
// them; fakes in test/fakes implement them for unit tests. No adapter type appears here.
//
// Common contract: constructors do no I/O; `start` opens, `stop` closes and is idempotent; failures come back as
// typed results (`ok: false` with a kebab-case `code`), never as a throw for an expected condition.

import type { AddressFamily } from "../vrrp/advertisement.js";
import type { ReceivedDatagram } from "../vrrp/receive.js";
import type { Milliseconds, Seconds } from "../vrrp/units.js";

/** Whether a call did its job; on failure, a kebab-case code to act on and a detail for the log. */
export type Outcome<Code extends string> =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: Code; readonly detail: string };

/** An Outcome that carries the call's value when it succeeds. */
export type OutcomeWithValue<T, Code extends string> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: Code; readonly detail: string };

/** An address with its prefix, as it sits on an interface. */
export interface InterfaceAddress {
  readonly family: AddressFamily;
  readonly address: string;
  readonly prefixLength: number;
}

export type SetupFailure = "permission-denied" | "no-such-interface" | "vrid-in-use" | "failed";

// ---- VRRP advertisements (RFC 5798 §5.1) ----

export type { AddressFamily, ReceivedDatagram };

export type SendFailure = "not-started" | "unreachable" | "failed";

export interface AdvertTransport {
  /** Opens the socket, joins the group (multicast) and begins delivering this router's VRRP datagrams: its VRID's,
   * on its interface. */
  start(onDatagram: (datagram: ReceivedDatagram) => void): Promise<Outcome<SetupFailure>>;
  /** Sends one VRRP message (without IP header) to a peer or to the group; TTL / hop limit 255 (RFC 5798 §5.1.1.3). */
  send(message: Uint8Array, destination: string): Promise<Outcome<SendFailure>>;
  stop(): void;
}

// ---- Virtual addresses ----

export interface VipManager {
  /**
   * Adds the address, or renews it if it is already there, with a lease: the kernel deletes it by itself once
   * `lease` has passed without another `add` (valid_lft = preferred_lft = lease), so the address of an agent that
   * died goes without the agent.
   */
  add(vip: InterfaceAddress, ifname: string, lease: Seconds): Promise<Outcome<SetupFailure>>;
  /** Removing an address that is not there succeeds. */
  remove(vip: InterfaceAddress, ifname: string): Promise<Outcome<SetupFailure>>;
  list(ifname: string): Promise<OutcomeWithValue<readonly InterfaceAddress[], SetupFailure>>;
  stop(): void;
}

export interface AddressWatcher {
  /** Reports addresses that disappear from the interface, whoever removed them (this agent included). */
  start(onRemoved: (address: InterfaceAddress) => void): Promise<Outcome<SetupFailure>>;
  stop(): void;
}

// ---- Gratuitous ARP (RFC 5798 §6.4.2) / unsolicited Neighbor Advertisement (RFC 4861 §7.2.6) ----

export interface NeighborAnnouncer {
  /** One announcement; how many and how often is the runtime's decision. */
  announce(address: string, ifname: string): Promise<Outcome<SetupFailure>>;
}

// ---- Interface state ----

export interface LinkMonitor {
  start(onChange: (isUp: boolean) => void): Promise<Outcome<SetupFailure>>;
  /** The last known state; false before `start` has resolved. */
  isUp(): boolean;
  stop(): void;
}

// ---- Local health probe ----

export type ProbeFailure = "timeout" | "refused" | "bad-status" | "failed";

export type ProbeResult =
  | { readonly ok: true; readonly status: number }
  | { readonly ok: false; readonly reason: ProbeFailure; readonly detail: string };

export interface HttpProbe {
  probe(): Promise<ProbeResult>;
}

// ---- Time ----

export interface Clock {
  /** Monotonic milliseconds; unrelated to wall-clock time and never goes back. */
  now(): Milliseconds;
  /**
   * Calls `onDeadline` once `now() >= at`, after the I/O already waiting has been delivered. Replaces any earlier
   * schedule: each clock has one deadline.
   */
  schedule(at: Milliseconds, onDeadline: () => void): void;
  cancel(): void;
  /** Resolves after `duration`: spacing for work outside the protocol's one timer, such as repeated announcements. */
  wait(duration: Milliseconds): Promise<void>;
}
