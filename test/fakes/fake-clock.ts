import type { Milliseconds } from "../../src/vrrp/units.js";
import { milliseconds } from "../../src/vrrp/units.js";

/** A monotonic clock the test moves by hand. It refuses to go back, as a monotonic clock never does. */
export class FakeClock {
  #now: number;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): Milliseconds {
    return milliseconds(this.#now);
  }

  advance(by: number): Milliseconds {
    if (!Number.isFinite(by) || by < 0) throw new RangeError(`FakeClock cannot move by ${by} ms: time only goes forward`);
    this.#now += by;
    return this.now();
  }
}
