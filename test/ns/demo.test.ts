// The demo end to end, as a user runs it: testing/demo/main.ts in a child process, its JSON summary, and nothing left
// behind afterwards. Needs root and `npm run build` for the agents (npm test builds first).

import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { runCommand } from "../../testing/lab/command.js";
import { sweepLeftoverLabs } from "../../testing/lab/index.js";
import { demoSummarySchema, processesMentioning, runDemo } from "../support/demo-run.js";

const runBoundMs = 90_000;
// Past the bound the demo is killed (SIGINT: it cleans up), so a hang fails the test instead of stalling the run.
const killAfterMs = 150_000;

const summarySchema = demoSummarySchema.extend({ labId: z.string().regex(/^demo[0-9a-f]{6}$/) });

describe("the demo", () => {
  afterAll(async () => {
    // Only for a demo killed past its bound: labs whose owner is gone are swept, live ones are never touched.
    await sweepLeftoverLabs();
  });

  it("runs the whole story within 90 s, meets every step's expectation, leaves no hole on the planned hand-over (at most the in-flight request), and leaves nothing behind", async () => {
    const run = await runDemo(["--json", "--fast"], killAfterMs);
    if (run.code !== 0) console.log(`[demo stderr]\n${run.stderr}`);
    expect({ code: run.code, signal: run.signal }).toEqual({ code: 0, signal: null });
    const summary = summarySchema.parse(JSON.parse(run.stdout));
    console.log(`[measure] demo: ${JSON.stringify(summary.steps.map((s) => [s.step, s.outageMs, s.failedRequests, s.newMaster]))}, ${Math.round(run.elapsedMs)} ms`);

    expect(summary.isOk).toBe(true);
    expect(summary.steps.map((s) => s.step)).toEqual([
      "elect", "kill nginx", "restore nginx", "cut link", "restore link", "handover", "rejoin",
    ]);
    expect(summary.steps.filter((s) => !s.isMet)).toEqual([]);
    expect(summary.steps.map((s) => s.newMaster)).toEqual(["edge-1", "edge-2", "edge-1", "edge-2", "edge-1", "edge-2", "edge-1"]);
    const handover = summary.steps.find((s) => s.step === "handover");
    // No hole; at most the one request whose connection opened on the old master just before the client's ARP entry
    // flipped (reset by the new master; see test/ns/agent/failover.test.ts).
    expect(handover?.failedRequests).toBeLessThanOrEqual(1);
    expect(handover?.outageMs).toBeLessThan(100);
    // Unplanned failures do cost requests: the client really saw them.
    expect(summary.steps.find((s) => s.step === "cut link")?.failedRequests).toBeGreaterThan(0);
    expect(run.elapsedMs).toBeLessThan(runBoundMs);

    const namespaces = await runCommand("ip", ["netns", "list"], { check: true });
    expect(namespaces.stdout.split("\n").filter((line) => line.startsWith(`${summary.labId}-`))).toEqual([]);
    // The lab id is in every agent's, nginx's and poller's command line.
    expect(processesMentioning([summary.labId])).toEqual([]);
  }, killAfterMs + 30_000);
});
