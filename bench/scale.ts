// Scale benchmark in two parts. Standalone: one process per node serving N virtual routers, our standalone agent
// against one keepalived with N vrrp_instance blocks, in the same lab with the same VRIDs, priorities, addresses and
// 1 s adverts. Once n1 is Master and n2 Backup for every router, it measures each process's RSS and CPU over a warm-up and
// then a window, and counts the state changes in them (a settled pair has none). Kubernetes (scale-kubernetes.ts): N
// HighAvailabilityVIPs on the e2e test bed, served by the one agent per node.
//
//   npx tsx bench/scale.ts [--parts standalone,kubernetes] [--routers 1,10,100] [--window-seconds 60] [--warmup-seconds 60]
//                          [--systems ours,keepalived]
//                          [--kubernetes-interval 1s|default]
//
// --routers is the router count per process (standalone) and the resource count (kubernetes); --systems applies to
// the standalone part. Root only (namespaces). Needs `npm run build` first (agent and controller run from dist/).
// Prints progress lines, then one markdown table per count and part, also written to bench/results/scale-<UTC stamp>.md.

import { parseArgs } from "node:util";
import { isDuration } from "../src/api/v1alpha1/index.js";
import { haVipManifest, startAgent } from "../testing/lab/agent.js";
import { addressesOn, createLab, waitFor, type Lab, type LabHost } from "../testing/lab/index.js";
import { startKeepalived } from "../testing/lab/keepalived.js";
import { maxResources, runKubernetes } from "./scale-kubernetes.js";
import { errorText, failureOf, mib } from "./support/bed.js";
import { machineNote, markdownTable, parseList, parsePositiveInts, writeResults } from "./support/report.js";
import { cpuText, sampleSteadyResources, type Measured, type SteadySample } from "./support/resources.js";
import { childPids, priorities, systemNames, type SystemName } from "./support/speakers.js";

const advertisementIntervalMs = 1000;
// VIPs take the fourth octets from .101 up: above the client (.100), clear of the nodes (.11, .12), below broadcast.
const firstVipOctet = 101;
const maxRouters = 150;
const partNames = ["standalone", "kubernetes"] as const;
type PartName = (typeof partNames)[number];
// Starting N routers takes longer with N; a minute covers Master_Down_Interval (about 3.6 s) many times over.
const settleTimeoutMs = 60_000;
// Roles unchanged this long before the window, so startup work (parsing, first adverts, GARP bursts) stays out of it.
const quietMs = 5_000;

interface Router {
  /** metadata.name for ours, the vrrp_instance name for keepalived. */
  readonly name: string;
  readonly vrid: number;
  /** With the lab's prefix length. */
  readonly vip: string;
}

/** One system's process on one node. */
interface NodeProcess extends Measured {
  /** The last state each router logged, by router name, in our agent's words (Backup, Master, Fault). */
  states(): ReadonlyMap<string, string>;
  /** Every state change the process has logged so far, all routers, oldest first, as "Backup -> Master: reason". */
  transitions(): string[];
  /** Throws unless the process's own report agrees with `expected` for every router (ours: GET /state). */
  confirm(expected: string): Promise<void>;
  logTail(lines: number): string[];
  hasExited(): boolean;
  /** SIGKILL for the process group; the VIPs stay behind for `removeVips`. */
  crash(): Promise<void>;
}

interface RunResult {
  readonly system: SystemName;
  readonly routers: number;
  readonly samples: readonly (SteadySample & { readonly flips: readonly string[] })[];
  /** From starting n1 to the settled pair; undefined when it never settled. */
  readonly settleMs?: number;
  /** Why the pair did not settle; the window was measured all the same. */
  readonly unsettled?: string;
  readonly error?: string;
}

function options() {
  const { values } = parseArgs({
    options: {
      routers: { type: "string" },
      "window-seconds": { type: "string" },
      "warmup-seconds": { type: "string" },
      systems: { type: "string" },
      parts: { type: "string" },
      "kubernetes-interval": { type: "string" },
    },
  });
  const parts = parseList(values.parts ?? partNames.join(","), partNames, "part");
  const routerCounts = parsePositiveInts(values.routers ?? "1,10,100", "--routers");
  const limits: Readonly<Record<PartName, number>> = { standalone: maxRouters, kubernetes: maxResources };
  for (const part of parts) {
    const tooMany = routerCounts.filter((n) => n > limits[part]);
    if (tooMany.length > 0) throw new Error(`--routers: at most ${limits[part]} for the ${part} part (the lab subnet's free addresses), not ${tooMany.join(", ")}`);
  }
  return {
    parts,
    routerCounts,
    windowMs: 1000 * (parsePositiveInts(values["window-seconds"] ?? "60", "--window-seconds")[0] ?? 60),
    warmupMs: 1000 * warmupSecondsOf(values["warmup-seconds"] ?? "60"),
    systems: parseList(values.systems ?? systemNames.join(","), systemNames, "system"),
    kubernetesInterval: kubernetesIntervalOf(values["kubernetes-interval"] ?? "1s"),
  };
}

function warmupSecondsOf(text: string): number {
  const seconds = Number(text);
  if (!Number.isInteger(seconds) || seconds < 0) throw new Error(`--warmup-seconds: ${JSON.stringify(text)} is not a whole number of seconds (0 for none)`);
  return seconds;
}

/** "default" leaves spec.advertisementInterval out, so the resources get the schema's default. */
function kubernetesIntervalOf(text: string): string | undefined {
  if (text === "default") return undefined;
  if (!isDuration(text)) throw new Error(`--kubernetes-interval: ${JSON.stringify(text)} is neither "default" nor a duration such as 1s or 250ms`);
  return text;
}

function routersOf(lab: Lab, count: number): Router[] {
  const [network = "", prefixLength = ""] = lab.subnet.split("/");
  const firstThree = network.split(".").slice(0, 3).join(".");
  return Array.from({ length: count }, (_, i) => ({
    name: `vip-${String(i + 1).padStart(3, "0")}`,
    vrid: i + 1,
    vip: `${firstThree}.${firstVipOctet + i}/${prefixLength}`,
  }));
}

/** "Master×100", or "Master×99 Initialize×1": every router counted, those that never logged a state as Initialize. */
function summarize(routers: readonly Router[], states: ReadonlyMap<string, string>): string {
  const counts = new Map<string, number>();
  for (const router of routers) {
    const state = states.get(router.name) ?? "Initialize";
    counts.set(state, (counts.get(state) ?? 0) + 1);
  }
  return [...counts].map(([state, n]) => `${state}×${n}`).join(" ");
}

async function startOurs(lab: Lab, host: LabHost, routers: readonly Router[]): Promise<NodeProcess> {
  const [master, backup] = lab.nodes;
  if (master === undefined || backup === undefined) throw new Error("the benchmark lab needs two nodes");
  const manifest = routers.map((router) => haVipManifest({
    name: router.name,
    addresses: [router.vip],
    virtualRouterID: router.vrid,
    vrrpVersion: 3,
    advertisementIntervalMs,
    priorities: { [master.name]: priorities.master, [backup.name]: priorities.backup },
  })).join("---\n");
  const agent = await startAgent(lab, host, { manifest, readyTimeoutMs: settleTimeoutMs });
  let hasExited = false;
  void agent.exited.then(() => { hasExited = true; });
  const states = (): Map<string, string> => {
    const last = new Map<string, string>();
    for (const line of agent.logs()) {
      const { havip, to } = line;
      if (line.msg.startsWith("VRRP ") && typeof havip === "string" && typeof to === "string") last.set(havip, to);
    }
    return last;
  };
  return {
    host,
    pids: () => [agent.pid],
    role: () => summarize(routers, states()),
    states,
    transitions: () => agent.transitions().map((t) => `${t.from} -> ${t.to}: ${t.reason}`),
    async confirm(expected) {
      const state = await agent.document();
      const problems = state.problems.map((p) => `${p.havip}: ${p.problem}`);
      const wrong = routers.filter((router) => state.routers.find((r) => r.havip === router.name)?.state !== expected);
      if (problems.length > 0 || wrong.length > 0) {
        throw new Error(`/state in ${host.name}: ${wrong.length} router(s) not ${expected} (${wrong.slice(0, 5).map((r) => r.name).join(", ")}); ` +
          `problems: ${problems.slice(0, 5).join("; ") || "none"}`);
      }
    },
    logTail: (lines) => agent.logs().slice(-lines).map((line) => `${new Date(line.time).toISOString()} ${line.msg}`)
      .concat(agent.stderr().trim() === "" ? [] : [`stderr: ${agent.stderr().trim()}`]),
    hasExited: () => hasExited,
    crash: () => agent.kill(),
  };
}

const keepalivedEntering = /\((\S+)\) Entering (BACKUP|MASTER|FAULT) STATE/;
const keepalivedStateNames: Readonly<Record<string, string>> = { BACKUP: "Backup", MASTER: "Master", FAULT: "Fault" };

async function startTheirs(lab: Lab, host: LabHost, routers: readonly Router[], priority: number): Promise<NodeProcess> {
  const [first, ...rest] = routers.map((router) => ({ instanceName: router.name, vrid: router.vrid, priority, vips: [router.vip] }));
  if (first === undefined) throw new Error("at least one router");
  const proc = await startKeepalived(lab, host, {
    ...first,
    instances: rest,
    version: 3,
    state: "BACKUP",
    advertIntervalMs: advertisementIntervalMs,
  });
  let hasExited = false;
  void proc.exited.then(() => { hasExited = true; });
  const changes = (): RegExpExecArray[] => proc.logLines().flatMap((line) => {
    const match = keepalivedEntering.exec(line);
    return match === null ? [] : [match];
  });
  const states = (): Map<string, string> => new Map(changes().map(([, name = "", state = ""]) => [name, keepalivedStateNames[state] ?? state]));
  return {
    host,
    pids: () => [proc.pid, ...childPids(proc.pid)],
    role: () => summarize(routers, states()),
    states,
    // keepalived logs the state entered, not the one left nor why.
    transitions: () => changes().map(([, , state = ""]) => `-> ${keepalivedStateNames[state] ?? state}`),
    // keepalived's log is its only report of its state, and `states` already reads it.
    confirm: () => Promise.resolve(),
    logTail: (lines) => proc.logLines().slice(-lines),
    hasExited: () => hasExited,
    crash: () => proc.crash(),
  };
}

/** Deletes every router's VIP from the node, as after a crash; addresses already gone are skipped (-force). */
async function removeVips(lab: Lab, host: LabHost, routers: readonly Router[]): Promise<void> {
  const input = routers.map((router) => `addr del ${router.vip} dev ${host.ifname}\n`).join("");
  await lab.exec(host, "ip", ["-force", "-batch", "-"], { input });
}

/**
 * Waits until every router of every node is in the node's expected state and no state change was logged for
 * `holdMs`; returns when that quiet time began (performance.now()).
 */
async function waitForStates(nodes: readonly { process: NodeProcess; expected: string }[], routers: readonly Router[], holdMs: number): Promise<number> {
  const isSettled = (): boolean => nodes.every(({ process, expected }) => {
    const states = process.states();
    return routers.every((router) => states.get(router.name) === expected);
  });
  const total = (): number => nodes.reduce((sum, { process }) => sum + process.transitions().length, 0);
  let lastTotal = -1;
  let since = performance.now();
  const goal = `${nodes.map(({ process, expected }) => `${process.host.name} ${expected}`).join(" and ")} for all ${routers.length} routers, ` +
    `then ${holdMs / 1000} s without a state change`;
  try {
    await waitFor(() => {
      if (total() !== lastTotal || !isSettled()) {
        lastTotal = total();
        since = performance.now();
      }
      return isSettled() && performance.now() - since >= holdMs;
    }, { timeoutMs: settleTimeoutMs, intervalMs: 100, what: goal });
  } catch (err) {
    // waitFor names the goal; where the routers stood when it gave up is what tells a slow start from a flapping one.
    const now = nodes.map(({ process }) => `${process.host.name} ${process.role()}`).join(", ");
    throw new Error(`${errorText(err)}; then ${now}, ${total()} state changes logged`);
  }
  return since;
}

/** The kernel's view, the same for both systems: n1 holds every VIP and n2 none. */
async function checkVips(lab: Lab, routers: readonly Router[]): Promise<void> {
  const [master, backup] = lab.nodes;
  if (master === undefined || backup === undefined) throw new Error("the benchmark lab needs two nodes");
  const held = async (host: LabHost): Promise<Set<string>> => new Set((await addressesOn(lab, host)).map((a) => `${a.address}/${a.prefixLength}`));
  const onMaster = await held(master);
  const onBackup = await held(backup);
  const missing = routers.filter((router) => !onMaster.has(router.vip)).length;
  const extra = routers.filter((router) => onBackup.has(router.vip)).length;
  if (missing > 0 || extra > 0) throw new Error(`${master.name} lacks ${missing} VIP(s), ${backup.name} holds ${extra}`);
}

async function runOne(lab: Lab, system: SystemName, routers: readonly Router[], warmupMs: number, windowMs: number): Promise<RunResult> {
  const [master, backup] = lab.nodes;
  if (master === undefined || backup === undefined) throw new Error("the benchmark lab needs two nodes");
  const start = (host: LabHost, priority: number): Promise<NodeProcess> =>
    (system === "ours" ? startOurs(lab, host, routers) : startTheirs(lab, host, routers, priority));
  const processes: NodeProcess[] = [];
  const startedAt = performance.now();
  try {
    // Master first, and the backup only once it leads every router: a backup started alone would become Master and
    // then be preempted, flips that belong to no steady state.
    const first = await start(master, priorities.master);
    processes.push(first);
    let unsettled = await failureOf(() => waitForStates([{ process: first, expected: "Master" }], routers, 0));
    const second = await start(backup, priorities.backup);
    processes.push(second);
    const expectations = [{ process: first, expected: "Master" }, { process: second, expected: "Backup" }];
    let settleMs: number | undefined;
    unsettled ??= await failureOf(async () => {
      const settledAt = await waitForStates(expectations, routers, quietMs);
      for (const { process, expected } of expectations) await process.confirm(expected);
      await checkVips(lab, routers);
      settleMs = settledAt - startedAt;
    });
    const gone = processes.filter((p) => p.hasExited()).map((p) => p.host.name);
    if (gone.length > 0) throw new Error(`the process on ${gone.join(", ")} exited`);
    // A pair that never settles is a finding, not a crash: the window still shows what it costs and how often it flips.
    console.log(settleMs === undefined
      ? `   ! not settled (${unsettled ?? ""}); measuring ${warmupMs / 1000} s of warm-up and ${windowMs / 1000} s all the same`
      : `   settled after ${(settleMs / 1000).toFixed(1)} s; measuring ${warmupMs / 1000} s of warm-up, then ${windowMs / 1000} s`);

    const before = processes.map((p) => p.transitions().length);
    const samples = await sampleSteadyResources(processes, warmupMs, windowMs);
    const withFlips = samples.map((sample, i) => ({ ...sample, flips: processes[i]?.transitions().slice(before[i]) ?? [] }));
    for (const s of withFlips) {
      console.log(`   ${s.node} (${s.role}): RSS ${mib(s.rssKiB)} MiB, peak ${mib(s.peakKiB)} MiB, CPU ${cpuText(s)}, flips ${s.flips.length}` +
        `${s.flips.length === 0 ? "" : ` (${countKinds(s.flips)})`}`);
    }
    return { system, routers: routers.length, samples: withFlips, settleMs, unsettled };
  } catch (err) {
    console.log(`   ! ${errorText(err)}`);
    for (const p of processes) console.log(`   ${p.host.name} log tail:\n      ${p.logTail(10).join("\n      ")}`);
    return { system, routers: routers.length, samples: [], error: errorText(err) };
  } finally {
    await Promise.all(processes.map((p) => p.crash()));
    for (const host of lab.nodes) await removeVips(lab, host, routers);
  }
}


function ratio(ours: number | undefined, theirs: number | undefined, digits: number): string {
  if (ours === undefined || theirs === undefined) return "–";
  if (theirs === 0) return ours === 0 ? "= (both 0)" : "∞ (keepalived 0)";
  return `${(ours / theirs).toFixed(digits)}×`;
}

function scaleTable(results: readonly RunResult[], routers: number): string {
  const of = (system: SystemName) => results.find((r) => r.system === system && r.routers === routers);
  const theirs = of("keepalived");
  const rows = results.filter((r) => r.routers === routers).flatMap((r) => {
    if (r.error !== undefined) return [[r.system, "failed (below)", "–", "–", "–", "–", "–", "–", "–", "–", "–"]];
    return r.samples.map((s) => {
      const reference = r.system === "ours" ? theirs?.samples.find((t) => t.node === s.node) : undefined;
      return [
        r.system, `${s.node} (${s.role})`, String(s.processes), mib(s.rssKiB), mib(s.peakKiB), s.warmupCpuPercent?.toFixed(2) ?? "–", s.cpuPercent.toFixed(2), String(s.flips.length),
        r.system === "ours" ? ratio(s.rssKiB, reference?.rssKiB, 1) : "–",
        r.system === "ours" ? ratio(s.cpuPercent, reference?.cpuPercent, 1) : "–",
        r.settleMs === undefined ? "not settled (below)" : `${(r.settleMs / 1000).toFixed(1)} s`,
      ];
    });
  });
  return markdownTable([
    "system", "node (roles at the end)", "processes", "RSS (MiB)", "peak RSS (MiB)", "CPU in the warm-up (% of one core)", "CPU (% of one core)", "flips in the warm-up and window",
    "RSS ours/keepalived", "CPU ours/keepalived", "settled after",
  ], rows);
}

/** "81× Backup -> Master: master-down-timer-expired, 48× ...", most frequent first. */
function countKinds(flips: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const flip of flips) counts.set(flip, (counts.get(flip) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([flip, n]) => `${n}× ${flip}`).join(", ");
}

/** What went wrong, below the table: failed runs, and the kinds of flips where there were any. */
function notes(results: readonly RunResult[], routers: number): string[] {
  return results.filter((r) => r.routers === routers).flatMap((r) => [
    ...(r.error === undefined ? [] : [`- ${r.system} failed: ${r.error}`]),
    ...(r.unsettled === undefined ? [] : [`- ${r.system} did not settle: ${r.unsettled}`]),
    ...r.samples.filter((s) => s.flips.length > 0).map((s) => `- ${r.system} ${s.node} flips: ${countKinds(s.flips)}`),
  ]);
}

async function runStandalone(opts: ReturnType<typeof options>): Promise<string[]> {
  const startedAt = performance.now();
  const lab = await createLab({ nodes: 2, idPrefix: "bsc" });
  const results: RunResult[] = [];
  try {
    for (const count of opts.routerCounts) {
      const routers = routersOf(lab, count);
      for (const system of opts.systems) {
        console.log(`\n== ${system}, ${count} router(s): starting one process per node`);
        results.push(await runOne(lab, system, routers, opts.warmupMs, opts.windowMs));
      }
    }
  } finally {
    await lab.destroy();
  }
  return [
    "## Standalone",
    "",
    `Two lab nodes on one segment, one process per node serving N virtual routers: our standalone agent with N HighAvailabilityVIP documents in one file, ` +
      `keepalived with N vrrp_instance blocks in one config. Router i has VRID i and one IPv4 VIP; VRRPv3 multicast, ${advertisementIntervalMs / 1000} s adverts, ` +
      `n1 priority ${priorities.master}, n2 priority ${priorities.backup}, preemption on, no health check. Measured over a ${opts.windowMs / 1000} s window that starts ` +
      `${opts.warmupMs / 1000} s (the warm-up, measured too) after n1 was Master and n2 Backup for every router and nothing had changed for ${quietMs / 1000} s: VmRSS at the end of the window, VmHWM (peak), utime+stime as % of one core, ` +
      `and the state changes logged in the window (flips, expected 0). keepalived's figures sum its parent and VRRP child, which share pages, so its RSS is overstated. ` +
      `Part took ${Math.round((performance.now() - startedAt) / 1000)} s.`,
    "Goals (figures to compare, not assertions): ours at most 80 MiB RSS for 1 router, and at most 100 MiB and 1 % of a core per node for 100 routers at 1 s adverts; " +
      "keepalived was measured elsewhere at 13 MiB and 0.19 % of a core per node for 100 routers.",
    "",
    ...opts.routerCounts.flatMap((count) => {
      const below = notes(results, count);
      return [`### ${count} router${count === 1 ? "" : "s"}`, "", scaleTable(results, count), "", ...below, ...(below.length === 0 ? [] : [""])];
    }),
  ];
}

async function main(): Promise<void> {
  const opts = options();
  if (process.getuid?.() !== 0) throw new Error("run as root: the lab creates network namespaces");
  const startedAt = new Date();
  console.log(`scale benchmark: parts ${opts.parts.join(",")}, counts ${opts.routerCounts.join(",")}, window ${opts.windowMs / 1000} s` +
    `${opts.parts.includes("standalone") ? `, standalone systems ${opts.systems.join(",")}` : ""}`);
  const sections = [
    ...(opts.parts.includes("standalone") ? await runStandalone(opts) : []),
    ...(opts.parts.includes("kubernetes") ? await runKubernetes(opts.routerCounts, opts.warmupMs, opts.windowMs, opts.kubernetesInterval) : []),
  ];
  const elapsedS = Math.round((Date.now() - startedAt.getTime()) / 1000);
  const text = [
    `# Scale benchmark, ${startedAt.toISOString()}`,
    "",
    `Parts: ${opts.parts.join(", ")}; warm-up ${opts.warmupMs / 1000} s, window ${opts.windowMs / 1000} s. Run took ${elapsedS} s.`,
    machineNote(),
    "",
    ...sections,
  ].join("\n");
  console.log(`\n${text}`);
  console.log(`written to ${writeResults("scale", startedAt, text)}`);
}

await main();
