// Timestamps as the API writes them, and waits that end early when their work is cancelled.

export function rfc3339(date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d+Z$/, "Z");
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise((resolveSleep) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolveSleep();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolveSleep();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
