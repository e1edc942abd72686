// Writes this node's status entry without ever holding up the router: the latest entry wins, writes are spaced at
// least `minInterval` apart (a flapping router cannot flood the API server), one is in flight at a time, and a failed
// write is retried with doubling backoff. The Clock port is the one timer, so tests drive it with a fake clock.

import type { NodeStatusEntry } from "../../api/v1alpha1/index.js";
import { milliseconds, type Milliseconds } from "../../vrrp/units.js";
import type { Clock } from "../ports.js";
import { isSameEntry } from "./status-entry.js";

export type WriteOutcome = { readonly ok: true } | { readonly ok: false; readonly detail: string };

export interface PublisherTiming {
  readonly minInterval: Milliseconds;
  readonly initialBackoff: Milliseconds;
  readonly maxBackoff: Milliseconds;
}

export const defaultPublisherTiming: PublisherTiming = {
  minInterval: milliseconds(250),
  initialBackoff: milliseconds(500),
  maxBackoff: milliseconds(5_000),
};

export class StatusPublisher {
  #desired: NodeStatusEntry | undefined;
  #written: NodeStatusEntry | undefined;
  #isWriting = false;
  #isStopped = false;
  #notBefore = 0;
  #backoff: number;
  #failures = 0;
  #isUrgent = false;
  #waiters: (() => void)[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly write: (entry: NodeStatusEntry) => Promise<WriteOutcome>,
    private readonly timing: PublisherTiming = defaultPublisherTiming,
    private readonly onFailure: (detail: string, failures: number, retryIn: Milliseconds) => void = () => undefined,
  ) {
    this.#backoff = timing.initialBackoff;
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

  /** Writes the latest entry now, skipping the spacing and any backoff; resolves once it is written or stopped. */
  flush(): Promise<void> {
    this.#isUrgent = true;
    this.clock.cancel();
    const done = this.isCurrent || this.#isStopped ? Promise.resolve() : new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#kick();
    return done;
  }

  stop(): void {
    this.#isStopped = true;
    this.#isUrgent = false;
    this.clock.cancel();
    this.#release();
  }

  #release(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }

  #kick(): void {
    if (this.#isStopped || this.#isWriting || this.isCurrent) return;
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
    this.#isWriting = true;
    const outcome = await this.write(entry).catch((error: unknown): WriteOutcome => ({ ok: false, detail: error instanceof Error ? error.message : String(error) }));
    this.#isWriting = false;
    const now = this.clock.now();
    if (outcome.ok) {
      this.#written = entry;
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
