import { performance } from "node:perf_hooks";
import type { Clock } from "../ports.js";
import { milliseconds, type Milliseconds } from "../../vrrp/units.js";

/** performance.now(): monotonic, sub-millisecond, immune to wall-clock steps. One OS timer at most. */
export class MonotonicClock implements Clock {
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;

  now(): Milliseconds {
    return milliseconds(performance.now());
  }

  schedule(at: Milliseconds, onDeadline: () => void): void {
    this.cancel();
    const fire = (): void => {
      // Node may wake a little early; re-arm for the remainder rather than report a deadline that has not passed.
      const remaining = at - performance.now();
      if (remaining > 0) {
        this.timer = setTimeout(fire, Math.ceil(remaining));
        return;
      }
      this.timer = undefined;
      // Timers run before I/O in Node's loop, so a late deadline may have packets waiting that would have moved it;
      // setImmediate runs after the poll phase has delivered them, and their handling may cancel this call.
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        onDeadline();
      });
    };
    this.timer = setTimeout(fire, Math.max(0, Math.ceil(at - performance.now())));
  }

  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  wait(duration: Milliseconds): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, duration));
  }
}
