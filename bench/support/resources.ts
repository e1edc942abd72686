// RSS and CPU share of a speaker's processes, from /proc: VmRSS/VmHWM and utime+stime over a window.

import { spawnSync } from "node:child_process";
import type { LabHost } from "../../testing/lab/index.js";
import { readMemory, readProcStat } from "./speakers.js";
import { sleep } from "./bed.js";

/** What is measured on one node: a Speaker, or the scale benchmark's one process serving many routers. */
export interface Measured {
  readonly host: LabHost;
  role(): string;
  pids(): number[];
}

export interface ResourceSample {
  readonly node: string;
  readonly role: string;
  readonly processes: number;
  /** Summed over the processes (keepalived's parent and child share pages, so the sum overstates its footprint). */
  readonly rssKiB: number;
  readonly peakKiB: number;
  /** Percent of one core over the window. */
  readonly cpuPercent: number;
  readonly windowMs: number;
}

function clockTicksPerSecond(): number {
  const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const ticks = Number(out.stdout.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
}

/** Samples every speaker over the same window, so the figures share the machine's conditions. */
export async function sampleResources(speakers: readonly Measured[], windowMs: number): Promise<ResourceSample[]> {
  const ticksPerSecond = clockTicksPerSecond();
  const pidsOf = speakers.map((speaker) => speaker.pids());
  const ticksOf = (pids: readonly number[]): number => pids.reduce((sum, pid) => sum + (readProcStat(pid)?.cpuTicks ?? 0), 0);
  const startTicks = pidsOf.map(ticksOf);
  const startedAt = performance.now();
  await sleep(windowMs);
  const elapsedMs = performance.now() - startedAt;
  return speakers.map((speaker, i) => {
    const pids = pidsOf[i] ?? [];
    const memory = pids.map(readMemory);
    const deltaTicks = ticksOf(pids) - (startTicks[i] ?? 0);
    return {
      node: speaker.host.name,
      role: speaker.role(),
      processes: pids.length,
      rssKiB: memory.reduce((sum, m) => sum + (m?.rssKiB ?? 0), 0),
      peakKiB: memory.reduce((sum, m) => sum + (m?.peakKiB ?? 0), 0),
      cpuPercent: (deltaTicks / ticksPerSecond) / (elapsedMs / 1000) * 100,
      windowMs: Math.round(elapsedMs),
    };
  });
}

export interface SteadySample extends ResourceSample {
  /** Percent of one core over the warm-up before the window; undefined without one. */
  readonly warmupCpuPercent: number | undefined;
}

/**
 * The window after a warm-up of the same processes. V8 goes on compiling an agent's hot paths for a minute or so after
 * the routers settle, a cost a long-running agent pays once, so the steady figure comes from the window after it.
 */
export async function sampleSteadyResources(speakers: readonly Measured[], warmupMs: number, windowMs: number): Promise<SteadySample[]> {
  const warmup = warmupMs > 0 ? await sampleResources(speakers, warmupMs) : [];
  const steady = await sampleResources(speakers, windowMs);
  return steady.map((sample, i) => ({ ...sample, warmupCpuPercent: warmup[i]?.cpuPercent }));
}

/** "0.12 % in the warm-up, 0.13 %", or the window's figure alone without a warm-up: the progress lines' CPU. */
export function cpuText(sample: SteadySample): string {
  const window = `${sample.cpuPercent.toFixed(2)} %`;
  return sample.warmupCpuPercent === undefined ? window : `${sample.warmupCpuPercent.toFixed(2)} % in the warm-up, ${window}`;
}
