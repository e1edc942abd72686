// A work queue in the manner of client-go's: a key waits at most once however many watch events name it, a key is
// never processed twice at the same time, failures come back with exponential backoff, and a reconcile may ask to
// be looked at again at a given time.

const BACKOFF_MIN_MS = 500;
// Most failures are the API server or etcd being away; a minute's cap (client-go's is larger still) would keep a
// resource's status stale for up to that minute after they return. A lasting failure (RBAC) then costs one call and
// one log line per resource every 5 s, which is cheap and keeps the cause in sight.
const BACKOFF_MAX_MS = 5_000;

export type ReconcileOutcome = { readonly kind: "done"; readonly requeueAt?: number };

export interface QueueOptions {
  readonly process: (key: string) => Promise<ReconcileOutcome>;
  readonly onError: (key: string, error: unknown, retryInMs: number) => void;
  readonly onDepth?: (depth: number) => void;
  readonly now?: () => number;
}

export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirtyWhileRunning = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private isActive = false;
  private isDraining = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: QueueOptions) {}

  /** Starts processing; keys added before are kept. */
  start(): void {
    this.isActive = true;
    void this.drain();
  }

  stop(): void {
    this.isActive = false;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  add(key: string): void {
    if (this.running.has(key)) {
      this.dirtyWhileRunning.add(key);
      return;
    }
    this.pending.add(key);
    this.options.onDepth?.(this.pending.size);
    void this.drain();
  }

  /** Adds `key` at `at` (ms since the epoch); an earlier request for the same key wins. */
  addAt(key: string, at: number): void {
    const now = this.options.now?.() ?? Date.now();
    const existing = this.timers.get(key);
    if (existing !== undefined && existing.at <= at) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, Math.max(0, at - now));
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  get depth(): number {
    return this.pending.size;
  }

  private async drain(): Promise<void> {
    if (this.isDraining || !this.isActive) return;
    this.isDraining = true;
    try {
      while (this.isActive) {
        const [key] = this.pending;
        if (key === undefined) break;
        this.pending.delete(key);
        this.options.onDepth?.(this.pending.size);
        this.running.add(key);
        await this.processOne(key);
        this.running.delete(key);
        if (this.dirtyWhileRunning.delete(key)) this.pending.add(key);
      }
    } finally {
      this.isDraining = false;
      if (this.pending.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private async processOne(key: string): Promise<void> {
    try {
      const outcome = await this.options.process(key);
      this.failures.delete(key);
      if (outcome.requeueAt !== undefined) this.addAt(key, outcome.requeueAt);
    } catch (error) {
      const count = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, count);
      const retryInMs = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (count - 1));
      this.options.onError(key, error, retryInMs);
      this.addAt(key, (this.options.now?.() ?? Date.now()) + retryInMs);
    }
  }

  /** Resolves once nothing is pending or running (tests). */
  whenIdle(): Promise<void> {
    if (this.pending.size === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
