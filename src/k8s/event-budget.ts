// How many Events of one kind one writer records for one resource: a few per failover, never a storm while nginx or
// a link flaps. Used by each agent for its transitions and by the controller for MASTER changes; the status, the
// metrics and the logs still follow every change.

/** At most this many Events in any window of `windowMs`; the defaults allow two failovers and their returns. */
export class EventBudget {
  readonly #recorded: number[] = [];
  #suppressed = 0;

  constructor(
    private readonly burst = 4,
    private readonly windowMs = 60_000,
  ) {}

  /** Whether an Event at `now` (ms) may be recorded, and how many were held back since the last one that was. */
  admit(now: number): { readonly isAdmitted: boolean; readonly suppressedBefore: number } {
    while (this.#recorded.length > 0 && now - (this.#recorded[0] ?? now) >= this.windowMs) this.#recorded.shift();
    if (this.#recorded.length >= this.burst) {
      this.#suppressed += 1;
      return { isAdmitted: false, suppressedBefore: 0 };
    }
    this.#recorded.push(now);
    const suppressedBefore = this.#suppressed;
    this.#suppressed = 0;
    return { isAdmitted: true, suppressedBefore };
  }
}
