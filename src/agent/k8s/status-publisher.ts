// Writes this node's status entry without ever holding up the router: the latest entry wins, writes are spaced (a
// flapping router cannot flood the API server), one is in flight, and a failure backs off. A write unanswered within
// `writeTimeout` is aborted: with etcd down the API server holds it past etcd's return, holding the truth back. The
// Clock port is the one timer, so tests drive it with a fake clock.

import type { NodeStatusEntry } from "../../api/v1alpha1/index.js";
import { milliseconds, type Milliseconds } from "../../vrrp/units.js";
import type { Clock } from "../ports.js";
import { isSameEntry } from "./status-entry.js";

export type WriteOutcome = { readonly ok: true } | { readonly ok: false; readonly detail: string };

export interface PublisherTiming {
  readonly minInterval: Milliseconds;
  readonly initialBackoff: Milliseconds;
  readonly maxBackoff: Milliseconds;
  readonly writeTimeout: Milliseconds;
  /** Shortest time between writing an entry again because the API server holds another one (see observed()). */
  readonly resyncInterval: Milliseconds;
  /** That time doubles with each rewrite the other writer undoes, up to this bound. */
  readonly maxResyncInterval: Milliseconds;
}

// Status must catch up within 5 s of the control plane's recovery, and the worst case is a write aborted at its
// deadline, one backoff, then the write: writeTimeout + maxBackoff stays under 5 s. An idempotent apply that takes
// 2 s is already a broken API server, so retrying it costs nothing.
export const defaultPublisherTiming: PublisherTiming = {
  minInterval: milliseconds(250),
  initialBackoff: milliseconds(500),
  maxBackoff: milliseconds(2_000),
  writeTimeout: milliseconds(2_000),
  resyncInterval: milliseconds(5_000),
  maxResyncInterval: milliseconds(60_000),
};

export class StatusPublisher {
  #desired: NodeStatusEntry | undefined;
  #written: NodeStatusEntry | undefined;
  #isStopped = false;
  #notBefore = 0;
  #writtenAt = Number.NEGATIVE_INFINITY;
  #resyncInterval: number;
  #backoff: number;
  #failures = 0;
  #isUrgent = false;
  #waiters: (() => void)[] = [];
  #inFlight: AbortController | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly write: (entry: NodeStatusEntry, signal: AbortSignal) => Promise<WriteOutcome>,
    private readonly timing: PublisherTiming = defaultPublisherTiming,
    private readonly onFailure: (detail: string, failures: number, retryIn: Milliseconds) => void = () => undefined,
  ) {
    this.#backoff = timing.initialBackoff;
    this.#resyncInterval = timing.resyncInterval;
  }

  /** Consecutive failed writes; 0 once a write succeeds. */
  get failures(): number {
    return this.#failures;
  }

  get isCurrent(): boolean {
    return this.#desired === undefined || isSameEntry(this.#written, this.#desired);
  }

  update(entry: NodeStatusEntry): void {
    this.#desired = entry;
    this.#kick();
  }

  /**
   * The entry the API server now holds for this node. A hand edit or an etcd restore can change it behind this agent's
   * back, and an agent with nothing new to say would leave it wrong; so a differing entry is written again after
   * resyncInterval, doubling up to maxResyncInterval, so that a disagreement cannot become steady write traffic.
   */
  observed(entry: NodeStatusEntry | undefined): void {
    const written = this.#written;
    if (written === undefined || this.#inFlight !== undefined) return;
    if (isSameEntry(entry, written)) {
      this.#resyncInterval = this.timing.resyncInterval;
      return;
    }
    this.#written = undefined;
    this.#notBefore = Math.max(this.#notBefore, this.#writtenAt + this.#resyncInterval);
    this.#resyncInterval = Math.min(this.timing.maxResyncInterval, this.#resyncInterval * 2);
    this.#kick();
  }

  /** Writes the latest entry now, skipping the spacing and any backoff; resolves once it is written or stopped. */
  flush(): Promise<void> {
    this.#isUrgent = true;
    // While a write is in flight the one timer is its deadline, which must stay.
    if (this.#inFlight === undefined) this.clock.cancel();
    const done = this.isCurrent || this.#isStopped ? Promise.resolve() : new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#kick();
    return done;
  }

  stop(): void {
    this.#isStopped = true;
    this.#isUrgent = false;
    this.clock.cancel();
    this.#inFlight?.abort();
    this.#inFlight = undefined;
    this.#release();
  }

  #release(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }

  #kick(): void {
    if (this.#isStopped || this.#inFlight !== undefined || this.isCurrent) return;
    const now = this.clock.now();
    if (!this.#isUrgent && now < this.#notBefore) {
      this.clock.schedule(milliseconds(this.#notBefore), () => this.#kick());
      return;
    }
    void this.#writeLatest();
  }

  async #writeLatest(): Promise<void> {
    const entry = this.#desired;
    if (entry === undefined) return;
    const controller = new AbortController();
    this.#inFlight = controller;
    const timeout = this.timing.writeTimeout;
    const timedOut = new Promise<WriteOutcome>((resolve) => {
      this.clock.schedule(milliseconds(this.clock.now() + timeout), () => resolve({ ok: false, detail: `no answer within ${timeout} ms; aborted` }));
    });
    const written = this.write(entry, controller.signal).catch((error: unknown): WriteOutcome => ({ ok: false, detail: error instanceof Error ? error.message : String(error) }));
    const outcome = await Promise.race([written, timedOut]);
    // Stopped meanwhile: stop() has aborted the request, and nothing may be written after it.
    if (this.#inFlight !== controller) return;
    this.#inFlight = undefined;
    this.clock.cancel();
    // Closes the request if the deadline won, so the API server drops it too; a no-op once the write answered.
    controller.abort();
    const now = this.clock.now();
    if (outcome.ok) {
      this.#written = entry;
      this.#writtenAt = now;
      this.#failures = 0;
      this.#backoff = this.timing.initialBackoff;
      this.#notBefore = now + this.timing.minInterval;
      if (this.isCurrent) {
        this.#isUrgent = false;
        this.#release();
      }
    } else {
      this.#failures += 1;
      this.#isUrgent = false;
      const retryIn = milliseconds(this.#backoff);
      this.#notBefore = now + retryIn;
      this.#backoff = Math.min(this.timing.maxBackoff, this.#backoff * 2);
      this.onFailure(outcome.detail, this.#failures, retryIn);
    }
    this.#kick();
  }
}
