// Durations carry their unit in the type, so a Centiseconds value from the wire can never be added to a
// Milliseconds deadline by accident. Every conversion between units lives in this file (and timers.ts).

declare const unit: unique symbol;

export type Milliseconds = number & { readonly [unit]: "ms" };
/** RFC 5798 §5.2.7: VRRPv3 intervals are centiseconds on the wire. */
export type Centiseconds = number & { readonly [unit]: "cs" };
/** RFC 3768 §5.3.7: VRRPv2 intervals are whole seconds on the wire. */
export type Seconds = number & { readonly [unit]: "s" };

export function milliseconds(value: number): Milliseconds {
  return value as Milliseconds;
}

export function centiseconds(value: number): Centiseconds {
  return value as Centiseconds;
}

export function seconds(value: number): Seconds {
  return value as Seconds;
}

export function centisecondsToMilliseconds(value: Centiseconds): Milliseconds {
  return milliseconds(value * 10);
}

export function secondsToMilliseconds(value: Seconds): Milliseconds {
  return milliseconds(value * 1000);
}

export function secondsToCentiseconds(value: Seconds): Centiseconds {
  return centiseconds(value * 100);
}

/** Rounds down: a v2 advert can only carry whole seconds (RFC 3768 §5.3.7). */
export function centisecondsToSeconds(value: Centiseconds): Seconds {
  return seconds(Math.floor(value / 100));
}

/** Rounds down to the 10 ms resolution of the v3 interval field (RFC 5798 §5.2.7). */
export function millisecondsToCentiseconds(value: Milliseconds): Centiseconds {
  return centiseconds(Math.floor(value / 10));
}

export function addMilliseconds(at: Milliseconds, duration: Milliseconds): Milliseconds {
  return milliseconds(at + duration);
}
