import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface ControllerMetrics {
  readonly registry: Registry;
  readonly reconciles: Counter<"result">;
  readonly reconcileErrors: Counter;
  readonly reconcileSeconds: Histogram;
  readonly queueDepth: Gauge;
  readonly watchErrors: Counter<"resource">;
  readonly isLeader: Gauge;
}

export function createControllerMetrics(): ControllerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "ha_nginx_controller_" });
  return {
    registry,
    reconciles: new Counter({ name: "ha_nginx_controller_reconciles_total", help: "Reconciles by result (success, error)", labelNames: ["result"], registers: [registry] }),
    reconcileErrors: new Counter({ name: "ha_nginx_controller_reconcile_errors_total", help: "Reconciles that failed and were retried with backoff", registers: [registry] }),
    reconcileSeconds: new Histogram({ name: "ha_nginx_controller_reconcile_duration_seconds", help: "Time per reconcile", buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
    queueDepth: new Gauge({ name: "ha_nginx_controller_queue_depth", help: "Resource keys waiting to be reconciled", registers: [registry] }),
    watchErrors: new Counter({ name: "ha_nginx_controller_watch_errors_total", help: "Watch failures, each followed by a restart", labelNames: ["resource"], registers: [registry] }),
    isLeader: new Gauge({ name: "ha_nginx_controller_leader", help: "1 while this replica holds the leader Lease", registers: [registry] }),
  };
}
