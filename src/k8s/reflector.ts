// A list-then-watch loop that never gives up, the one watch of the agent and the controller: client-node's informers
// stop on any error but 410 (client-node #795, #1496), and a process that stops watching goes on with a stale view.
// Failures are logged once per streak and retried with doubling backoff; a 410 relists at once. The server ends the
// watch every few minutes (timeoutSeconds) and a watchdog ends a silent one, so a dead connection heals.

import type { KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiStatusCode, describeApiError } from "./errors.js";

export interface ListedObjects<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
}

/** A list response as client-node returns it (`items`, `metadata.resourceVersion`), as the reflector takes it. */
export function listedObjects<T>(body: unknown): ListedObjects<T> {
  const list = body as { items?: T[]; metadata?: { resourceVersion?: string } };
  return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? "" };
}

export interface Change<T> {
  readonly object: T;
  /** Deleted on the watch, or missing from a relist; `object` is then its last known state. */
  readonly isDeleted: boolean;
}

export interface ReflectorOptions<T> {
  /** What is watched, for log lines: "highavailabilityvips", "nginx pods on node-1". */
  readonly what: string;
  list(): Promise<ListedObjects<T>>;
  /** The collection's URL path, e.g. /api/v1/namespaces/ingress/pods. */
  readonly path: string;
  /** labelSelector / fieldSelector of the list, repeated on the watch. */
  readonly query: Readonly<Record<string, string>>;
  /** Called after every list, with what differs from the cache before it (possibly nothing), and after every watch
   * event, with that one object. The cache already holds the change. */
  onChange(changes: readonly Change<T>[]): void;
  /** Called on every failed list or watch, for a metric; the reflector logs and retries by itself. */
  onError?(error: unknown): void;
}

/** client-node's Watch for the controller, KubernetesHttpClient for the agent. */
export interface Watcher {
  watch(path: string, query: Readonly<Record<string, string>>, onEvent: (type: string, object: unknown) => void, done: (error: unknown) => void): Promise<{ abort(): void }>;
}

export interface ReflectorTiming {
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Server-side end of each watch; the watchdog allows this plus a margin. */
  readonly watchSeconds: number;
}

// Agents run on every node: the 8 s cap spares a recovering API server a relist from each of them every half second.
const defaultReflectorTiming: ReflectorTiming = { initialBackoffMs: 500, maxBackoffMs: 8_000, watchSeconds: 240 };
const WATCHDOG_MARGIN_MS = 30_000;

function keyOf(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ""}/${name ?? ""}`;
}

function keyOfObject(object: KubernetesObject): string {
  return keyOf(object.metadata?.namespace, object.metadata?.name);
}

// A Status in the watch stream keeps its HTTP code as `code`, so apiStatusCode sees a 410 there as on a refused call.
function watchStatusError(status: { code?: number; message?: string }): Error {
  return Object.assign(new Error(`watch error: ${status.message ?? "no message"}`), { code: status.code });
}

export class Reflector<T extends KubernetesObject> {
  readonly #store = new Map<string, T>();
  #isRunning = false;
  #sleep: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  #abortWatch: (() => void) | undefined;
  #hasSynced = false;
  #markSynced: () => void = () => undefined;
  readonly #synced = new Promise<void>((resolve) => {
    this.#markSynced = resolve;
  });
  #failingSince: number | undefined;
  #backoffMs: number;

  constructor(
    private readonly watcher: Watcher,
    private readonly options: ReflectorOptions<T>,
    private readonly logger: Logger,
    private readonly timing: ReflectorTiming = defaultReflectorTiming,
  ) {
    this.#backoffMs = timing.initialBackoffMs;
  }

  /** Whether a list has succeeded since start: before that, the cache knows nothing. */
  get hasSynced(): boolean {
    return this.#hasSynced;
  }

  /** Resolves at the first successful list, for a caller that must not act on an empty cache; never if stopped first. */
  untilSynced(): Promise<void> {
    return this.#synced;
  }

  get items(): readonly T[] {
    return [...this.#store.values()];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#store.get(keyOf(namespace, name));
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
    while (this.#isRunning) {
      try {
        const listed = await this.options.list();
        if (!this.#isRunning) return;
        this.#replace(listed.items);
        let resourceVersion = listed.resourceVersion;
        // Re-watch from the last seen version while the server just ends watches normally.
        while (this.#isRunning) {
          resourceVersion = await this.#watchOnce(resourceVersion);
        }
      } catch (error) {
        if (!this.#isRunning) return;
        if (apiStatusCode(error) === 410) {
          this.logger.debug({ what: this.options.what }, "watch expired (410); relisting");
          continue;
        }
        this.options.onError?.(error);
        if (this.#failingSince === undefined) {
          this.#failingSince = Date.now();
          this.logger.warn({ what: this.options.what, error: describeApiError(error) }, "cannot list/watch; keeping the last known state and retrying with backoff");
        } else {
          this.logger.debug({ what: this.options.what, error: describeApiError(error), backoffMs: this.#backoffMs }, "still cannot list/watch");
        }
        await this.#pause(this.#backoffMs);
        this.#backoffMs = Math.min(this.timing.maxBackoffMs, this.#backoffMs * 2);
      }
    }
  }

  /** Takes a list as the whole truth: what it adds, changes or no longer holds is reported as changes. */
  #replace(items: readonly T[]): void {
    const previous = new Map(this.#store);
    const changes: Change<T>[] = [];
    this.#store.clear();
    for (const item of items) {
      const key = keyOfObject(item);
      const known = previous.get(key);
      previous.delete(key);
      this.#store.set(key, item);
      if (known === undefined || known.metadata?.resourceVersion !== item.metadata?.resourceVersion) changes.push({ object: item, isDeleted: false });
    }
    // Deleted while nobody watched: a relist is the only place these show.
    for (const gone of previous.values()) changes.push({ object: gone, isDeleted: true });
    this.#hasSynced = true;
    this.#markSynced();
    this.options.onChange(changes);
  }

  /** The watch is open, so both verbs work again: the failure streak, and its backoff, are over. A list alone is not
   * enough, or a watch the server refuses (RBAC without the watch verb) would retry at the shortest backoff forever. */
  #recovered(): void {
    if (this.#failingSince !== undefined) this.logger.info({ what: this.options.what, failedForMs: Date.now() - this.#failingSince }, "API server reachable again; watching");
    this.#failingSince = undefined;
    this.#backoffMs = this.timing.initialBackoffMs;
  }

  /** One watch from `resourceVersion`; resolves with the last version seen when the server ends it, throws otherwise. */
  async #watchOnce(resourceVersion: string): Promise<string> {
    let latest = resourceVersion;
    let failure: unknown;
    let hasEnded = false;
    const startedAt = Date.now();
    let finish: (error: unknown) => void = () => undefined;
    const ended = new Promise<unknown>((resolve) => {
      finish = resolve;
    });
    const query = { ...this.options.query, resourceVersion, allowWatchBookmarks: "true", timeoutSeconds: String(this.timing.watchSeconds) };
    const controller = await this.watcher.watch(
      this.options.path,
      query,
      (type: string, received: unknown) => {
        const object = received as T;
        if (type === "ERROR") {
          failure = watchStatusError(object as { code?: number; message?: string });
          this.#abortWatch?.();
          return;
        }
        const version = object.metadata?.resourceVersion;
        if (version !== undefined) latest = version;
        if (type === "BOOKMARK") return;
        const isDeleted = type === "DELETED";
        if (isDeleted) this.#store.delete(keyOfObject(object));
        else this.#store.set(keyOfObject(object), object);
        this.options.onChange([{ object, isDeleted }]);
      },
      (error: unknown) => {
        hasEnded = true;
        finish(error);
      },
    );
    this.#abortWatch = () => controller.abort();
    if (!this.#isRunning) controller.abort();
    else if (!hasEnded) this.#recovered();
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
