import { performance } from "node:perf_hooks";
import type { Clock } from "../ports.js";
import { milliseconds, type Milliseconds } from "../../vrrp/units.js";

/** performance.now(): monotonic, sub-millisecond, immune to wall-clock steps. One OS timer at most. */
export class MonotonicClock implements Clock {
  private timer: NodeJS.Timeout | undefined;

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
      onDeadline();
    };
    this.timer = setTimeout(fire, Math.max(0, Math.ceil(at - performance.now())));
  }

  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
