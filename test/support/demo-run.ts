// The demo as scripts/demo.sh runs it, for the tests of its plain and --cluster forms: testing/demo/main.ts through
// tsx in a child process, interrupted past a bound, its JSON summary's schema, and the processes a run may have left
// behind.

import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";

const demoMain = resolve(import.meta.dirname, "../../testing/demo/main.ts");
const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

/** One step of the summary; the --cluster form adds the API's view of the master. */
export const demoStepSchema = z.object({
  step: z.string(),
  expectation: z.string(),
  isMet: z.boolean(),
  outageMs: z.number(),
  failedRequests: z.number(),
  newMaster: z.string().optional(),
  durationMs: z.number(),
  requests: z.number(),
  answeredBy: z.record(z.string(), z.number()),
  error: z.string().optional(),
});

/** What both forms print with --json; each test pins its own lab id pattern. */
export const demoSummarySchema = z.object({
  labId: z.string(),
  vip: z.string(),
  isOk: z.boolean(),
  durationMs: z.number(),
  client: z.object({ sent: z.number(), ok: z.number(), failed: z.number() }),
  steps: z.array(demoStepSchema),
});

export interface DemoRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly elapsedMs: number;
}

/**
 * Runs the demo with `args`, as `node --import tsx testing/demo/main.ts`; the agents it starts are dist/cli.js. Past
 * `killAfterMs` it is sent SIGINT (the demo cleans up on it), so a hang fails the test instead of stalling the run.
 */
export function runDemo(args: readonly string[], killAfterMs: number): Promise<DemoRun> {
  const startedAt = performance.now();
  const child: ChildProcess = spawn(process.execPath, ["--import", tsx, demoMain, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => { stdout += chunk; });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => { stderr += chunk; });
  const interrupt = setTimeout(() => child.kill("SIGINT"), killAfterMs);
  return new Promise((resolveRun) => {
    child.once("close", (code, signal) => {
      clearTimeout(interrupt);
      resolveRun({ code, signal, stdout, stderr, elapsedMs: performance.now() - startedAt });
    });
  });
}

/**
 * Processes whose command line mentions one of `needles`, or with `shouldSearchEnvironment` their environment too
 * (where a pod's or the controller's KUBECONFIG names the run's folders).
 */
export function processesMentioning(needles: readonly string[], { shouldSearchEnvironment = false } = {}): string[] {
  return readdirSync("/proc").filter((entry) => /^[0-9]+$/.test(entry)).flatMap((pid) => {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      const environ = shouldSearchEnvironment ? readFileSync(`/proc/${pid}/environ`, "utf8") : "";
      return needles.some((needle) => cmdline.includes(needle) || environ.includes(needle)) ? [`${pid}: ${cmdline}`] : [];
    } catch {
      return [];
    }
  });
}
