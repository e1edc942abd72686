import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WorkQueue, type ReconcileOutcome } from "../../src/controller/queue.js";

describe("the work queue", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function queueOf(process: (key: string) => Promise<ReconcileOutcome>) {
    const errors: { key: string; retryInMs: number }[] = [];
    const queue = new WorkQueue({ process, onError: (key, _error, retryInMs) => errors.push({ key, retryInMs }), now: () => Date.now() });
    return { queue, errors };
  }

  it("a key added many times before it runs is processed once", async () => {
    const seen: string[] = [];
    const { queue } = queueOf(async (key) => {
      seen.push(key);
      return { kind: "done" };
    });
    queue.add("default/edge");
    queue.add("default/edge");
    queue.add("default/other");
    queue.add("default/edge");
    queue.start();
    await queue.whenIdle();
    expect(seen).toEqual(["default/edge", "default/other"]);
  });

  it("a key added while it runs runs again afterwards, never concurrently", async () => {
    const seen: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const { queue } = queueOf(async (key) => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      seen.push(key);
      if (seen.length === 1) queue.add(key);
      await Promise.resolve();
      running -= 1;
      return { kind: "done" };
    });
    queue.start();
    queue.add("default/edge");
    await queue.whenIdle();
    await vi.runAllTimersAsync();
    expect(seen).toEqual(["default/edge", "default/edge"]);
    expect(maxRunning).toBe(1);
  });

  it("a failure retries with doubling backoff, and success resets it", async () => {
    let calls = 0;
    const { queue, errors } = queueOf(async () => {
      calls += 1;
      if (calls <= 3) throw new Error("409");
      return { kind: "done" };
    });
    queue.start();
    queue.add("default/edge");
    await vi.advanceTimersByTimeAsync(500 + 1_000 + 2_000);
    expect(errors.map((error) => error.retryInMs)).toEqual([500, 1_000, 2_000]);
    expect(calls).toBe(4);
  });

  it("requeueAt brings the key back at that time, not before", async () => {
    const times: number[] = [];
    const { queue } = queueOf(async () => {
      times.push(Date.now());
      return times.length === 1 ? { kind: "done", requeueAt: 30_000 } : { kind: "done" };
    });
    queue.start();
    queue.add("default/edge");
    await vi.advanceTimersByTimeAsync(29_999);
    expect(times).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toEqual([0, 30_000]);
  });
});
