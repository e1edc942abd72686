// The control plane's processes: each component in its own process group with its log in the temp dir, and the
// guards that kill them all when the process that started them ends (exit hook, signal hook, a watchdog for SIGKILL).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, rmSync } from "node:fs";
import { appendFile, copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

export type ComponentName = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler";

export interface StopOptions {
  readonly saveLogsTo?: string;
}

export interface Component {
  readonly name: ComponentName;
  readonly binary: string;
  readonly args: readonly string[];
  readonly logFile: string;
  child: ChildProcess | undefined;
  // Settles once the exit line is in the log, so that saved logs always say how each component ended.
  exitLogged: Promise<void>;
}

// kube-apiserver closes its port at once on SIGTERM but then lingers (~10 s) over hijacked watch connections; the
// closed port is what tests want, so the rest is not worth waiting for.
const stopGraceMs = 3_000;
const pgidFileName = "pgids";
const tempPrefix = "ha-nginx-cp-";

export function makeControlPlaneDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), tempPrefix));
}

// --- process-wide cleanup -------------------------------------------------------------------------------------------

const liveCleanups = new Set<() => void>();
let areExitHooksInstalled = false;

function installExitHooks(): void {
  if (areExitHooksInstalled) return;
  areExitHooksInstalled = true;
  const runAll = (): void => {
    for (const cleanup of liveCleanups) cleanup();
    liveCleanups.clear();
  };
  process.on("exit", runAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      runAll();
      // Re-raise only when nobody else handles it, so the default action (termination) still happens.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

// A SIGKILLed test worker runs no exit hook, so a detached shell watches this process and, when it is gone, kills the
// recorded process groups and removes the dir. It kills a group only if its leader still names the dir, so a
// recycled pid is left alone.
const watchdogScript = `
while kill -0 "$1" 2>/dev/null; do sleep 2; done
for p in $(cat "$2/${pgidFileName}" 2>/dev/null); do
  if grep -qaF -- "$2" "/proc/$p/cmdline" 2>/dev/null; then kill -s KILL -- "-$p" 2>/dev/null; fi
done
rm -rf -- "$2"
`;

function startWatchdog(dir: string): ChildProcess {
  const watchdog = spawn("sh", ["-c", watchdogScript, "ha-nginx-cp-watchdog", String(process.pid), dir], {
    detached: true,
    stdio: "ignore",
  });
  watchdog.unref();
  return watchdog;
}

// Tears down a control plane left running by another process (`testbed down`).
export async function destroyControlPlaneDir(dir: string): Promise<void> {
  if (!dir.startsWith(join(tmpdir(), tempPrefix))) throw new Error(`${dir} is not a control-plane temp dir`);
  const pgids = await readFile(join(dir, pgidFileName), "utf8").catch(() => "");
  for (const pgid of pgids.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
    const cmdline = await readFile(`/proc/${pgid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(dir)) signalGroup(Number(pgid), "SIGKILL");
  }
  // Stragglers outside the recorded groups, e.g. a component whose start was cut short.
  for (const pid of await processesReferencing(dir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 5 });
}

// Pids of live processes whose command line mentions `text` (every component names its temp dir in its flags).
export async function processesReferencing(text: string): Promise<readonly number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

// --- one control plane's components ---------------------------------------------------------------------------------

export interface ComponentProcesses {
  define(name: ComponentName, binary: string, args: readonly string[], logFile: string): Component;
  start(component: Component): Promise<void>;
  stop(component: Component): Promise<void>;
  // Stops every component and removes the dir.
  stopAll(options?: StopOptions): Promise<void>;
  // The pids of the components that are running.
  pids(): readonly number[];
}

// With isTiedToProcess, everything in `dir` is killed and removed when this process exits, crashes or is killed.
export function trackComponents(dir: string, isTiedToProcess: boolean): ComponentProcesses {
  const components = new Map<ComponentName, Component>();
  let watchdog: ChildProcess | undefined;
  let isStopped = false;

  const recordPgids = async (): Promise<void> => {
    const pgids = [...components.values()].flatMap((c) => (c.child?.pid === undefined ? [] : [c.child.pid]));
    await writeFile(join(dir, pgidFileName), `${pgids.join("\n")}\n`);
  };

  const killAllNow = (): void => {
    if (watchdog?.pid !== undefined) signalGroup(watchdog.pid, "SIGKILL");
    for (const component of components.values()) {
      if (component.child?.pid !== undefined) signalGroup(component.child.pid, "SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  };

  if (isTiedToProcess) {
    installExitHooks();
    liveCleanups.add(killAllNow);
    watchdog = startWatchdog(dir);
  }

  const stop = async (component: Component): Promise<void> => {
    const child = component.child;
    if (child === undefined) return;
    await stopChild(child, stopGraceMs);
    await component.exitLogged;
    component.child = undefined;
    if (!isStopped) await recordPgids();
  };

  return {
    define(name, binary, args, logFile) {
      const component: Component = { name, binary, args, logFile, child: undefined, exitLogged: Promise.resolve() };
      components.set(name, component);
      return component;
    },
    async start(component) {
      if (isStopped) throw new Error("the control plane was stopped");
      const running = component.child;
      if (running !== undefined && running.exitCode === null && running.signalCode === null) {
        throw new Error(`${component.name} is already running (pid ${String(running.pid)})`);
      }
      await spawnComponent(component);
      await recordPgids();
    },
    stop,
    // The exit hook and the watchdog stay armed until the end, so a process that dies halfway through stop() still
    // leaves nothing behind.
    async stopAll(stopOptions = {}) {
      if (isStopped) return;
      isStopped = true;
      // Reverse start order: clients before the API server, the API server before etcd.
      for (const name of ["kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"] as const) {
        const component = components.get(name);
        if (component !== undefined) await stop(component);
      }
      if (stopOptions.saveLogsTo !== undefined) await saveLogs(components.values(), stopOptions.saveLogsTo);
      await rm(dir, { recursive: true, force: true, maxRetries: 5 });
      if (watchdog !== undefined) await stopChild(watchdog, 0);
      liveCleanups.delete(killAllNow);
    },
    pids: () =>
      [...components.values()].flatMap((c) =>
        c.child?.pid !== undefined && c.child.exitCode === null && c.child.signalCode === null ? [c.child.pid] : [],
      ),
  };
}

async function spawnComponent(component: Component): Promise<void> {
  await appendFile(component.logFile, `=== ${new Date().toISOString()} starting ${component.name}\n`);
  const fd = openSync(component.logFile, "a");
  try {
    const child = spawn(component.binary, component.args, { detached: true, stdio: ["ignore", fd, fd] });
    child.unref();
    child.on("error", () => undefined);
    component.exitLogged = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        const line = `=== ${new Date().toISOString()} ${component.name} exited code=${String(code)} signal=${String(signal)}\n`;
        void appendFile(component.logFile, line).catch(() => undefined).then(() => resolve());
      });
    });
    component.child = child;
  } finally {
    closeSync(fd);
  }
}

async function saveLogs(components: Iterable<Component>, target: string): Promise<void> {
  await mkdir(target, { recursive: true });
  for (const component of components) {
    await copyFile(component.logFile, join(target, basename(component.logFile))).catch(() => undefined);
  }
}

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  if (child.exitCode !== null || child.signalCode !== null) {
    // The leader is gone, but anything it forked into its group may not be.
    signalGroup(pid, "SIGKILL");
    return;
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // Children are unref'd so that a script may end while they run; waiting for one must keep this process alive.
  child.ref();
  signalGroup(pid, graceMs > 0 ? "SIGTERM" : "SIGKILL");
  const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
  signalGroup(pid, "SIGKILL");
}
