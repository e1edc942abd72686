import { describe, expect, it } from "vitest";
import { initialHealth, stepHealth, type HealthState, type HealthThresholds } from "../../src/agent/health.js";
import type { ProbeResult } from "../../src/agent/ports.js";

const ok: ProbeResult = { ok: true, status: 200 };
const refused: ProbeResult = { ok: false, reason: "refused", detail: "connect ECONNREFUSED 127.0.0.1:80" };
const timedOut: ProbeResult = { ok: false, reason: "timeout", detail: "no answer in 100 ms" };

function run(thresholds: HealthThresholds, results: readonly ProbeResult[], from: HealthState = initialHealth): boolean[] {
  const verdicts: boolean[] = [];
  let state = from;
  for (const result of results) {
    state = stepHealth(state, result, thresholds);
    verdicts.push(state.isHealthy);
  }
  return verdicts;
}

describe("stepHealth", () => {
  it("starts unhealthy, like a readiness probe that has not passed yet", () => {
    expect(initialHealth.isHealthy).toBe(false);
  });

  it("becomes healthy on the first success with successThreshold 1", () => {
    expect(run({ failureThreshold: 2, successThreshold: 1 }, [ok])).toEqual([true]);
  });

  it("needs successThreshold consecutive successes, and a failure restarts the count", () => {
    const thresholds = { failureThreshold: 1, successThreshold: 3 };
    expect(run(thresholds, [ok, ok, refused, ok, ok, ok])).toEqual([false, false, false, false, false, true]);
  });

  it("stays healthy through failureThreshold - 1 failures and turns unhealthy on the next", () => {
    const thresholds = { failureThreshold: 3, successThreshold: 1 };
    expect(run(thresholds, [ok, timedOut, timedOut, timedOut])).toEqual([true, true, true, false]);
  });

  it("a success between failures resets the failure count", () => {
    const thresholds = { failureThreshold: 2, successThreshold: 1 };
    expect(run(thresholds, [ok, timedOut, ok, timedOut, ok, timedOut, timedOut])).toEqual([
      true, true, true, true, true, true, false,
    ]);
  });

  it("a refused connection (nothing listens: nginx is gone) is unhealthy at once, whatever failureThreshold says", () => {
    const thresholds = { failureThreshold: 3, successThreshold: 1 };
    expect(run(thresholds, [ok, refused, ok])).toEqual([true, false, true]);
  });

  it("recovers after successThreshold successes once unhealthy", () => {
    const thresholds = { failureThreshold: 1, successThreshold: 2 };
    expect(run(thresholds, [ok, ok, refused, ok, ok])).toEqual([false, true, false, false, true]);
  });

  it("keeps the counters and the latest result for status and logs", () => {
    const thresholds = { failureThreshold: 5, successThreshold: 1 };
    const afterOk = stepHealth(initialHealth, ok, thresholds);
    const afterFailure = stepHealth(stepHealth(afterOk, timedOut, thresholds), timedOut, thresholds);
    expect(afterFailure).toEqual({ isHealthy: true, consecutiveFailures: 2, consecutiveSuccesses: 0, lastResult: timedOut });
  });

  it("does not mutate the state it is given", () => {
    const frozen = Object.freeze({ ...initialHealth });
    stepHealth(frozen, ok, { failureThreshold: 1, successThreshold: 1 });
    expect(frozen).toEqual(initialHealth);
  });
});
