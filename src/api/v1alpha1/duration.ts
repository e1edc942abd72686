// Durations are Go-style strings (what metav1.Duration and CEL's duration() read), restricted to a single unit and to
// whole milliseconds. The restriction keeps one text meaning one time in zod, in the API server's CEL rules and in the
// agent: "10.5ms" would parse in Go but truncate in CEL's getMilliseconds(), so it is refused everywhere.

/** A duration: digits and one unit (ms, s, m, h); s, m and h may carry up to three decimals, e.g. 100ms, 1.5s, 2m. */
export const DURATION_PATTERN = /^(?:[0-9]{1,9}ms|[0-9]{1,9}(?:\.[0-9]{1,3})?[smh])$/;

/** Longest accepted duration text; bounds the cost of the CRD's CEL rules. */
export const DURATION_MAX_LENGTH = 16;

const unitMilliseconds = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** True when `text` is a duration this API accepts (see {@link DURATION_PATTERN}). */
export function isDuration(text: string): boolean {
  return DURATION_PATTERN.test(text);
}

/**
 * Reads a duration such as "1s", "100ms" or "1.5s" and returns whole milliseconds.
 * Throws a RangeError on text that {@link isDuration} refuses; validated specs never hold such text.
 */
export function parseDuration(text: string): number {
  const match = /^([0-9]+)(?:\.([0-9]+))?(ms|s|m|h)$/.exec(text);
  if (match === null || !isDuration(text)) {
    throw new RangeError(`"${text}" is not a duration; write a number and a unit, e.g. 100ms, 1s, 1.5s, 2m`);
  }
  const [, whole = "0", fraction = "", unit = "ms"] = match;
  const perUnit = unitMilliseconds[unit as keyof typeof unitMilliseconds];
  // Up to three decimals of s, m or h are whole milliseconds, so integer arithmetic stays exact.
  const fractionMilliseconds = fraction === "" ? 0 : (Number(fraction) * perUnit) / 10 ** fraction.length;
  return Number(whole) * perUnit + fractionMilliseconds;
}

/**
 * Writes whole milliseconds as the shortest duration text that parses back to the same value:
 * 0 → "0s", 100 → "100ms", 1500 → "1.5s", 60000 → "1m", 3600000 → "1h".
 * Throws a RangeError on a negative or fractional number.
 */
export function formatDuration(milliseconds: number): string {
  if (!Number.isSafeInteger(milliseconds) || milliseconds < 0) {
    throw new RangeError(`${milliseconds} is not a whole, non-negative number of milliseconds`);
  }
  if (milliseconds === 0) return "0s";
  if (milliseconds % unitMilliseconds.h === 0) return `${milliseconds / unitMilliseconds.h}h`;
  if (milliseconds % unitMilliseconds.m === 0) return `${milliseconds / unitMilliseconds.m}m`;
  if (milliseconds < unitMilliseconds.s) return `${milliseconds}ms`;
  const seconds = Math.trunc(milliseconds / unitMilliseconds.s);
  const rest = milliseconds % unitMilliseconds.s;
  return rest === 0 ? `${seconds}s` : `${seconds}.${String(rest).padStart(3, "0").replace(/0+$/, "")}s`;
}
