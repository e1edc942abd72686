import { waitFor } from "../../testing/lab/wait.js";

/**
 * Polls `probe` until it gives a value and returns that value: undefined, or a throw, means "not yet" (the last throw
 * is quoted in the timeout error).
 */
export async function waitForValue<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 250): Promise<T> {
  let value: T | undefined;
  await waitFor(async () => (value = await probe()) !== undefined, { timeoutMs, intervalMs, what });
  return value as T;
}
