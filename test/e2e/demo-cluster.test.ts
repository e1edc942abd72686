// The demo's --cluster form end to end, as a user runs it: testing/demo/main.ts in a child process on the Kubernetes
// test bed (API server, controller, nginx DaemonSet, agent DaemonSet), its JSON summary, the `kubectl get havip` output
// it printed along the way, and nothing left behind afterwards. Needs root, `npm run build` and the Kubernetes binaries.

import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { runCommand } from "../../testing/lab/command.js";
import { sweepLeftoverLabs, waitFor } from "../../testing/lab/index.js";
import { demoStepSchema, demoSummarySchema, processesMentioning, runDemo } from "../support/demo-run.js";

const runBoundMs = 180_000;
// Past the bound the demo is interrupted (SIGINT: it tears the cluster down), so a hang fails instead of stalling.
const killAfterMs = 240_000;

const summarySchema = demoSummarySchema.extend({
  labId: z.string().regex(/^tb[0-9a-f]{6}$/),
  steps: z.array(demoStepSchema.extend({ apiMaster: z.string().optional() })),
  created: z.object({ namespaces: z.array(z.string()).min(1), paths: z.array(z.string()).min(1) }),
});

describe("the demo --cluster", () => {
  afterAll(async () => {
    // Only for a demo killed past its bound: labs whose owner is gone are swept, live ones are never touched.
    await sweepLeftoverLabs();
  });

  it("runs the story on the test bed, the API and kubectl follow every step, the planned move leaves no hole (at most the in-flight request), and nothing is left", async () => {
    const run = await runDemo(["--cluster", "--json", "--fast"], killAfterMs);
    if (run.code !== 0) console.log(`[demo --cluster stderr]\n${run.stderr.slice(-20_000)}`);
    expect({ code: run.code, signal: run.signal }).toEqual({ code: 0, signal: null });
    const summary = summarySchema.parse(JSON.parse(run.stdout));
    console.log(`[measure] demo --cluster: ${JSON.stringify(summary.steps.map((s) => [s.step, s.outageMs, s.failedRequests, s.newMaster, s.durationMs]))}, ` +
      `${Math.round(run.elapsedMs)} ms`);

    expect(summary.isOk).toBe(true);
    expect(summary.steps.map((s) => s.step)).toEqual([
      "elect", "kill nginx", "restore nginx", "cut link", "restore link", "handover", "rejoin",
    ]);
    expect(summary.steps.filter((s) => !s.isMet)).toEqual([]);
    // One Master after every step, by the agents' own report, and the API (kubectl's MASTER column) agrees.
    const masters = summary.steps.map((s) => s.newMaster ?? "");
    for (const step of summary.steps) {
      expect(step.newMaster, step.step).toMatch(/^node-[1-3]$/);
      expect(step.apiMaster, step.step).toBe(step.newMaster);
    }
    // A failure moves the VIP; with preemption Never, a recovery does not move it back.
    const [elected, killed, nginxBack, cut, linkBack, handedOver, rejoined] = masters;
    expect(killed).not.toBe(elected);
    expect(nginxBack).toBe(killed);
    expect(cut).not.toBe(nginxBack);
    expect(linkBack).toBe(cut);
    expect(handedOver).not.toBe(linkBack);
    expect(rejoined).toBe(handedOver);

    const step = (name: string): (typeof summary.steps)[number] | undefined => summary.steps.find((s) => s.step === name);
    // The planned move: no hole; at most the one request whose connection opened on the old master just before the
    // client's ARP entry flipped (reset by the new master; see test/ns/agent/failover.test.ts).
    expect(step("handover")?.failedRequests).toBeLessThanOrEqual(1);
    expect(step("handover")?.outageMs).toBeLessThan(100);
    // Unplanned failures do cost requests: the client really saw them.
    expect(step("cut link")?.failedRequests).toBeGreaterThan(0);
    expect(step("kill nginx")?.failedRequests).toBeGreaterThan(0);
    expect(run.elapsedMs).toBeLessThan(runBoundMs);

    // The live view printed `kubectl get havip` as it changed: every Master of the story shows in its MASTER column.
    expect(run.stderr).toContain("$ kubectl get havip -n edge");
    expect(run.stderr).toMatch(/^NAME\s+VIP\s+MASTER\s+READY\s+AGE$/m);
    const printedMasters = new Set([...run.stderr.matchAll(/^web-vip\s+\S+\s+(node-\d)\s/gm)].map((match) => match[1]));
    expect([...printedMasters].sort()).toEqual([...new Set(masters)].sort());

    const namespaces = await runCommand("ip", ["netns", "list"], { check: true });
    const listed = namespaces.stdout.split("\n").map((line) => line.split(" ")[0] ?? "");
    expect(listed.filter((name) => name.startsWith(`${summary.labId}-`) || summary.created.namespaces.includes(name))).toEqual([]);
    expect(summary.created.paths.filter((path) => existsSync(path))).toEqual([]);
    // The control plane's watchdog notices the demo's exit within its 2 s poll, then goes too. The lab id is in every
    // namespace process's command line (`ip netns exec <lab>-…`), the run's folders in the environment of the control
    // plane, the pods and the controller (their KUBECONFIG lives in the bed's scratch folder).
    let left: string[] = [];
    await waitFor(() => (left = processesMentioning([summary.labId, ...summary.created.paths], { shouldSearchEnvironment: true })).length === 0, {
      timeoutMs: 10_000, intervalMs: 250, what: "the demo's processes to be gone",
    }).catch(() => undefined);
    expect(left).toEqual([]);
  }, killAfterMs + 60_000);
});
