import type { ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { z } from "zod";
import type { Lab, OutageWindow, Probe, ProbeOptions, ProbeReport } from "./types.js";

const lineSchema = z.union([
  z.object({ t: z.number(), ok: z.literal(true), by: z.string() }),
  z.object({ t: z.number(), ok: z.literal(false), err: z.string() }),
]);

type ProbeLine = z.infer<typeof lineSchema>;

const readyTimeoutMs = 30_000;
const stopGraceMs = 3_000;

/** The probe script next to this file, loaded through tsx: testing/ is never compiled. */
function probeCommand(): string[] {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  return [process.execPath, "--import", tsx, join(dirname(fileURLToPath(import.meta.url)), "probe-main.ts")];
}

export async function startProbe(lab: Lab, url: string, opts: ProbeOptions = {}): Promise<Probe> {
  const [cmd = process.execPath, ...args] = probeCommand();
  return startProbeProcess((probeArgs) => lab.spawn(lab.client, cmd, [...args, ...probeArgs]), url, opts);
}

/**
 * Runs probe-main wherever `spawnProbe` puts it (a lab namespace, a container) with its arguments appended, and reads
 * its lines from the child's stdout.
 */
export async function startProbeProcess(spawnProbe: (probeArgs: readonly string[]) => ChildProcess, url: string, opts: ProbeOptions = {}): Promise<Probe> {
  const intervalMs = opts.intervalMs ?? 10;
  const timeoutMs = opts.timeoutMs ?? 100;
  const child = spawnProbe([url, String(intervalMs), String(timeoutMs)]);
  const lines: ProbeLine[] = [];
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => { stderr += chunk; });
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`the probe sent nothing within ${readyTimeoutMs} ms: ${stderr.trim()}`));
    }, readyTimeoutMs);
    if (child.stdout === null) throw new Error("the probe's stdout is not a pipe");
    createInterface({ input: child.stdout }).on("line", (text) => {
      const parsed = lineSchema.safeParse(safeJson(text));
      if (!parsed.success) return;
      lines.push(parsed.data);
      clearTimeout(timer);
      resolve();
    });
    void closed.then(() => {
      clearTimeout(timer);
      reject(new Error(`the probe exited before its first request (code ${child.exitCode}): ${stderr.trim()}`));
    });
  }).catch(async (err: unknown) => {
    await stopChild(child, closed);
    throw err;
  });

  let report: ProbeReport | undefined;
  return {
    snapshot: () => report ?? summarizeProbe(lines, Date.now()),
    async stop(): Promise<ProbeReport> {
      if (report === undefined) {
        // A window still open is closed at the request to stop, not at the child's exit: a probe container takes
        // seconds to go on a loaded machine, and a single failed request just before the stop grew by all of them.
        const stoppedAtMs = Date.now();
        await stopChild(child, closed);
        report = summarizeProbe(lines, stoppedAtMs);
      }
      return report;
    },
  };
}

async function stopChild(child: ChildProcess, closed: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), stopGraceMs); });
  const isClosed = await Promise.race([closed.then(() => true), graceOver]);
  clearTimeout(timer);
  if (!isClosed) {
    child.kill("SIGKILL");
    await closed;
  }
}

/** JSON.parse that answers undefined for text that is not JSON. */
export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** An outage window runs from the first failed request to the first one that succeeds again. */
export function summarizeProbe(lines: readonly ProbeLine[], stoppedAtMs: number): ProbeReport {
  const windows: OutageWindow[] = [];
  const answeredBy: Record<string, number> = {};
  const failedWith: Record<string, number> = {};
  let ok = 0;
  let open: { startMs: number; failed: number } | undefined;
  for (const line of lines) {
    if (line.ok) {
      ok += 1;
      answeredBy[line.by] = (answeredBy[line.by] ?? 0) + 1;
      if (open !== undefined) {
        windows.push({ startMs: open.startMs, endMs: line.t, failed: open.failed, isOpen: false });
        open = undefined;
      }
    } else {
      failedWith[line.err] = (failedWith[line.err] ?? 0) + 1;
      open ??= { startMs: line.t, failed: 0 };
      open.failed += 1;
    }
  }
  if (open !== undefined) {
    windows.push({ startMs: open.startMs, endMs: Math.max(stoppedAtMs, open.startMs), failed: open.failed, isOpen: true });
  }
  return {
    sent: lines.length,
    ok,
    failed: lines.length - ok,
    windows,
    maxOutageMs: windows.reduce((max, w) => Math.max(max, w.endMs - w.startMs), 0),
    answeredBy,
    failedWith,
  };
}
