import { describe, expect, it, vi } from "vitest";
import { MonotonicClock } from "../../../src/agent/adapters/clock.js";
import { milliseconds } from "../../../src/vrrp/units.js";

// Real timers, so this lives with the host tests rather than the unit tests (which may not sleep).
describe("monotonic clock", () => {
  it("calls back no earlier than the deadline", async () => {
    const clock = new MonotonicClock();
    const deadline = milliseconds(clock.now() + 30);
    const firedAt = await new Promise<number>((resolve) => clock.schedule(deadline, () => resolve(clock.now())));
    expect(firedAt).toBeGreaterThanOrEqual(deadline);
    expect(firedAt - deadline).toBeLessThan(1_000);
  });

  it("keeps one timer: a new schedule replaces the old one, and cancel stops it", async () => {
    const clock = new MonotonicClock();
    const fired: string[] = [];
    clock.schedule(milliseconds(clock.now() + 10), () => fired.push("replaced"));
    await new Promise<void>((resolve) => clock.schedule(milliseconds(clock.now() + 40), () => {
      fired.push("latest");
      resolve();
    }));
    clock.schedule(milliseconds(clock.now() + 10), () => fired.push("cancelled"));
    clock.cancel();
    clock.cancel();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(fired).toEqual(["latest"]);
  });

  it("fires at once for a deadline in the past, and never goes back", async () => {
    const clock = new MonotonicClock();
    const first = clock.now();
    await new Promise<void>((resolve) => clock.schedule(milliseconds(first - 1_000), resolve));
    expect(clock.now()).toBeGreaterThanOrEqual(first);
  });

  it("shares one Node timer: clocks moving their deadlines later arm none, and deadlines that meet fire in one pass", async () => {
    const clocks = Array.from({ length: 100 }, () => new MonotonicClock());
    const at = milliseconds(clocks[0]!.now() + 50);
    const fired: number[] = [];
    for (const clock of clocks) clock.schedule(at, () => fired.push(-1));
    const setTimeoutCalls = vi.spyOn(globalThis, "setTimeout");
    try {
      clocks.forEach((clock, index) =>
        clock.schedule(milliseconds(at + 10), () => {
          fired.push(index);
          if (index === 0) setImmediate(() => fired.push(-2));
        }),
      );
      expect(setTimeoutCalls).not.toHaveBeenCalled();
    } finally {
      setTimeoutCalls.mockRestore();
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fired).toEqual([...clocks.keys(), -2]);
  });

  it("with its last deadline cancelled, no timer keeps the process alive", () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length;
    const before = timers();
    const clock = new MonotonicClock();
    clock.schedule(milliseconds(clock.now() + 60_000), () => undefined);
    expect(timers()).toBe(before + 1);
    clock.cancel();
    expect(timers()).toBe(before);
  });

  it("a deadline that an earlier callback of the same pass moved or cancelled does not run", async () => {
    const [first, moved, cancelled] = [new MonotonicClock(), new MonotonicClock(), new MonotonicClock()];
    const at = milliseconds(first.now() + 20);
    const fired: string[] = [];
    const done = new Promise<void>((resolve) => {
      first.schedule(at, () => {
        fired.push("first");
        moved.schedule(milliseconds(first.now() + 20), () => {
          fired.push("moved, new");
          resolve();
        });
        cancelled.cancel();
      });
    });
    moved.schedule(at, () => fired.push("moved, old"));
    cancelled.schedule(at, () => fired.push("cancelled"));
    await done;
    expect(fired).toEqual(["first", "moved, new"]);
  });
});
