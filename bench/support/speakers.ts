// The two VRRP speakers the benchmarks compare, behind one small handle: our standalone agent and Debian's
// keepalived, configured with the same VRID, priorities, version and advertisement interval, in the same lab.

import { readdirSync, readFileSync } from "node:fs";
import { advertisementIntervalOf, parseDuration } from "../../src/api/v1alpha1/index.js";
import { haVipManifest, startAgent, type AgentProcess } from "../../testing/lab/agent.js";
import { startKeepalived, type KeepalivedProcess } from "../../testing/lab/keepalived.js";
import type { Lab, LabHost } from "../../testing/lab/index.js";

export type SystemName = "ours" | "keepalived";
export const systemNames: readonly SystemName[] = ["ours", "keepalived"];

/** RFC 5798 §6.4 states plus the Fault extension both speakers have; `Stopped` once the process has exited. */
export type Role = "Initialize" | "Backup" | "Master" | "Fault" | "Stopped";

/** What each system advertises at when the configuration says nothing: ours under VRRPv3, keepalived `advert_int 1`. */
export const defaultIntervalMs: Readonly<Record<SystemName, number>> = {
  ours: parseDuration(advertisementIntervalOf({ vrrpVersion: 3 })),
  keepalived: 1000,
};

/** An advertisement interval in ms, or "default": each system left at its own default. */
export type AdvertSetting = number | "default";

export function intervalOf(system: SystemName, setting: AdvertSetting): number {
  return setting === "default" ? defaultIntervalMs[system] : setting;
}

export function settingLabel(setting: AdvertSetting): string {
  return setting === "default" ? `defaults (ours ${defaultIntervalMs.ours} ms, keepalived ${defaultIntervalMs.keepalived} ms)` : `${setting} ms`;
}

export interface PairTimers {
  readonly setting: AdvertSetting;
  /** The VIP without prefix length. */
  readonly vip: string;
  readonly vrid: number;
}

/** The nginx health check each speaker runs; the two are documented side by side in the results. */
export const healthCheck = {
  // Our agent: spec.healthCheck.probe, weight 0 (Fault and hand-over when nginx fails).
  ours: { periodMs: 200, timeoutMs: 100, failureThreshold: 2 },
  // keepalived: the tutorials' fastest track_script (interval 1 s; fall and rise left at keepalived's default of 1).
  // Weight 0 (FAULT) instead of the tutorials' ±2, which cannot move a VIP between priorities 150 and 100.
  keepalived: { intervalSeconds: 1, timeoutSeconds: 1, fall: 1, rise: 1 },
} as const;

export interface Speaker {
  readonly system: SystemName;
  readonly host: LabHost;
  role(): Role;
  /** How many times this process has entered Master so far. */
  masterEntries(): number;
  /** The processes that make up the speaker (keepalived: parent and VRRP child), for RSS and CPU. */
  pids(): number[];
  /** SIGTERM without waiting: our agent hands over, keepalived sends priority 0 and removes the VIP. */
  terminate(): void;
  /** SIGKILL for the process group: no priority 0, the VIP stays on the interface. */
  crash(): Promise<void>;
  readonly exited: Promise<void>;
  /** The speaker's own log lines, for a failed round's dump. */
  logTail(lines: number): string[];
}

export const priorities = { master: 150, backup: 100 } as const;

export async function startSpeaker(lab: Lab, system: SystemName, host: LabHost, priority: number, timers: PairTimers):
Promise<Speaker> {
  return system === "ours" ? startOurs(lab, host, timers) : startTheirs(lab, host, priority, timers);
}

async function startOurs(lab: Lab, host: LabHost, timers: PairTimers): Promise<Speaker> {
  const [master, backup] = lab.nodes;
  if (master === undefined || backup === undefined) throw new Error("the benchmark lab needs two nodes");
  const manifest = haVipManifest({
    name: "bench",
    addresses: [`${timers.vip}/${lab.prefixLength}`],
    virtualRouterID: timers.vrid,
    vrrpVersion: 3,
    ...(timers.setting === "default" ? {} : { advertisementIntervalMs: timers.setting }),
    priorities: { [master.name]: priorities.master, [backup.name]: priorities.backup },
    probe: healthCheck.ours,
    weight: 0,
  });
  const agent = await startAgent(lab, host, { manifest });
  return ourHandle(agent);
}

function ourHandle(agent: AgentProcess): Speaker {
  let hasExited = false;
  const exited = agent.exited.then(() => { hasExited = true; });
  return {
    system: "ours",
    host: agent.host,
    role: () => {
      if (hasExited) return "Stopped";
      const last = agent.transitions().at(-1);
      return last === undefined ? "Initialize" : roleOf(last.to);
    },
    masterEntries: () => agent.transitions().filter((t) => t.to === "Master").length,
    pids: () => [agent.pid],
    terminate: () => agent.signal("SIGTERM"),
    crash: () => agent.kill(),
    exited,
    logTail: (lines) => agent.logs().slice(-lines).map((line) => `${new Date(line.time).toISOString()} ${line.msg}`)
      .concat(agent.stderr().trim() === "" ? [] : [`stderr: ${agent.stderr().trim()}`]),
  };
}

function roleOf(name: string): Role {
  return name === "Backup" || name === "Master" || name === "Fault" ? name : "Initialize";
}

async function startTheirs(lab: Lab, host: LabHost, priority: number, timers: PairTimers): Promise<Speaker> {
  const check = healthCheck.keepalived;
  const proc = await startKeepalived(lab, host, {
    vrid: timers.vrid,
    priority,
    vips: [`${timers.vip}/${lab.prefixLength}`],
    version: 3,
    state: "BACKUP",
    ...(timers.setting === "default" ? {} : { advertIntervalMs: timers.setting }),
    trackScript: {
      name: "chk_nginx",
      script: "/usr/bin/curl -sf -o /dev/null --max-time 1 http://127.0.0.1/healthz",
      ...check,
      weight: 0,
    },
  });
  return theirHandle(proc);
}

function theirHandle(proc: KeepalivedProcess): Speaker {
  let hasExited = false;
  const exited = proc.exited.then(() => { hasExited = true; });
  const entering = new RegExp(`\\(${proc.instanceName}\\) Entering MASTER STATE`);
  return {
    system: "keepalived",
    host: proc.host,
    role: () => {
      if (hasExited) return "Stopped";
      const state = proc.state();
      return state === "INIT" ? "Initialize" : state === "BACKUP" ? "Backup" : state === "MASTER" ? "Master" : "Fault";
    },
    masterEntries: () => proc.logLines().filter((line) => entering.test(line)).length,
    pids: () => [proc.pid, ...childPids(proc.pid)],
    terminate: () => proc.kill("SIGTERM"),
    crash: () => proc.crash(),
    exited,
    logTail: (lines) => proc.logLines().slice(-lines),
  };
}


/** Direct children of `pid`, from /proc/<n>/stat (field 4 is the parent pid; the name in field 2 may hold spaces). */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(Number(entry));
    if (stat?.ppid === pid) children.push(Number(entry));
  }
  return children;
}

export interface ProcStat {
  readonly ppid: number;
  /** utime + stime, in clock ticks. */
  readonly cpuTicks: number;
}

export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // After the name: state(3) ppid(4) ... utime(14) stime(15); fields[0] is field 3.
  const ppid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(ppid) || !Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { ppid, cpuTicks: utime + stime };
}

/** VmRSS and VmHWM (peak) in KiB from /proc/<pid>/status; undefined when the process is gone. */
export function readMemory(pid: number): { readonly rssKiB: number; readonly peakKiB: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  return { rssKiB: field("VmRSS"), peakKiB: field("VmHWM") };
}
