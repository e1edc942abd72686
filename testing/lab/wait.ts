export interface WaitOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** Names the awaited condition in the timeout error, e.g. "n1 holds the VIP". */
  readonly what: string;
}

/**
 * Polls `predicate` until it returns true. A predicate that throws counts as "not yet"; its last error is quoted in
 * the timeout message, which is usually the clue to why the condition never came.
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, opts: WaitOptions): Promise<void> {
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = performance.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await predicate()) return;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() >= deadline) {
      const cause = lastError === undefined ? "" : `; last error: ${errorText(lastError)}`;
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
