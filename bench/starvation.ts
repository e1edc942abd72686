// Starvation benchmark: a settled pair at a 250 ms advert (the VRRPv3 default) while stress-ng saturates both cores
// (cpu and vm). Counts false takeovers (the backup entering Master while the master runs) and, for our agent, the timer
// lateness histogram from /metrics.
//
//   npx tsx bench/starvation.ts [--minutes 10] [--systems ours[,keepalived]] [--interval 250]
//
// Root only. Needs `npm run build` first and Debian's stress-ng.

import { spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { vipHolders } from "../testing/lab/agent.js";
import type { LabHost } from "../testing/lab/index.js";
import { createBed, sleep, type Bed } from "./support/bed.js";
import { markdownTable, parseList, parsePositiveInts, writeResults } from "./support/report.js";
import { systemNames, type Role, type SystemName } from "./support/speakers.js";

const stressArgs = ["--cpu", "2", "--vm", "1", "--vm-bytes", "256M"];
const metricsPort = 9750;
const latenessMetric = "ha_nginx_timer_lateness_seconds";
const sampleEveryMs = 250;
const progressEveryMs = 30_000;

interface Histogram {
  /** Upper bound (seconds, Infinity for +Inf) → cumulative count. */
  readonly buckets: ReadonlyMap<number, number>;
  readonly count: number;
  readonly sum: number;
}

interface RunResult {
  readonly system: SystemName;
  readonly minutes: number;
  readonly falseTakeovers: number;
  readonly masterLeft: number;
  readonly transitions: readonly string[];
  readonly dualHolderSamples: number;
  readonly samples: number;
  readonly lateness?: Histogram;
  readonly loadAverage: string;
}

function options() {
  const { values } = parseArgs({
    options: {
      minutes: { type: "string" },
      systems: { type: "string" },
      interval: { type: "string" },
    },
  });
  return {
    minutes: parsePositiveInts(values.minutes ?? "10", "--minutes")[0] ?? 10,
    systems: parseList(values.systems ?? "ours", systemNames, "system"),
    intervalMs: parsePositiveInts(values.interval ?? "250", "--interval")[0] ?? 250,
  };
}

function parseHistogram(text: string, name: string): Histogram {
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const line of text.split("\n")) {
    const bucket = new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\}\\s+(\\S+)`).exec(line);
    if (bucket !== null) {
      const le = bucket[1] === "+Inf" ? Infinity : Number(bucket[1]);
      buckets.set(le, (buckets.get(le) ?? 0) + Number(bucket[2]));
      continue;
    }
    const total = new RegExp(`^${name}_(count|sum)(?:\\{[^}]*\\})?\\s+(\\S+)`).exec(line);
    if (total?.[1] === "count") count += Number(total[2]);
    if (total?.[1] === "sum") sum += Number(total[2]);
  }
  return { buckets, count, sum };
}

function subtract(after: Histogram, before: Histogram): Histogram {
  const buckets = new Map<number, number>();
  for (const [le, value] of after.buckets) buckets.set(le, value - (before.buckets.get(le) ?? 0));
  return { buckets, count: after.count - before.count, sum: after.sum - before.sum };
}

function add(a: Histogram, b: Histogram): Histogram {
  const buckets = new Map<number, number>(a.buckets);
  for (const [le, value] of b.buckets) buckets.set(le, (buckets.get(le) ?? 0) + value);
  return { buckets, count: a.count + b.count, sum: a.sum + b.sum };
}

async function latenessOf(bed: Bed, hosts: readonly LabHost[]): Promise<Histogram> {
  let total: Histogram = { buckets: new Map(), count: 0, sum: 0 };
  for (const host of hosts) {
    const answer = await bed.lab.httpGet(host, `http://127.0.0.1:${metricsPort}/metrics`, { timeoutMs: 5_000 });
    if (answer.status !== 200) throw new Error(`GET /metrics on ${host.name} answered ${answer.status}`);
    total = add(total, parseHistogram(answer.body, latenessMetric));
  }
  return total;
}

/** "count above 10 ms / 50 ms / 100 ms / 250 ms", and the bucket the slowest fire fell in. */
function describeLateness(h: Histogram): { above: string; worst: string } {
  const above = [0.01, 0.05, 0.1, 0.25].map((le) => String(h.count - (h.buckets.get(le) ?? 0))).join(" / ");
  const bounds = [...h.buckets.keys()].sort((a, b) => a - b);
  let worst = "–";
  let previous = 0;
  for (const le of bounds) {
    const inBucket = (h.buckets.get(le) ?? 0) - (h.buckets.get(previous) ?? 0);
    if (inBucket > 0) worst = le === Infinity ? `> ${previous * 1000} ms` : `≤ ${le * 1000} ms`;
    previous = le;
  }
  return { above, worst };
}

async function runStress(bed: Bed, system: SystemName, minutes: number, intervalMs: number): Promise<RunResult> {
  console.log(`\n== ${system}, advert ${intervalMs} ms: starting the pair`);
  await bed.startPair(system, intervalMs);
  const master = bed.speakerOf(bed.master);
  const backup = bed.speakerOf(bed.backup);
  const latenessBefore = system === "ours" ? await latenessOf(bed, [bed.master, bed.backup]) : undefined;
  const backupEntriesBefore = backup.masterEntries();
  const transitions: string[] = [];
  const startedAt = Date.now();
  let roles: [Role, Role] = [master.role(), backup.role()];
  let masterLeft = 0;
  let dualHolderSamples = 0;
  let samples = 0;

  console.log(`   stress-ng ${stressArgs.join(" ")} for ${minutes} min`);
  const stress = bed.lab.spawn(bed.lab.client, "stress-ng", [...stressArgs, "--timeout", `${minutes * 60}s`, "--quiet"], { stdio: "ignore" });
  const stressExited = new Promise<void>((resolve) => stress.once("exit", () => resolve()));
  let isStressRunning = true;
  void stressExited.then(() => { isStressRunning = false; });
  let nextProgress = startedAt + progressEveryMs;
  let lastLoad = "";
  while (isStressRunning) {
    await sleep(sampleEveryMs);
    const now: [Role, Role] = [master.role(), backup.role()];
    if (now[0] !== roles[0] || now[1] !== roles[1]) {
      const line = `+${((Date.now() - startedAt) / 1000).toFixed(1)} s n1 ${roles[0]}→${now[0]}, n2 ${roles[1]}→${now[1]}`;
      transitions.push(line);
      console.log(`   ${line}`);
      if (roles[0] === "Master" && now[0] !== "Master") masterLeft += 1;
      roles = now;
    }
    const holders = await vipHolders(bed.lab, bed.vip);
    samples += 1;
    if (holders.length > 1) dualHolderSamples += 1;
    if (Date.now() >= nextProgress) {
      nextProgress += progressEveryMs;
      lastLoad = loadavg().map((l) => l.toFixed(1)).join(" ");
      console.log(`   ${Math.round((Date.now() - startedAt) / 1000)} s: n2 entered Master ${backup.masterEntries() - backupEntriesBefore}×, ` +
        `dual-holder samples ${dualHolderSamples}/${samples}, load ${lastLoad}`);
    }
  }
  const latenessAfter = system === "ours" ? await latenessOf(bed, [bed.master, bed.backup]) : undefined;
  const result: RunResult = {
    system,
    minutes,
    falseTakeovers: backup.masterEntries() - backupEntriesBefore,
    masterLeft,
    transitions,
    dualHolderSamples,
    samples,
    loadAverage: lastLoad === "" ? loadavg().map((l) => l.toFixed(1)).join(" ") : lastLoad,
    ...(latenessBefore !== undefined && latenessAfter !== undefined ? { lateness: subtract(latenessAfter, latenessBefore) } : {}),
  };
  await bed.stopPair();
  return result;
}

function resultTable(results: readonly RunResult[], intervalMs: number): string {
  return markdownTable([
    "system", "advert", "minutes", "false takeovers (n2 entered Master)", "n1 left Master", "VIP on both nodes (samples)",
    "timer fires", "late > 10 / 50 / 100 / 250 ms", "slowest fire", "load avg (1/5/15)",
  ], results.map((r) => {
    const lateness = r.lateness === undefined ? { above: "n/a", worst: "n/a" } : describeLateness(r.lateness);
    return [r.system, `${intervalMs} ms`, String(r.minutes), String(r.falseTakeovers), String(r.masterLeft),
      `${r.dualHolderSamples}/${r.samples}`, r.lateness === undefined ? "n/a" : String(r.lateness.count), lateness.above, lateness.worst, r.loadAverage];
  }));
}

async function main(): Promise<void> {
  const opts = options();
  if (process.getuid?.() !== 0) throw new Error("run as root: the lab creates network namespaces");
  if (spawnSync("which", ["stress-ng"]).status !== 0) {
    console.error("stress-ng is missing: install Debian's package (apt-get install stress-ng)");
    process.exitCode = 2;
    return;
  }
  const startedAt = new Date();
  const bed = await createBed("bs");
  const results: RunResult[] = [];
  try {
    for (const system of opts.systems) results.push(await runStress(bed, system, opts.minutes, opts.intervalMs));
  } finally {
    await bed.destroy();
  }
  const text = [
    `# Starvation benchmark, ${startedAt.toISOString()}`,
    "",
    `Two lab nodes (n1 priority 150, n2 priority 100), VRRPv3 multicast at ${opts.intervalMs} ms, nginx on each, the nginx health checks of the failover benchmark; ` +
      `\`stress-ng ${stressArgs.join(" ")}\` on the 2 shared cores for ${opts.minutes} min per system. Roles and VIP holders sampled every ${sampleEveryMs} ms. ` +
      "Timer lateness: our agent's ha_nginx_timer_lateness_seconds histogram over the run, both nodes summed (keepalived has no such metric).",
    "",
    resultTable(results, opts.intervalMs),
    "",
    ...results.flatMap((r) => (r.transitions.length === 0 ? [] : [`${r.system} transitions:`, ...r.transitions.map((t) => `- ${t}`), ""])),
  ].join("\n");
  console.log(`\n${text}`);
  console.log(`written to ${writeResults("starvation", startedAt, text)}`);
}

await main();
