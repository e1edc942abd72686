import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { StateKind } from "../vrrp/machine.js";

/** What one virtual router reports; every series carries its `havip` and `vrid` labels. */
export interface RouterMetrics {
  state(current: StateKind): void;
  transition(from: StateKind, to: StateKind, reason: string): void;
  advertSent(): void;
  advertReceived(): void;
  packetDropped(reason: string): void;
  effectivePriority(value: number): void;
  vipHeld(isHeld: boolean): void;
  healthy(isHealthy: boolean): void;
  /** A held VIP that the kernel lost (lease lapsed) or someone removed, put back and announced. */
  vipRestored(): void;
  /** Event-loop lateness is the process's, so it carries no router labels. */
  timerLateness(seconds: number): void;
  /** Deletes this router's series once it no longer runs, so a deleted resource leaves no stale gauge behind. */
  remove(): void;
}

export const vrrpStates = ["Initialize", "Backup", "Master", "Fault"] as const satisfies readonly StateKind[];

type RouterLabels = { readonly havip: string; readonly vrid: string };

/**
 * A router's advert counts since the last scrape. prom-client hashes and checks the label set at every call, a cost
 * paid per advert by every router; a plain number is handed over when the registry is read instead.
 */
interface AdvertTally {
  readonly labels: RouterLabels;
  sent: number;
  received: number;
}

/** The agent process's metrics: one registry for all its routers. A registry per agent keeps tests apart. */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly #state: Gauge<"havip" | "vrid" | "state">;
  readonly #transitions: Counter<"havip" | "vrid" | "from" | "to" | "reason">;
  readonly #advertsSent: Counter<"havip" | "vrid">;
  readonly #advertsReceived: Counter<"havip" | "vrid">;
  readonly #packetsDropped: Counter<"havip" | "vrid" | "reason">;
  readonly #effectivePriority: Gauge<"havip" | "vrid">;
  readonly #vipHeld: Gauge<"havip" | "vrid">;
  readonly #healthy: Gauge<"havip" | "vrid">;
  readonly #vipRestored: Counter<"havip" | "vrid">;
  readonly #timerLateness: Histogram;
  readonly #tallies = new Set<AdvertTally>();

  constructor(node: string) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node });
    // prom-client samples the event loop's delay every 10 ms by default: 100 wake-ups a second, most of an idle agent's
    // CPU. Once a second still shows a stall; ha_nginx_timer_lateness_seconds measures the protocol's own timers.
    collectDefaultMetrics({ register: this.registry, prefix: "ha_nginx_agent_", eventLoopMonitoringPrecision: 1000 });
    const routerLabels = ["havip", "vrid"] as const;
    this.#state = new Gauge({ name: "ha_nginx_vrrp_state", help: "1 for the state the VRRP router is in, 0 for the others", labelNames: [...routerLabels, "state"], registers });
    this.#transitions = new Counter({ name: "ha_nginx_vrrp_transitions_total", help: "VRRP state transitions, by reason", labelNames: [...routerLabels, "from", "to", "reason"], registers });
    this.#advertsSent = this.#tallyCounter("ha_nginx_vrrp_adverts_sent_total", "Advertisements sent", "sent", registers);
    this.#advertsReceived = this.#tallyCounter("ha_nginx_vrrp_adverts_received_total", "Advertisements accepted for this virtual router", "received", registers);
    this.#packetsDropped = new Counter({
      name: "ha_nginx_vrrp_packets_dropped_total",
      help: "Received packets dropped, by reason; empty havip and vrid labels for a packet no router on this node serves",
      labelNames: [...routerLabels, "reason"],
      registers,
    });
    this.#effectivePriority = new Gauge({ name: "ha_nginx_vrrp_effective_priority", help: "Priority advertised now, after health weight", labelNames: routerLabels, registers });
    this.#vipHeld = new Gauge({ name: "ha_nginx_vip_held", help: "1 while this node holds the virtual addresses", labelNames: routerLabels, registers });
    this.#healthy = new Gauge({ name: "ha_nginx_health_ok", help: "1 while the node's nginx health check passes", labelNames: routerLabels, registers });
    this.#vipRestored = new Counter({
      name: "ha_nginx_vip_restored_total",
      help: "Held VIPs that left the interface behind the Master's back (lease lapsed in a stall, or removed by hand), put back and announced",
      labelNames: routerLabels,
      registers,
    });
    this.#timerLateness = new Histogram({
      name: "ha_nginx_timer_lateness_seconds",
      help: "How late a router's timer fired after its deadline (event-loop starvation)",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
  }

  /** A packet the agent's socket dropped before any router saw it: no router serves its VRID, or it has none. */
  unclaimedPacket(reason: string): void {
    this.#packetsDropped.inc({ havip: "", vrid: "", reason });
  }

  /** A counter of one field of the routers' tallies, which hands the counts over and clears them when it is read. */
  #tallyCounter(name: string, help: string, field: "sent" | "received", registers: Registry[]): Counter<"havip" | "vrid"> {
    const counter: Counter<"havip" | "vrid"> = new Counter({
      name,
      help,
      labelNames: ["havip", "vrid"],
      registers,
      collect: () => {
        for (const tally of this.#tallies) {
          if (tally[field] > 0) counter.inc(tally.labels, tally[field]);
          tally[field] = 0;
        }
      },
    });
    return counter;
  }

  router(havip: string, vrid: number): RouterMetrics {
    const labels: RouterLabels = { havip, vrid: String(vrid) };
    // prom-client removes a series only by its full label set: the label values that vary are remembered for remove().
    const transitions = new Map<string, Record<"havip" | "vrid" | "from" | "to" | "reason", string>>();
    const dropReasons = new Set<string>();
    const tally: AdvertTally = { labels, sent: 0, received: 0 };
    this.#tallies.add(tally);
    // Set after every event, and nearly always to the value it has: only a change is worth prom-client's label lookup.
    let priority: number | undefined;
    return {
      state: (current) => {
        for (const state of vrrpStates) this.#state.set({ ...labels, state }, state === current ? 1 : 0);
      },
      transition: (from, to, reason) => {
        const full = { ...labels, from, to, reason };
        transitions.set(`${from} ${to} ${reason}`, full);
        this.#transitions.inc(full);
      },
      advertSent: () => {
        tally.sent += 1;
      },
      advertReceived: () => {
        tally.received += 1;
      },
      packetDropped: (reason) => {
        dropReasons.add(reason);
        this.#packetsDropped.inc({ ...labels, reason });
      },
      effectivePriority: (value) => {
        if (value === priority) return;
        priority = value;
        this.#effectivePriority.set(labels, value);
      },
      vipHeld: (isHeld) => this.#vipHeld.set(labels, isHeld ? 1 : 0),
      healthy: (isHealthy) => this.#healthy.set(labels, isHealthy ? 1 : 0),
      vipRestored: () => this.#vipRestored.inc(labels),
      timerLateness: (seconds) => this.#timerLateness.observe(seconds),
      remove: () => {
        this.#tallies.delete(tally);
        priority = undefined;
        for (const metric of [this.#advertsSent, this.#advertsReceived, this.#effectivePriority, this.#vipHeld, this.#healthy, this.#vipRestored]) metric.remove(labels);
        for (const state of vrrpStates) this.#state.remove({ ...labels, state });
        for (const full of transitions.values()) this.#transitions.remove(full);
        for (const reason of dropReasons) this.#packetsDropped.remove({ ...labels, reason });
        transitions.clear();
        dropReasons.clear();
      },
    };
  }
}
