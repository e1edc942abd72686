import type { ProbeResult } from "./ports.js";

// Counting probe results into a health verdict, with the Kubernetes probe semantics that spec.healthCheck.probe
// borrows: the verdict flips to unhealthy after `failureThreshold` consecutive failures (at once when the connection
// is refused) and back to healthy after `successThreshold` consecutive successes. Pure: the runtime owns the period and the probe.

export interface HealthThresholds {
  readonly failureThreshold: number;
  readonly successThreshold: number;
}

export interface HealthState {
  readonly isHealthy: boolean;
  readonly consecutiveFailures: number;
  readonly consecutiveSuccesses: number;
  /** The latest result, so a status or log can say why. */
  readonly lastResult: ProbeResult | undefined;
}

/**
 * A node starts unhealthy, as a Kubernetes readiness probe starts "not ready": it claims no VIP before nginx has
 * answered `successThreshold` times.
 */
export const initialHealth: HealthState = {
  isHealthy: false,
  consecutiveFailures: 0,
  consecutiveSuccesses: 0,
  lastResult: undefined,
};

export function stepHealth(state: HealthState, result: ProbeResult, thresholds: HealthThresholds): HealthState {
  if (result.ok) {
    const consecutiveSuccesses = state.consecutiveSuccesses + 1;
    return {
      isHealthy: state.isHealthy || consecutiveSuccesses >= thresholds.successThreshold,
      consecutiveFailures: 0,
      consecutiveSuccesses,
      lastResult: result,
    };
  }
  const consecutiveFailures = state.consecutiveFailures + 1;
  // A refused connection means nothing listens on nginx's port: nginx is gone (killed, crashed, stopped), not slow.
  // Counting to failureThreshold would only add probe periods to the outage; timeouts and bad statuses still count.
  const isGone = result.reason === "refused";
  return {
    isHealthy: state.isHealthy && !isGone && consecutiveFailures < thresholds.failureThreshold,
    consecutiveFailures,
    consecutiveSuccesses: 0,
    lastResult: result,
  };
}
