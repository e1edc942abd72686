import type { KubernetesObject } from "@kubernetes/client-node";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Reflector, type ListedObjects } from "../../src/agent/k8s/reflector.js";

type Callback = (type: string, object: KubernetesObject) => void;

/** A scripted API: list answers and watch streams the test drives by hand. */
class FakeApi {
  readonly lists: (ListedObjects<KubernetesObject> | Error)[] = [];
  readonly watches: { readonly query: Record<string, string>; readonly emit: Callback; readonly end: (error: unknown) => void; isAborted: boolean }[] = [];
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

async function settle(): Promise<void> {
  for (let round = 0; round < 5; round++) await Promise.resolve();
}

describe("list/watch that never gives up", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function aReflector(api: FakeApi, seen: string[][]) {
    return new Reflector(api.watcher, { what: "pods", path: "/api/v1/namespaces/ns/pods", query: { labelSelector: "app=web" }, list: api.list }, (items) => seen.push(items.map((item) => item.metadata?.name ?? "")), quiet, {
      initialBackoffMs: 500,
      maxBackoffMs: 2000,
      watchSeconds: 60,
    });
  }

  it("lists, then watches from the list's resourceVersion and applies events", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [pod("a", "1")], resourceVersion: "10" });
    const seen: string[][] = [];
    const reflector = aReflector(api, seen);
    reflector.start();
    await settle();
    expect(api.watches[0]?.query).toMatchObject({ labelSelector: "app=web", resourceVersion: "10", allowWatchBookmarks: "true" });
    api.watches[0]?.emit("ADDED", pod("b", "11"));
    api.watches[0]?.emit("DELETED", pod("a", "12"));
    expect(seen).toEqual([["a"], ["a", "b"], ["b"]]);
    expect(reflector.hasSynced).toBe(true);
    reflector.stop();
  });

  it("a 410 ERROR event relists at once, without backoff", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [pod("a", "1")], resourceVersion: "10" }, { items: [pod("c", "20")], resourceVersion: "20" });
    const seen: string[][] = [];
    const reflector = aReflector(api, seen);
    reflector.start();
    await settle();
    api.watches[0]?.emit("ERROR", { code: 410, message: "too old resource version" } as KubernetesObject);
    await settle();
    expect(api.listCalls).toBe(2);
    expect(api.watches[1]?.query.resourceVersion).toBe("20");
    expect(seen.at(-1)).toEqual(["c"]);
    reflector.stop();
  });

  it("a failing list keeps the last known items and retries with doubling backoff", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [pod("a", "1")], resourceVersion: "10" }, new Error("connect ECONNREFUSED"), new Error("connect ECONNREFUSED"), { items: [pod("a", "1")], resourceVersion: "30" });
    const seen: string[][] = [];
    const reflector = aReflector(api, seen);
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
    reflector.stop();
  });

  it("a watch the server ends normally resumes from the last seen resourceVersion without relisting", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [], resourceVersion: "10" });
    const reflector = aReflector(api, []);
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

  it("stop aborts the watch and ends the loop", async () => {
    const api = new FakeApi();
    api.lists.push({ items: [], resourceVersion: "10" });
    const reflector = aReflector(api, []);
    reflector.start();
    await settle();
    reflector.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(api.watches[0]?.isAborted).toBe(true);
    expect(api.watches).toHaveLength(1);
    expect(api.listCalls).toBe(1);
  });
});
