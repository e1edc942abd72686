import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { runCommand, runSync, runSyncOutput } from "./command.js";

/**
 * Labs that are still alive in this process, so that an exit (normal, uncaught exception, SIGINT, SIGTERM) never
 * leaves namespaces or processes behind. A crash by SIGKILL cannot be caught: `sweepLeftoverLabs()` covers that.
 */
export interface RegisteredLab {
  readonly id: string;
  destroySync(): void;
}

export const labStateDir = "/run/ha-nginx-lab";

const stateSchema = z.object({
  pid: z.number().int().positive(),
  /** The owner's start time in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid apart. */
  pidStartTicks: z.string().optional(),
  namespaces: z.array(z.string().min(1)),
  tmpDir: z.string().min(1),
});

export type LabState = z.infer<typeof stateSchema>;

const liveLabs = new Map<string, RegisteredLab>();
let isHooked = false;

export function registerLab(lab: RegisteredLab, state: LabState): void {
  mkdirSync(labStateDir, { recursive: true, mode: 0o700 });
  writeFileSync(statePath(lab.id), JSON.stringify(state));
  liveLabs.set(lab.id, lab);
  hookProcess();
}

export function unregisterLab(id: string): void {
  liveLabs.delete(id);
  rmSync(statePath(id), { force: true });
}

function statePath(id: string): string {
  return join(labStateDir, `${id}.json`);
}

function destroyAllSync(): void {
  for (const lab of [...liveLabs.values()]) {
    lab.destroySync();
  }
}

function hookProcess(): void {
  if (isHooked) return;
  isHooked = true;
  // 'exit' also fires after an uncaught exception, so no 'uncaughtException' listener is added: one would keep the
  // process alive, and under a test runner that catches exceptions it would tear labs down while tests still run.
  process.on("exit", destroyAllSync);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const onSignal = (): void => {
      destroyAllSync();
      process.removeListener(signal, onSignal);
      // Only re-raise when nobody else handles the signal, so the default (exit) still happens without us.
      if (process.listenerCount(signal) === 0) {
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

/** The start time of a process in clock ticks since boot, or undefined when it is gone. */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may itself hold spaces and parentheses; starttime is field 22.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function isOwnerAlive(state: LabState): boolean {
  if (!isProcessAlive(state.pid)) return false;
  return state.pidStartTicks === undefined || processStartTicks(state.pid) === state.pidStartTicks;
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Kills every process inside the namespace (whoever started it) and deletes it. Never throws. */
export async function deleteNamespace(netns: string): Promise<void> {
  const pids = await runCommand("ip", ["netns", "pids", netns]);
  for (const pid of parsePids(pids.stdout)) {
    killQuietly(pid, "SIGKILL");
  }
  await runCommand("ip", ["netns", "delete", netns]);
}

export function deleteNamespaceSync(netns: string): void {
  const listed = runSyncOutput("ip", ["netns", "pids", netns]);
  for (const pid of parsePids(listed)) {
    killQuietly(pid, "SIGKILL");
  }
  runSync("ip", ["netns", "delete", netns]);
}

function parsePids(text: string): number[] {
  return text.split(/\s+/).filter((word) => /^[0-9]+$/.test(word)).map(Number);
}

export function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone: that is the goal.
  }
}

/**
 * Deletes what labs of dead processes left behind (a test run killed with SIGKILL, a crashed demo): their namespaces,
 * with any process still inside, their temp dirs and state files. Labs whose owner still runs are never touched.
 * Returns the ids it removed.
 */
export async function sweepLeftoverLabs(): Promise<string[]> {
  let files: string[];
  try {
    files = readdirSync(labStateDir).filter((name) => name.endsWith(".json"));
  } catch {
    return [];
  }
  const swept: string[] = [];
  for (const file of files) {
    const id = file.slice(0, -".json".length);
    if (liveLabs.has(id)) continue;
    const state = readState(join(labStateDir, file));
    if (state !== undefined && isOwnerAlive(state)) continue;
    for (const netns of state?.namespaces ?? []) {
      await deleteNamespace(netns);
    }
    if (state !== undefined) rmSync(state.tmpDir, { recursive: true, force: true });
    rmSync(join(labStateDir, file), { force: true });
    swept.push(id);
  }
  return swept;
}

function readState(path: string): LabState | undefined {
  try {
    const parsed = stateSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
