// The agent's loop around the pure core: every input becomes one `step`, every action is carried out through a port,
// and the router's one deadline is armed at `nextDeadline(state)`. No protocol decision is made here.

import type { Logger } from "pino";
import { advertDestinations, encodeContextFor, type RouterConfig, type VirtualAddress } from "../vrrp/config.js";
import type { Advertisement } from "../vrrp/advertisement.js";
import { encodeAdvertisement, encodeHandover, isSameAdvertisement } from "../vrrp/codec.js";
import {
  assertNever,
  effectivePriority,
  heldAddresses,
  initialState,
  nextDeadline,
  step,
  type RouterAction,
  type RouterEvent,
  type RouterState,
  type StateKind,
  type TransitionReason,
} from "../vrrp/machine.js";
import { receiveDatagram, receiveHandoverDatagram, type Reception } from "../vrrp/receive.js";
import { milliseconds, type Milliseconds, type Seconds } from "../vrrp/units.js";
import type { RouterMetrics } from "./metrics.js";
import type { AddressWatcher, AdvertTransport, Clock, InterfaceAddress, LinkMonitor, NeighborAnnouncer, ReceivedDatagram, VipManager } from "./ports.js";

export interface AgentPorts {
  readonly transport: AdvertTransport;
  /** Extension, not in RFC 5798: the hand-over messages' own socket (HANDOVER_PROTOCOL). */
  readonly handoverTransport: AdvertTransport;
  readonly vips: VipManager;
  readonly announcer: NeighborAnnouncer;
  readonly link: LinkMonitor;
  readonly addresses: AddressWatcher;
  readonly clock: Clock;
}

export interface Transition {
  readonly from: StateKind;
  readonly to: StateKind;
  readonly reason: TransitionReason;
  readonly priority: number;
  /** Wall-clock time, for status and events only. */
  readonly at: Date;
}

export interface AgentSnapshot {
  readonly state: StateKind;
  readonly priority: number;
  readonly effectivePriority: number;
  readonly isHealthy: boolean;
  readonly isLinkUp: boolean;
  readonly holdsVip: boolean;
  /** The source address of the last accepted advert from another router, if any. */
  readonly masterAddress: string | undefined;
  readonly lastTransition: Transition | undefined;
  readonly counters: Readonly<Record<string, number>>;
}

export interface RuntimeOptions {
  readonly config: RouterConfig;
  readonly ifname: string;
  readonly logger: Logger;
  readonly metrics: RouterMetrics;
  /** Spacing of repeated gratuitous ARPs / NAs after becoming Master. */
  readonly announceSpacing?: Milliseconds;
}

function toInterfaceAddress(vip: VirtualAddress, config: RouterConfig): InterfaceAddress {
  return { family: config.family, address: vip.address, prefixLength: vip.prefixLength };
}

/** Drop logs are per reason and peer, at most one line per window, so a flood cannot flood the log. */
const DROP_LOG_WINDOW_MS = 10_000;

/** Normal on a shared segment or inside the loop: counted, never logged. */
const QUIET_DROPS: ReadonlySet<string> = new Set(["other-vrid", "other-family", "own-advert", "timer-not-due", "not-running", "lower-priority", "not-nominated"]);

export class AgentRuntime {
  #state: RouterState;
  #isStarted = false;
  #masterAddress: string | undefined;
  #lastTransition: Transition | undefined;
  #shutdownDone: (() => void) | undefined;
  readonly #counters = new Map<string, number>();
  readonly #dropLoggedAt = new Map<string, number>();
  readonly #transitionListeners: ((transition: Transition, snapshot: AgentSnapshot) => void)[] = [];
  readonly #pendingIo = new Set<Promise<unknown>>();
  /**
   * The tail of the address changes, which run one after another: a lease renewal is an add to the kernel, so one
   * overtaking a later removal would bring the address back. An announcement waits for it too: a neighbour that
   * answers it must find the address on the interface.
   */
  #addressWork: Promise<unknown> = Promise.resolve();
  /** A renewal that keeps failing is logged once, not at every advert. */
  #isRenewalFailing = false;
  /** A Master sends the same advert every interval: its bytes per destination, until the advert or the config changes. */
  #encodedAdvert: { readonly advert: Advertisement; readonly config: RouterConfig; readonly bytes: Map<string, Uint8Array> } | undefined;

  constructor(
    private readonly ports: AgentPorts,
    private readonly options: RuntimeOptions,
  ) {
    this.#state = initialState(options.config);
  }

  get config(): RouterConfig {
    return this.#state.config;
  }

  onTransition(listener: (transition: Transition, snapshot: AgentSnapshot) => void): void {
    this.#transitionListeners.push(listener);
  }

  /**
   * Removes stale VIPs of a crashed run, then opens the socket and starts the router (RFC 5798 §6.4.1), healthy or
   * not as setHealthy last said: a verdict that arrives while start awaits the kernel is the one it starts with.
   */
  async start(): Promise<void> {
    const { config, ifname, logger } = this.options;
    const present = await this.ports.vips.list(ifname);
    if (!present.ok) throw new Error(`cannot list addresses on ${ifname}: ${present.code}: ${present.detail}`);
    const wanted = new Set(config.addresses.map((vip) => vip.address));
    for (const stale of present.value.filter((address) => wanted.has(address.address))) {
      logger.warn({ address: stale.address, ifname }, "removing a virtual address left by an earlier run before joining as Backup");
      const removed = await this.ports.vips.remove(stale, ifname);
      if (!removed.ok) throw new Error(`cannot remove stale ${stale.address} from ${ifname}: ${removed.code}: ${removed.detail}`);
    }
    try {
      await this.#startPorts();
    } catch (error) {
      // A socket or watcher opened before the failure would hold its VRID or netlink subscription for good.
      this.#stopPorts();
      throw error;
    }
    this.#state = initialState(config, { isHealthy: this.#state.isHealthy, isLinkUp: this.ports.link.isUp() });
    this.#isStarted = true;
    this.#feed({ kind: "started", now: this.ports.clock.now() });
  }

  async #startPorts(): Promise<void> {
    const { ifname } = this.options;
    const watching = await this.ports.addresses.start((removed) => {
      if (this.#isStarted) this.#feed({ kind: "vip-lost", now: this.ports.clock.now(), address: removed.address });
    });
    if (!watching.ok) throw new Error(`cannot watch the addresses of ${ifname}: ${watching.code}: ${watching.detail}`);
    const linkStarted = await this.ports.link.start((isUp) => this.#feed({ kind: isUp ? "interface-up" : "interface-down", now: this.ports.clock.now() }));
    if (!linkStarted.ok) throw new Error(`cannot watch link ${ifname}: ${linkStarted.code}: ${linkStarted.detail}`);
    const transportStarted = await this.ports.transport.start((datagram) => this.#receive(datagram));
    if (!transportStarted.ok) throw new Error(`cannot open the VRRP socket on ${ifname}: ${transportStarted.code}: ${transportStarted.detail}`);
    const handoverStarted = await this.ports.handoverTransport.start((datagram) => this.#receiveHandover(datagram));
    if (!handoverStarted.ok) throw new Error(`cannot open the hand-over socket (IP protocol 253) on ${ifname}: ${handoverStarted.code}: ${handoverStarted.detail}`);
  }

  #stopPorts(): void {
    this.ports.clock.cancel();
    this.ports.transport.stop();
    this.ports.handoverTransport.stop();
    this.ports.link.stop();
    this.ports.addresses.stop();
  }

  setHealthy(isHealthy: boolean): void {
    if (isHealthy === this.#state.isHealthy) return;
    if (this.#isStarted) this.#feed({ kind: "health-changed", now: this.ports.clock.now(), isHealthy });
    else this.#state = { ...this.#state, isHealthy };
  }

  applyConfig(config: RouterConfig): void {
    this.#feed({ kind: "config-changed", now: this.ports.clock.now(), config });
  }

  /**
   * RFC 5798 §6.4.3 Shutdown, with the hand-over extension: a Master sends priority 0 and keeps the VIPs until the
   * new Master speaks or the hold bound passes. Resolves when the core says the router is done.
   */
  async shutdown(): Promise<void> {
    if (!this.#isStarted) return;
    const done = new Promise<void>((resolve) => {
      this.#shutdownDone = resolve;
    });
    this.#feed({ kind: "shutdown-requested", now: this.ports.clock.now() });
    await done;
    await Promise.allSettled([...this.#pendingIo]);
    this.#isStarted = false;
    this.#stopPorts();
  }

  snapshot(): AgentSnapshot {
    return {
      state: this.#state.kind,
      priority: this.#state.config.priority,
      effectivePriority: effectivePriority(this.#state),
      isHealthy: this.#state.isHealthy,
      isLinkUp: this.#state.isLinkUp,
      holdsVip: heldAddresses(this.#state).length > 0,
      masterAddress: this.#state.kind === "Master" ? this.#state.config.primaryAddress : this.#masterAddress,
      lastTransition: this.#lastTransition,
      counters: Object.fromEntries(this.#counters),
    };
  }

  #count(name: string): void {
    this.#counters.set(name, (this.#counters.get(name) ?? 0) + 1);
  }

  #drop(reason: string, source: string, detail: string): void {
    this.#count(`dropped:${reason}`);
    this.options.metrics.packetDropped(reason);
    if (QUIET_DROPS.has(reason)) return;
    const key = `${reason}/${source}`;
    const now = this.ports.clock.now();
    const last = this.#dropLoggedAt.get(key);
    if (last !== undefined && now - last < DROP_LOG_WINDOW_MS) return;
    this.#dropLoggedAt.set(key, now);
    this.options.logger.warn({ reason, source, detail }, "dropped a VRRP packet (logged once per 10 s per reason and peer)");
  }

  #receive(datagram: ReceivedDatagram): void {
    if (!this.#isStarted) return;
    this.#accept(receiveDatagram(datagram, this.#state.config), datagram.source);
  }

  /** Extension, not in RFC 5798: a datagram from the hand-over socket. */
  #receiveHandover(datagram: ReceivedDatagram): void {
    if (!this.#isStarted) return;
    this.#accept(receiveHandoverDatagram(datagram, this.#state.config), datagram.source);
  }

  #accept(received: Reception, source: string): void {
    if (received.kind === "discard") return this.#drop(received.reason, source, received.detail);
    const now = this.ports.clock.now();
    if (received.kind === "advert") this.#feed({ kind: "advert-received", now, advert: received.advert, source: received.source });
    else this.#feed({ kind: "handover-received", now, message: received.message, source: received.source });
  }

  #feed(event: RouterEvent): void {
    const before = this.#state;
    const { state, actions } = step(before, event);
    this.#state = state;
    if (event.kind === "vip-lost" && actions.length > 0) {
      this.#count("vip-restored");
      this.options.metrics.vipRestored();
      this.options.logger.warn({ address: event.address, ifname: this.options.ifname }, "a virtual address this Master holds left the interface (its lease lapsed in a stall, or it was removed); restoring and announcing it");
    }
    if (event.kind === "advert-received" && !actions.some((action) => action.kind === "discard")) {
      this.#count("adverts-received");
      this.options.metrics.advertReceived();
      if (event.advert.priority > 0) this.#masterAddress = event.source;
    }
    if (event.kind === "handover-received" && !actions.some((action) => action.kind === "discard")) this.#count(`${event.message.kind}-received`);
    for (const action of actions) this.#run(action, event.kind === "advert-received" ? event.source : undefined);
    if (actions.some((action) => action.kind === "add-vip" || action.kind === "remove-vip")) this.options.metrics.vipHeld(heldAddresses(state).length > 0);
    this.options.metrics.effectivePriority(effectivePriority(state));
    this.#arm();
  }

  #arm(): void {
    const deadline = nextDeadline(this.#state);
    if (deadline === undefined) return this.ports.clock.cancel();
    this.ports.clock.schedule(deadline, () => this.#fire(deadline));
  }

  #fire(deadline: Milliseconds): void {
    if (!this.#isStarted) return;
    const now = this.ports.clock.now();
    this.options.metrics.timerLateness(Math.max(0, now - deadline) / 1000);
    const due = nextDeadline(this.#state);
    if (due === undefined || due > now) return this.#arm();
    this.#feed({ kind: "timer-expired", now });
  }

  #track(work: Promise<unknown>): void {
    this.#pendingIo.add(work);
    void work.finally(() => this.#pendingIo.delete(work));
  }

  /** Sends a message to each destination (the group, every unicast peer, or one peer) and counts how each send went. */
  #sendToEach(transport: AdvertTransport, destinations: readonly string[], encode: (destination: string) => Uint8Array, what: string, onSent: () => void): void {
    for (const destination of destinations) {
      this.#track(
        transport.send(encode(destination), destination).then((sent) => {
          if (sent.ok) return onSent();
          this.#count(`send-failed:${sent.code}`);
          this.options.logger.warn({ destination, code: sent.code, detail: sent.detail }, `could not send ${what}`);
        }),
      );
    }
  }

  #encodeAdvert(advert: Advertisement, config: RouterConfig, destination: string): Uint8Array {
    let cached = this.#encodedAdvert;
    if (cached === undefined || cached.config !== config || !isSameAdvertisement(cached.advert, advert)) {
      cached = { advert, config, bytes: new Map() };
      this.#encodedAdvert = cached;
    }
    const known = cached.bytes.get(destination);
    if (known !== undefined) return known;
    const bytes = encodeAdvertisement(advert, encodeContextFor(config, destination));
    cached.bytes.set(destination, bytes);
    return bytes;
  }

  #run(action: RouterAction, source: string | undefined): void {
    const { ifname, logger, metrics } = this.options;
    const config = this.#state.config;
    switch (action.kind) {
      case "send-advert":
        this.#sendToEach(this.ports.transport, advertDestinations(config), (destination) => this.#encodeAdvert(action.advert, config, destination), "a VRRP advertisement", () => {
          this.#count("adverts-sent");
          metrics.advertSent();
        });
        return;
      case "send-handover":
        this.#sendToEach(
          this.ports.handoverTransport,
          action.to === undefined ? advertDestinations(config) : [action.to],
          (destination) => encodeHandover(action.message, encodeContextFor(config, destination)),
          `a ${action.message.kind} (hand-over extension)`,
          () => this.#count(`${action.message.kind}-sent`),
        );
        return;
      case "add-vip":
        this.#changeAddresses(() =>
          Promise.all(
            action.addresses.map((vip) =>
              this.ports.vips.add(toInterfaceAddress(vip, config), ifname, action.lease).then((added) => {
                if (!added.ok) logger.error({ address: vip.address, ifname, code: added.code, detail: added.detail }, "could not add the virtual address");
              }),
            ),
          ),
        );
        return;
      case "renew-vip-lease":
        this.#renewLease(action.addresses, action.lease);
        return;
      case "remove-vip":
        this.#changeAddresses(() =>
          Promise.all(
            action.addresses.map((vip) =>
              this.ports.vips.remove(toInterfaceAddress(vip, config), ifname).then((removed) => {
                if (!removed.ok) logger.error({ address: vip.address, ifname, code: removed.code, detail: removed.detail }, "could not remove the virtual address");
              }),
            ),
          ),
        );
        return;
      case "announce-vip":
        this.#track(this.#announce(action.addresses, action.repeat));
        return;
      case "report-transition": {
        const transition: Transition = { from: action.from, to: action.to, reason: action.reason, priority: action.priority, at: new Date() };
        this.#lastTransition = transition;
        this.#count("transitions");
        metrics.transition(action.from, action.to, action.reason);
        metrics.state(action.to);
        logger.info({ from: action.from, to: action.to, reason: action.reason, priority: action.priority, vrid: config.vrid }, `VRRP ${action.from} -> ${action.to}: ${action.reason}`);
        const snapshot = this.snapshot();
        for (const listener of this.#transitionListeners) listener(transition, snapshot);
        return;
      }
      case "discard":
        this.#drop(action.reason, source ?? "local", action.ref === undefined ? "" : `RFC ${action.ref}`);
        return;
      case "shutdown-complete":
        this.#shutdownDone?.();
        return;
      default:
        assertNever(action);
    }
  }

  #changeAddresses(change: () => Promise<unknown>): void {
    this.#addressWork = this.#addressWork.then(change).catch((error: unknown) => {
      this.options.logger.error({ err: error, ifname: this.options.ifname }, "an address change failed");
    });
    this.#track(this.#addressWork);
  }

  #renewLease(held: readonly VirtualAddress[], lease: Seconds): void {
    const { ifname, logger } = this.options;
    const config = this.#state.config;
    this.#changeAddresses(async () => {
      const results = await Promise.all(held.map((vip) => this.ports.vips.add(toInterfaceAddress(vip, config), ifname, lease)));
      const failed = results.find((result) => !result.ok);
      if (failed !== undefined && !failed.ok) {
        this.#count(`lease-renewal-failed:${failed.code}`);
        if (!this.#isRenewalFailing) logger.error({ ifname, lease, code: failed.code, detail: failed.detail }, "could not renew the lease on the virtual addresses; the kernel deletes them when it runs out");
      } else if (this.#isRenewalFailing) logger.info({ ifname, lease }, "renewed the lease on the virtual addresses again");
      this.#isRenewalFailing = failed !== undefined;
    });
  }

  // Rounds leave `spacing` apart, as keepalived's garp_interval, whether or not the previous one has answered.
  async #announce(addresses: readonly VirtualAddress[], repeat: number): Promise<void> {
    const spacing = this.options.announceSpacing ?? milliseconds(100);
    await this.#addressWork;
    const rounds: Promise<void>[] = [];
    for (let round = 0; round < repeat; round++) {
      if (round > 0) await this.ports.clock.wait(spacing);
      if (heldAddresses(this.#state).length === 0) break;
      rounds.push(
        Promise.all(addresses.map((vip) => this.ports.announcer.announce(vip.address, this.options.ifname))).then((results) => {
          for (const result of results) {
            if (!result.ok) this.options.logger.warn({ code: result.code, detail: result.detail }, "could not announce the virtual address");
          }
        }),
      );
    }
    await Promise.all(rounds);
  }
}
