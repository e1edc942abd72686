import { describe, expect, it } from "vitest";
import type { NodeStatusEntry } from "../../src/api/v1alpha1/index.js";
import { nodeStatusEntrySchema } from "../../src/api/v1alpha1/index.js";
import { buildStatusEntry, statusApplyBody } from "../../src/agent/k8s/status-entry.js";
import { defaultPublisherTiming, StatusPublisher, type WriteOutcome } from "../../src/agent/k8s/status-publisher.js";
import type { AgentSnapshot } from "../../src/agent/runtime.js";
import { milliseconds } from "../../src/vrrp/units.js";
import { FakeTimerClock } from "../fakes/ports.js";

const startedAt = new Date("2026-11-23T09:00:00.250Z");

function aSnapshot(overrides: Partial<AgentSnapshot> = {}): AgentSnapshot {
  return {
    state: "Master",
    priority: 150,
    effectivePriority: 150,
    isHealthy: true,
    isLinkUp: true,
    holdsVip: true,
    masterAddress: "10.0.0.11",
    lastTransition: { from: "Backup", to: "Master", reason: "master-down-timer-expired", priority: 150, at: new Date("2026-11-23T10:00:00.900Z") },
    counters: {},
    ...overrides,
  };
}

const context = { node: "node-1", address: "10.0.0.11", healthDetail: "nginx pod web-a is terminating", startedAt };

describe("this node's status entry", () => {
  it("maps a Master snapshot to a schema-valid entry", () => {
    const entry = buildStatusEntry(aSnapshot(), context);
    expect(entry).toEqual({
      node: "node-1",
      state: "MASTER",
      priority: 150,
      effectivePriority: 150,
      healthy: true,
      reason: "master down timer expired",
      address: "10.0.0.11",
      lastTransitionTime: "2026-11-23T10:00:00Z",
    });
    expect(nodeStatusEntrySchema.safeParse(entry).success).toBe(true);
  });

  it("an unhealthy Fault node says why", () => {
    const entry = buildStatusEntry(
      aSnapshot({ state: "Fault", isHealthy: false, effectivePriority: 0, lastTransition: { from: "Master", to: "Fault", reason: "health-failed", priority: 150, at: startedAt } }),
      context,
    );
    expect(entry.state).toBe("FAULT");
    expect(entry.healthy).toBe(false);
    expect(entry.reason).toBe("health check failed; unhealthy: nginx pod web-a is terminating");
  });

  it("before any transition: INIT, timestamped with the agent's start", () => {
    const entry = buildStatusEntry(aSnapshot({ state: "Initialize", lastTransition: undefined }), context);
    expect(entry.state).toBe("INIT");
    expect(entry.lastTransitionTime).toBe("2026-11-23T09:00:00Z");
  });

  it("the apply body holds only this node's entry", () => {
    const entry = buildStatusEntry(aSnapshot(), context);
    expect(statusApplyBody("ingress", "edge", entry)).toEqual({
      apiVersion: "ha-nginx.io/v1alpha1",
      kind: "HighAvailabilityVIP",
      metadata: { name: "edge", namespace: "ingress" },
      status: { nodes: [entry] },
    });
  });
});

function anEntry(state: NodeStatusEntry["state"], priority = 100): NodeStatusEntry {
  return { node: "node-1", state, priority, effectivePriority: priority, healthy: true, reason: "r", address: "10.0.0.11", lastTransitionTime: "2026-11-23T10:00:00Z" };
}

/** A write port the test answers by hand. */
class ManualWriter {
  readonly calls: { readonly entry: NodeStatusEntry; readonly signal: AbortSignal; readonly answer: (outcome: WriteOutcome) => void }[] = [];
  readonly write = (entry: NodeStatusEntry, signal: AbortSignal): Promise<WriteOutcome> => new Promise((resolve) => this.calls.push({ entry, signal, answer: resolve }));
  async answer(outcome: WriteOutcome): Promise<void> {
    const call = this.calls.find((_call, index) => index === this.answered);
    if (call === undefined) throw new Error("no write to answer");
    this.answered += 1;
    call.answer(outcome);
    await new Promise((resolve) => setImmediate(resolve));
  }
  answered = 0;
}

const timing = { minInterval: milliseconds(250), initialBackoff: milliseconds(500), maxBackoff: milliseconds(2000), writeTimeout: milliseconds(3000), resyncInterval: milliseconds(5000), maxResyncInterval: milliseconds(20_000) };

/** Lets the publisher's awaits run after the fake clock fired a deadline. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe("status publisher: coalesced, spaced, retried", () => {
  it("writes the first entry at once", () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    new StatusPublisher(clock, writer.write, timing).update(anEntry("BACKUP"));
    expect(writer.calls.map((call) => call.entry.state)).toEqual(["BACKUP"]);
  });

  it("a burst during a write collapses into one write of the latest entry, after the spacing", async () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    const publisher = new StatusPublisher(clock, writer.write, timing);
    publisher.update(anEntry("INIT"));
    publisher.update(anEntry("BACKUP"));
    publisher.update(anEntry("MASTER"));
    publisher.update(anEntry("FAULT"));
    expect(writer.calls).toHaveLength(1);
    await writer.answer({ ok: true });
    expect(writer.calls).toHaveLength(1);
    clock.advance(249);
    expect(writer.calls).toHaveLength(1);
    clock.advance(1);
    expect(writer.calls.map((call) => call.entry.state)).toEqual(["INIT", "FAULT"]);
  });

  it("an unchanged entry is not written again", async () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    const publisher = new StatusPublisher(clock, writer.write, timing);
    publisher.update(anEntry("MASTER"));
    await writer.answer({ ok: true });
    clock.advance(1000);
    publisher.update(anEntry("MASTER"));
    expect(writer.calls).toHaveLength(1);
    expect(publisher.isCurrent).toBe(true);
  });

  it("an entry changed behind the agent's back (a hand edit) is written again after the resync interval, which doubles while it keeps being undone", async () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    const publisher = new StatusPublisher(clock, writer.write, timing);
    publisher.update(anEntry("BACKUP"));
    await writer.answer({ ok: true });
    const reordered = Object.fromEntries(Object.entries(anEntry("BACKUP")).reverse()) as NodeStatusEntry;
    publisher.observed(reordered);
    expect(publisher.isCurrent).toBe(true);
    clock.advance(1000);
    publisher.observed({ ...anEntry("BACKUP"), state: "FAULT" });
    expect(publisher.isCurrent).toBe(false);
    clock.advance(3999);
    expect(writer.calls).toHaveLength(1);
    clock.advance(1);
    expect(writer.calls.map((call) => call.entry.state)).toEqual(["BACKUP", "BACKUP"]);
    // Undone again: the next rewrite waits twice as long, and so on up to the bound.
    await writer.answer({ ok: true });
    publisher.observed(undefined);
    clock.advance(9999);
    expect(writer.calls).toHaveLength(2);
    clock.advance(1);
    expect(writer.calls).toHaveLength(3);
    await writer.answer({ ok: true });
    publisher.observed(undefined);
    clock.advance(20_000);
    await writer.answer({ ok: true });
    publisher.observed(undefined);
    clock.advance(19_999);
    expect(writer.calls).toHaveLength(4);
    clock.advance(1);
    expect(writer.calls).toHaveLength(5);
    // Once the entry stays as written, the interval starts again from resyncInterval.
    await writer.answer({ ok: true });
    publisher.observed(anEntry("BACKUP"));
    publisher.observed({ ...anEntry("BACKUP"), state: "FAULT" });
    clock.advance(5000);
    expect(writer.calls).toHaveLength(6);
  });

  it("never more than 4 writes per second while the state flaps", async () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    const publisher = new StatusPublisher(clock, writer.write, timing);
    for (let tick = 0; tick < 100; tick++) {
      publisher.update(anEntry(tick % 2 === 0 ? "MASTER" : "BACKUP", 100 + tick));
      while (writer.answered < writer.calls.length) await writer.answer({ ok: true });
      clock.advance(10);
    }
    expect(writer.calls.length).toBeLessThanOrEqual(5);
    expect(writer.calls.length).toBeGreaterThanOrEqual(4);
  });

  it("retries a failed write with doubling backoff up to the bound, then resets after a success", async () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    const failures: number[] = [];
    const publisher = new StatusPublisher(clock, writer.write, timing, (_detail, _count, retryIn) => failures.push(retryIn));
    publisher.update(anEntry("MASTER"));
    for (let attempt = 0; attempt < 4; attempt++) {
      await writer.answer({ ok: false, detail: "connection refused" });
      clock.advance(failures.at(-1) ?? 0);
    }
    expect(failures).toEqual([500, 1000, 2000, 2000]);
    expect(publisher.failures).toBe(4);
    expect(writer.calls).toHaveLength(5);
    await writer.answer({ ok: true });
    expect(publisher.failures).toBe(0);
    expect(publisher.isCurrent).toBe(true);
  });

  it("flush skips the spacing and resolves once the latest entry is written", async () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    const publisher = new StatusPublisher(clock, writer.write, timing);
    publisher.update(anEntry("MASTER"));
    await writer.answer({ ok: true });
    publisher.update(anEntry("INIT"));
    expect(writer.calls).toHaveLength(1);
    let isFlushed = false;
    const flushed = publisher.flush().then(() => {
      isFlushed = true;
    });
    expect(writer.calls.map((call) => call.entry.state)).toEqual(["MASTER", "INIT"]);
    expect(isFlushed).toBe(false);
    await writer.answer({ ok: true });
    await flushed;
    expect(isFlushed).toBe(true);
  });

  it("flush retries at once after a failure; stop releases it and nothing more is written", async () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    const publisher = new StatusPublisher(clock, writer.write, timing);
    publisher.update(anEntry("MASTER"));
    await writer.answer({ ok: false, detail: "down" });
    const flushed = publisher.flush();
    expect(writer.calls).toHaveLength(2);
    publisher.stop();
    await flushed;
    await writer.answer({ ok: false, detail: "still down" });
    publisher.update(anEntry("INIT"));
    clock.advance(10_000);
    expect(writer.calls).toHaveLength(2);
  });

  it("a write with no answer by its deadline is aborted, counts as failed and is retried; its late answer is ignored", async () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    const failures: string[] = [];
    const publisher = new StatusPublisher(clock, writer.write, timing, (detail) => failures.push(detail));
    publisher.update(anEntry("MASTER"));
    clock.advance(2999);
    expect(writer.calls[0]?.signal.aborted).toBe(false);
    clock.advance(1);
    await settle();
    expect(writer.calls[0]?.signal.aborted).toBe(true);
    expect(failures).toEqual(["no answer within 3000 ms; aborted"]);
    expect(publisher.failures).toBe(1);
    clock.advance(500);
    expect(writer.calls).toHaveLength(2);
    await writer.answer({ ok: true });
    expect(publisher.failures).toBe(1);
    await writer.answer({ ok: true });
    expect(publisher.failures).toBe(0);
    expect(publisher.isCurrent).toBe(true);
  });

  it("flush during a write keeps that write's deadline", async () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    const publisher = new StatusPublisher(clock, writer.write, timing);
    publisher.update(anEntry("MASTER"));
    publisher.update(anEntry("BACKUP"));
    const flushed = publisher.flush();
    expect(clock.scheduledAt).toBe(3000);
    clock.advance(3000);
    await settle();
    expect(writer.calls[0]?.signal.aborted).toBe(true);
    clock.advance(500);
    expect(writer.calls.map((call) => call.entry.state)).toEqual(["MASTER", "BACKUP"]);
    await writer.answer({ ok: true });
    await writer.answer({ ok: true });
    await flushed;
    expect(publisher.isCurrent).toBe(true);
  });

  it("stop aborts the write in flight", () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    const publisher = new StatusPublisher(clock, writer.write, timing);
    publisher.update(anEntry("MASTER"));
    publisher.stop();
    expect(writer.calls[0]?.signal.aborted).toBe(true);
  });

  it("by default a write aborted at its deadline plus the longest backoff stay within the 5 s catch-up goal", async () => {
    const clock = new FakeTimerClock(0);
    const writer = new ManualWriter();
    const publisher = new StatusPublisher(clock, writer.write);
    publisher.update(anEntry("MASTER"));
    // A long outage: every write fails until the backoff reaches its bound.
    for (let attempt = 0; attempt < 10; attempt++) {
      await writer.answer({ ok: false, detail: "connection refused" });
      clock.advance(defaultPublisherTiming.maxBackoff);
    }
    // The control plane comes back just after this write went out, which then hangs until its deadline.
    const recoveredAt = clock.now();
    const hung = writer.calls.length;
    clock.advance(defaultPublisherTiming.writeTimeout);
    await settle();
    clock.advance(defaultPublisherTiming.maxBackoff);
    expect(writer.calls.length).toBe(hung + 1);
    // The API server's late 504 for the aborted write, then the retry's success.
    await writer.answer({ ok: false, detail: "HTTP 504" });
    await writer.answer({ ok: true });
    expect(publisher.isCurrent).toBe(true);
    expect(clock.now() - recoveredAt).toBeLessThan(5000);
  });
});
