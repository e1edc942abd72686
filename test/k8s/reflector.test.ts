import type { KubernetesObject } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Reflector, type Change, type ListedObjects } from "../../src/k8s/reflector.js";

type Callback = (type: string, object: KubernetesObject) => void;

/** A scripted API: list answers and watch streams the test drives by hand. */
class FakeApi {
  readonly lists: (ListedObjects<KubernetesObject> | Error)[] = [];
  readonly watches: { readonly query: Record<string, string>; readonly emit: Callback; readonly end: (error: unknown) => void; isAborted: boolean }[] = [];
  /** When set, every watch is refused before it opens, as client-node's Watch reports a non-200 answer. */
  refusal: Error | undefined;
  listCalls = 0;

  list = async (): Promise<ListedObjects<KubernetesObject>> => {
    this.listCalls += 1;
    const next = this.lists.shift();
    if (next === undefined) throw new Error("no scripted list");
    if (next instanceof Error) throw next;
    return next;
  };

  readonly watcher = {
    watch: async (_path: string, query: Record<string, string>, callback: Callback, done: (error: unknown) => void) => {
      const entry = { query, emit: callback, end: done, isAborted: false };
      this.watches.push(entry);
      if (this.refusal !== undefined) done(this.refusal);
      return {
        abort: () => {
          if (entry.isAborted) return;
          entry.isAborted = true;
          done(new Error("aborted"));
        },
      } as AbortController;
    },
  };
}

const quiet = pino({ level: "silent" });
const pod = (name: string, resourceVersion: string): KubernetesObject => ({ metadata: { name, namespace: "ns", resourceVersion } });
const timing = { initialBackoffMs: 500, maxBackoffMs: 2000, watchSeconds: 60 };

async function settle(): Promise<void> {
  for (let round = 0; round < 5; round++) await Promise.resolve();
}

/** "+a" for a change, "-a" for a deletion, one string per onChange call. */
function describeChanges(changes: readonly Change<KubernetesObject>[]): string {
  return changes.map(({ object, isDeleted }) => `${isDeleted ? "-" : "+"}${object.metadata?.name ?? ""}`).join(" ");
}

describe("list/watch that never gives up", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function aReflector(api: FakeApi, options: { seen?: string[][]; changes?: string[]; errors?: unknown[]; logger?: Logger } = {}) {
    const reflector: Reflector<KubernetesObject> = new Reflector(
      api.watcher,
      {
        what: "pods",
        path: "/api/v1/namespaces/ns/pods",
        query: { labelSelector: "app=web" },
        list: api.list,
        onChange: (changes) => {
          options.seen?.push(reflector.items.map((item) => item.metadata?.name ?? ""));
          options.changes?.push(describeChanges(changes));
        },
        onError: (error) => options.errors?.push(error),
      },
      options.logger ?? quiet,
      timing,
    );
    return reflector;
  }

  it("lists, then watches from the list's resourceVersion and applies events", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [pod("a", "1")], resourceVersion: "10" });
    const seen: string[][] = [];
    const reflector = aReflector(api, { seen });
    reflector.start();
    await settle();
    expect(api.watches[0]?.query).toMatchObject({ labelSelector: "app=web", resourceVersion: "10", allowWatchBookmarks: "true" });
    api.watches[0]?.emit("ADDED", pod("b", "11"));
    api.watches[0]?.emit("DELETED", pod("a", "12"));
    expect(seen).toEqual([["a"], ["a", "b"], ["b"]]);
    expect(reflector.hasSynced).toBe(true);
    expect(reflector.get("b", "ns")?.metadata?.resourceVersion).toBe("11");
    expect(reflector.get("a", "ns")).toBeUndefined();
    reflector.stop();
  });

  it("untilSynced resolves at the first successful list, not before", async () => {
    const api = new FakeApi();
    api.lists.push(new Error("connect ECONNREFUSED"), { items: [], resourceVersion: "10" });
    const reflector = aReflector(api);
    let isSynced = false;
    void reflector.untilSynced().then(() => {
      isSynced = true;
    });
    reflector.start();
    await settle();
    expect(isSynced).toBe(false);
    await vi.advanceTimersByTimeAsync(500);
    expect(isSynced).toBe(true);
    expect(reflector.hasSynced).toBe(true);
    reflector.stop();
  });

  it("reports each object a watch event or a relist changes, and deletions only a relist can see", async () => {
    const api = new FakeApi();
    api.lists.push(
      { items: [pod("a", "1"), pod("b", "2"), pod("c", "3")], resourceVersion: "10" },
      // While the watch was down: a unchanged, b modified, c deleted, d created.
      { items: [pod("a", "1"), pod("b", "12"), pod("d", "13")], resourceVersion: "20" },
    );
    const changes: string[] = [];
    const reflector = aReflector(api, { changes });
    reflector.start();
    await settle();
    api.watches[0]?.emit("MODIFIED", pod("a", "1"));
    api.watches[0]?.end(new Error("socket hang up"));
    await vi.advanceTimersByTimeAsync(500);
    expect(changes).toEqual(["+a +b +c", "+a", "+b +d -c"]);
    expect(reflector.items.map((item) => item.metadata?.name).sort()).toEqual(["a", "b", "d"]);
    reflector.stop();
  });

  it("reports a relist that changed nothing as an empty change, so a consumer still hears of the fresh list", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [pod("a", "1")], resourceVersion: "10" }, { items: [pod("a", "1")], resourceVersion: "20" });
    const changes: string[] = [];
    const reflector = aReflector(api, { changes });
    reflector.start();
    await settle();
    api.watches[0]?.emit("ERROR", { code: 410, message: "too old resource version" } as KubernetesObject);
    await settle();
    expect(changes).toEqual(["+a", ""]);
    reflector.stop();
  });

  it("a 410 ERROR event relists at once, without backoff, and is not reported as a failure", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [pod("a", "1")], resourceVersion: "10" }, { items: [pod("c", "20")], resourceVersion: "20" });
    const seen: string[][] = [];
    const errors: unknown[] = [];
    const reflector = aReflector(api, { seen, errors });
    reflector.start();
    await settle();
    api.watches[0]?.emit("ERROR", { code: 410, message: "too old resource version" } as KubernetesObject);
    await settle();
    expect(api.listCalls).toBe(2);
    expect(api.watches[1]?.query.resourceVersion).toBe("20");
    expect(seen.at(-1)).toEqual(["c"]);
    expect(errors).toEqual([]);
    reflector.stop();
  });

  it("a failing list keeps the last known items and retries with doubling backoff", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [pod("a", "1")], resourceVersion: "10" }, new Error("connect ECONNREFUSED"), new Error("connect ECONNREFUSED"), { items: [pod("a", "1")], resourceVersion: "30" });
    const errors: unknown[] = [];
    const reflector = aReflector(api, { errors });
    reflector.start();
    await settle();
    api.watches[0]?.end(new Error("socket hang up"));
    await settle();
    expect(reflector.items.map((item) => item.metadata?.name)).toEqual(["a"]);
    expect(api.listCalls).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(api.listCalls).toBe(2);
    await vi.advanceTimersByTimeAsync(500);
    expect(api.listCalls).toBe(2);
    await vi.advanceTimersByTimeAsync(500);
    expect(api.listCalls).toBe(3);
    await vi.advanceTimersByTimeAsync(2000);
    expect(api.listCalls).toBe(4);
    expect(api.watches.at(-1)?.query.resourceVersion).toBe("30");
    expect(reflector.items.map((item) => item.metadata?.name)).toEqual(["a"]);
    expect(errors).toHaveLength(3);
    reflector.stop();
  });

  it("a refused watch after a good list keeps backing off and is logged once, until a watch opens", async () => {
    const api = new FakeApi();
    for (let round = 0; round < 5; round++) api.lists.push({ items: [], resourceVersion: String(round) });
    api.refusal = Object.assign(new Error("Forbidden"), { statusCode: 403 });
    const logger = { warn: vi.fn(), info: vi.fn(), debug: vi.fn() };
    const reflector = aReflector(api, { logger: logger as unknown as Logger });
    reflector.start();
    await settle();
    expect(api.listCalls).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(api.listCalls).toBe(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(api.listCalls).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(api.listCalls).toBe(3);
    expect(logger.warn).toHaveBeenCalledTimes(1);
    expect(logger.warn.mock.calls[0]?.[0]).toMatchObject({ what: "pods", error: expect.stringMatching(/^HTTP 403 \(RBAC/) });
    api.refusal = undefined;
    await vi.advanceTimersByTimeAsync(2000);
    expect(api.listCalls).toBe(4);
    expect(logger.info).toHaveBeenCalledWith(expect.objectContaining({ what: "pods" }), "API server reachable again; watching");
    expect(logger.warn).toHaveBeenCalledTimes(1);
    reflector.stop();
  });

  it("a watch the server ends normally resumes from the last seen resourceVersion without relisting", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [], resourceVersion: "10" });
    const reflector = aReflector(api);
    reflector.start();
    await settle();
    api.watches[0]?.emit("BOOKMARK", { metadata: { resourceVersion: "15" } });
    await vi.advanceTimersByTimeAsync(2000);
    api.watches[0]?.end(null);
    await settle();
    expect(api.listCalls).toBe(1);
    expect(api.watches[1]?.query.resourceVersion).toBe("15");
    reflector.stop();
  });

  it("a watch silent past its timeout is ended by the watchdog and relisted", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [], resourceVersion: "10" }, { items: [], resourceVersion: "20" });
    const errors: unknown[] = [];
    const reflector = aReflector(api, { errors });
    reflector.start();
    await settle();
    await vi.advanceTimersByTimeAsync(timing.watchSeconds * 1000 + 30_000);
    expect(api.watches[0]?.isAborted).toBe(true);
    expect(errors).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(api.listCalls).toBe(2);
    reflector.stop();
  });

  it("stop aborts the watch and ends the loop", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [], resourceVersion: "10" });
    const reflector = aReflector(api);
    reflector.start();
    await settle();
    reflector.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(api.watches[0]?.isAborted).toBe(true);
    expect(api.watches).toHaveLength(1);
    expect(api.listCalls).toBe(1);
  });
});
