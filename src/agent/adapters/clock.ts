import type { Clock } from "../ports.js";
import { milliseconds, type Milliseconds } from "../../vrrp/units.js";

interface Deadline {
  readonly at: Milliseconds;
  readonly onDeadline: () => void;
}

/**
 * One Node timer for every clock of the process, at the earliest deadline. A Backup moves its deadline at every advert
 * it hears, and a timer per router replaced each time was a measurable share of an agent serving 100 routers; Masters
 * whose deadlines meet (machine.ts puts Adver_Timer on the interval's grid) all run in one wake-up.
 */
class SharedTimer {
  readonly #deadlines = new Map<MonotonicClock, Deadline>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #immediate: NodeJS.Immediate | undefined;
  #isRunning = false;

  set(clock: MonotonicClock, deadline: Deadline): void {
    this.#deadlines.set(clock, deadline);
    if (!this.#isRunning && deadline.at < this.#timerAt) this.#arm(deadline.at);
  }

  // A later wake-up with nothing due costs less than moving the Node timer at every cancel; with no deadline left, the
  // timer goes, so that it does not keep a stopping process alive.
  delete(clock: MonotonicClock): void {
    this.#deadlines.delete(clock);
    if (this.#deadlines.size === 0 && !this.#isRunning) this.#clear();
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
    this.#timerAt = Infinity;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimeout, Math.max(0, Math.ceil(at - performance.now())));
  }

  readonly #onTimeout = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    // Timers run before I/O in Node's loop, so a late deadline may have packets waiting that would have moved it;
    // setImmediate runs after the poll phase has delivered them, and their handling may move or cancel the deadline.
    if (this.#immediate === undefined) this.#immediate = setImmediate(this.#runDue);
  };

  readonly #runDue = (): void => {
    this.#immediate = undefined;
    const now = performance.now();
    const due = [...this.#deadlines].filter(([, deadline]) => deadline.at <= now);
    let failure: { readonly error: unknown } | undefined;
    this.#isRunning = true;
    for (const [clock, deadline] of due) {
      // An earlier callback may have moved or cancelled this clock's deadline.
      if (this.#deadlines.get(clock) !== deadline) continue;
      this.#deadlines.delete(clock);
      try {
        deadline.onDeadline();
      } catch (error) {
        failure ??= { error };
      }
    }
    this.#isRunning = false;
    this.#armEarliest();
    if (failure !== undefined) throw failure.error;
  };

  #armEarliest(): void {
    if (this.#deadlines.size === 0) return this.#clear();
    let earliest = Infinity;
    for (const deadline of this.#deadlines.values()) earliest = Math.min(earliest, deadline.at);
    if (earliest < this.#timerAt) this.#arm(earliest);
  }
}

const sharedTimer = new SharedTimer();

/** performance.now(), with one deadline at a time; every instance shares the process's one Node timer. */
export class MonotonicClock implements Clock {
  now(): Milliseconds {
    return milliseconds(performance.now());
  }

  schedule(at: Milliseconds, onDeadline: () => void): void {
    sharedTimer.set(this, { at, onDeadline });
  }

  cancel(): void {
    sharedTimer.delete(this);
  }

  wait(duration: Milliseconds): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, duration));
  }
}
