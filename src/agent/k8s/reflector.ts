// A list-then-watch loop that never gives up: client-node's informers stop on any error but 410, and an agent that
// stops watching its resource would go on with a stale configuration. Every failure is logged once per streak,
// retried with doubling backoff, and a 410 (the resource version expired) relists at once. The watch is also
// ended by the server every few minutes (timeoutSeconds) and by a watchdog, so a silently dead connection heals.

import type { KubernetesObject, Watch } from "@kubernetes/client-node";
import type { Logger } from "pino";

export interface ListedObjects<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
}

export interface ReflectorSource<T> {
  /** What is watched, for log lines: "highavailabilityvips edge", "nginx pods on node-1". */
  readonly what: string;
  list(): Promise<ListedObjects<T>>;
  /** The collection's URL path, e.g. /api/v1/namespaces/ingress/pods. */
  readonly path: string;
  /** labelSelector / fieldSelector of the list, repeated on the watch. */
  readonly query: Readonly<Record<string, string>>;
}

export interface ReflectorTiming {
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Server-side end of each watch; the watchdog allows this plus a margin. */
  readonly watchSeconds: number;
}

const defaultTiming: ReflectorTiming = { initialBackoffMs: 500, maxBackoffMs: 8_000, watchSeconds: 240 };
const WATCHDOG_MARGIN_MS = 30_000;

class ExpiredError extends Error {}

function describeError(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const code = "code" in error ? error.code : "statusCode" in error ? error.statusCode : undefined;
    const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
    if (code === 403) return `forbidden (RBAC): ${message}`;
    if (code === 401) return `unauthorized: ${message}`;
    if (typeof code === "number") return `HTTP ${code}: ${message}`;
  }
  return error instanceof Error ? error.message.split("\n")[0] ?? error.name : String(error);
}

function isExpired(error: unknown): boolean {
  if (error instanceof ExpiredError) return true;
  if (typeof error !== "object" || error === null) return false;
  return ("code" in error && error.code === 410) || ("statusCode" in error && error.statusCode === 410);
}

function keyOf(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
}

export class Reflector<T extends KubernetesObject> {
  readonly #store = new Map<string, T>();
  #isRunning = false;
  #sleep: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  #abortWatch: (() => void) | undefined;
  #hasSynced = false;

  constructor(
    private readonly watcher: Pick<Watch, "watch">,
    private readonly source: ReflectorSource<T>,
    private readonly onChange: (items: readonly T[]) => void,
    private readonly logger: Logger,
    private readonly timing: ReflectorTiming = defaultTiming,
  ) {}

  /** Whether a list has succeeded since start: before that, `items` knows nothing. */
  get hasSynced(): boolean {
    return this.#hasSynced;
  }

  get items(): readonly T[] {
    return [...this.#store.values()];
  }

  start(): void {
    if (this.#isRunning) return;
    this.#isRunning = true;
    void this.#run();
  }

  stop(): void {
    this.#isRunning = false;
    this.#abortWatch?.();
    if (this.#sleep !== undefined) {
      clearTimeout(this.#sleep.timer);
      this.#sleep.wake();
    }
  }

  async #pause(ms: number): Promise<void> {
    await new Promise<void>((wake) => {
      this.#sleep = { timer: setTimeout(wake, ms), wake };
    });
    this.#sleep = undefined;
  }

  async #run(): Promise<void> {
    let backoff = this.timing.initialBackoffMs;
    let failingSince: number | undefined;
    while (this.#isRunning) {
      try {
        const listed = await this.source.list();
        if (!this.#isRunning) return;
        this.#store.clear();
        for (const item of listed.items) this.#store.set(keyOf(item), item);
        this.#hasSynced = true;
        this.onChange(this.items);
        if (failingSince !== undefined) this.logger.info({ what: this.source.what, failedForMs: Date.now() - failingSince }, "API server reachable again; watching");
        failingSince = undefined;
        backoff = this.timing.initialBackoffMs;
        let resourceVersion = listed.resourceVersion;
        // Re-watch from the last seen version while the server just ends watches normally.
        while (this.#isRunning) {
          resourceVersion = await this.#watchOnce(resourceVersion);
        }
      } catch (error) {
        if (!this.#isRunning) return;
        if (isExpired(error)) {
          this.logger.debug({ what: this.source.what }, "watch expired (410); relisting");
          continue;
        }
        if (failingSince === undefined) {
          failingSince = Date.now();
          this.logger.warn({ what: this.source.what, error: describeError(error) }, "cannot list/watch; keeping the last known state and retrying with backoff");
        } else {
          this.logger.debug({ what: this.source.what, error: describeError(error), backoffMs: backoff }, "still cannot list/watch");
        }
        await this.#pause(backoff);
        backoff = Math.min(this.timing.maxBackoffMs, backoff * 2);
      }
    }
  }

  /** One watch from `resourceVersion`; resolves with the last version seen when the server ends it, throws otherwise. */
  async #watchOnce(resourceVersion: string): Promise<string> {
    let latest = resourceVersion;
    let failure: unknown;
    const startedAt = Date.now();
    let finish: (error: unknown) => void = () => undefined;
    const ended = new Promise<unknown>((resolve) => {
      finish = resolve;
    });
    const query = { ...this.source.query, resourceVersion, allowWatchBookmarks: "true", timeoutSeconds: String(this.timing.watchSeconds) };
    const controller = await this.watcher.watch(
      this.source.path,
      query,
      (type: string, object: T) => {
        if (type === "ERROR") {
          const status = object as { code?: number; message?: string };
          failure = status.code === 410 ? new ExpiredError("expired") : new Error(`watch error ${status.code ?? "?"}: ${status.message ?? ""}`);
          this.#abortWatch?.();
          return;
        }
        const version = object.metadata?.resourceVersion;
        if (version !== undefined) latest = version;
        if (type === "BOOKMARK") return;
        if (type === "DELETED") this.#store.delete(keyOf(object));
        else this.#store.set(keyOf(object), object);
        this.onChange(this.items);
      },
      (error: unknown) => finish(error),
    );
    this.#abortWatch = () => controller.abort();
    if (!this.#isRunning) controller.abort();
    const watchdog = setTimeout(() => {
      failure = new Error("watch silent past its timeout");
      controller.abort();
    }, this.timing.watchSeconds * 1000 + WATCHDOG_MARGIN_MS);
    const error = await ended;
    clearTimeout(watchdog);
    this.#abortWatch = undefined;
    if (failure !== undefined) throw failure;
    if (error !== null && error !== undefined && this.#isRunning) throw error;
    // A watch the server ends at once (a proxy in the way, say) must not turn into a busy loop.
    if (Date.now() - startedAt < 1000 && this.#isRunning) throw new Error("the watch ended as soon as it started");
    return latest;
  }
}
