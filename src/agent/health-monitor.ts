import type { Milliseconds } from "../vrrp/units.js";
import { initialHealth, stepHealth, type HealthState, type HealthThresholds } from "./health.js";
import type { HttpProbe, ProbeResult } from "./ports.js";

export interface HealthSchedule extends HealthThresholds {
  readonly period: Milliseconds;
}

function describeResult(result: ProbeResult | undefined): string {
  if (result === undefined) return "no probe yet";
  return result.ok ? `HTTP ${result.status}` : `${result.reason}: ${result.detail}`;
}

/**
 * Runs the local nginx probe every `period` (never two at once) and reports verdict changes only. Its own timer is
 * separate from the router's: a slow probe must never delay an advert.
 */
export class HealthMonitor {
  #state: HealthState = initialHealth;
  #timer: NodeJS.Timeout | undefined;
  #isRunning = false;

  constructor(
    private readonly probe: HttpProbe,
    private readonly schedule: HealthSchedule,
    private readonly onChange: (isHealthy: boolean, detail: string) => void,
  ) {}

  get isHealthy(): boolean {
    return this.#state.isHealthy;
  }

  start(): void {
    if (this.#isRunning) return;
    this.#isRunning = true;
    void this.#tick();
  }

  stop(): void {
    this.#isRunning = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #tick(): Promise<void> {
    const startedAt = performance.now();
    const result = await this.probe.probe();
    if (!this.#isRunning) return;
    const before = this.#state.isHealthy;
    this.#state = stepHealth(this.#state, result, this.schedule);
    if (this.#state.isHealthy !== before) this.onChange(this.#state.isHealthy, describeResult(result));
    const wait = Math.max(0, this.schedule.period - (performance.now() - startedAt));
    this.#timer = setTimeout(() => void this.#tick(), wait);
  }
}
