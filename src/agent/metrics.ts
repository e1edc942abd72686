import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

// One registry per agent so tests can run several agents in one process without sharing counters.
export interface AgentMetrics {
  readonly registry: Registry;
  readonly state: Gauge<"state">;
  readonly transitions: Counter<"from" | "to" | "reason">;
  readonly advertsSent: Counter;
  readonly advertsReceived: Counter;
  readonly packetsDropped: Counter<"reason">;
  readonly effectivePriority: Gauge;
  readonly vipHeld: Gauge;
  readonly healthy: Gauge;
  readonly timerLatenessSeconds: Histogram;
}

export const vrrpStates = ["Initialize", "Backup", "Master", "Fault"] as const;

export function createAgentMetrics(labels: { vrid: number; node: string }): AgentMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ vrid: String(labels.vrid), node: labels.node });
  collectDefaultMetrics({ register: registry, prefix: "ha_nginx_agent_" });
  return {
    registry,
    state: new Gauge({
      name: "ha_nginx_vrrp_state",
      help: "1 for the state the VRRP router is in, 0 for the others",
      labelNames: ["state"],
      registers: [registry],
    }),
    transitions: new Counter({
      name: "ha_nginx_vrrp_transitions_total",
      help: "VRRP state transitions, by reason",
      labelNames: ["from", "to", "reason"],
      registers: [registry],
    }),
    advertsSent: new Counter({ name: "ha_nginx_vrrp_adverts_sent_total", help: "Advertisements sent", registers: [registry] }),
    advertsReceived: new Counter({
      name: "ha_nginx_vrrp_adverts_received_total",
      help: "Advertisements accepted for this virtual router",
      registers: [registry],
    }),
    packetsDropped: new Counter({
      name: "ha_nginx_vrrp_packets_dropped_total",
      help: "Received packets dropped, by reason (malformed codes and not-for-us reasons)",
      labelNames: ["reason"],
      registers: [registry],
    }),
    effectivePriority: new Gauge({
      name: "ha_nginx_vrrp_effective_priority",
      help: "Priority advertised now, after health weight",
      registers: [registry],
    }),
    vipHeld: new Gauge({ name: "ha_nginx_vip_held", help: "1 while this node holds the virtual addresses", registers: [registry] }),
    healthy: new Gauge({ name: "ha_nginx_health_ok", help: "1 while the node's nginx health check passes", registers: [registry] }),
    timerLatenessSeconds: new Histogram({
      name: "ha_nginx_timer_lateness_seconds",
      help: "How late the agent's single timer fired after its deadline (event-loop starvation)",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
  };
}

export function recordState(metrics: AgentMetrics, current: (typeof vrrpStates)[number]): void {
  for (const state of vrrpStates) metrics.state.set({ state }, state === current ? 1 : 0);
}
