// Kubernetes benchmark: the whole operator on the e2e test bed (real API server, the real controller, the agent
// DaemonSet, nginx pods), one HighAvailabilityVIP, faults on its master, a client probing the VIP every 10 ms. In the
// same run, keepalived at its own defaults takes the matching faults on the lab pair of bench/support, as the reference.
//
//   npm run bench:k8s -- [--rounds 3] [--scenarios nginx-pod-delete,nginx-kill,agent-delete,agent-kill,link-cut]
//                        [--interval 1s] [--systems ours,keepalived]
//
// The HAVIP leaves advertisementInterval unset (what a user gets) unless --interval pins one, e.g. 1s to compare with
// results from before the 250 ms default. Root only (namespaces). Needs `npm run build` first (the controller and the
// agents run from dist/). Prints progress lines, then the markdown tables, also written to
// bench/results/k8s-<UTC stamp>.md.
import { parseArgs } from "node:util";
import { parse, stringify } from "yaml";
import { parseDuration } from "../src/api/v1alpha1/index.js";
import { vipHolders } from "../testing/lab/agent.js";
import type { ProbeOptions, ProbeReport } from "../testing/lab/types.js";
import { waitFor } from "../testing/lab/wait.js";
import { haVipManifest, havipNamespace, havipSystemNamespace, isPodReady, startHaVipBed, type HaVipBed } from "../testing/testbed/havip-bed.js";
import { createBed, errorText, sleep, type Bed } from "./support/bed.js";
import { describePairRound, ratioText, runPairRound, type PairRoundResult, type PairScenario } from "./support/pair-round.js";
import { machineNote, markdownTable, median, parseList, writeResults } from "./support/report.js";
import { defaultIntervalMs, healthCheck, priorities, systemNames, type SystemName } from "./support/speakers.js";

const scenarioNames = ["nginx-pod-delete", "nginx-kill", "agent-delete", "agent-kill", "link-cut"] as const;
type Scenario = (typeof scenarioNames)[number];

const probeIntervalMs = 10;
// A LAN answer takes a few ms; 100 ms keeps loaded cores from counting as outage while a dead node still shows fast.
const probeTimeoutMs = 100;
// keepalived's rounds use the same client settings, so a lost request weighs the same in both columns.
const probeOptions: ProbeOptions = { intervalMs: probeIntervalMs, timeoutMs: probeTimeoutMs };
const baselineMs = 500;

/** The keepalived fault (bench/support/pair-round.ts) that matches each of ours; keepalived knows no pods. */
const keepalivedAnalogue: Readonly<Record<Scenario, PairScenario | undefined>> = {
  "nginx-pod-delete": undefined,
  "nginx-kill": "nginx-kill",
  "agent-delete": "sigterm",
  "agent-kill": "sigkill",
  "link-cut": "link-cut",
};

interface RoundResult {
  readonly scenario: Scenario;
  readonly round: number;
  readonly from: string;
  readonly to: string;
  readonly outageMs: number;
  readonly failed: number;
  /** The new master's transition (its /state) to it showing as MASTER in status.nodes, and in status.master. */
  readonly statusNodesMs: number | undefined;
  readonly statusMasterMs: number | undefined;
}

const started = Date.now();
function progress(line: string): void {
  process.stdout.write(`[bench:k8s +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
}

async function injectFault(bed: HaVipBed, scenario: Scenario, master: string): Promise<void> {
  const { testbed } = bed;
  // nginx runs in the resource's namespace, the one agent DaemonSet in the controller's.
  const namespaceOf = (what: string): string => (what.includes("agent") ? havipSystemNamespace : havipNamespace);
  const podOn = async (selector: string): Promise<string> => {
    const pods = await bed.core.listNamespacedPod({ namespace: namespaceOf(selector), labelSelector: selector, fieldSelector: `spec.nodeName=${master}` });
    const name = pods.items.find((pod) => pod.metadata?.deletionTimestamp === undefined)?.metadata?.name;
    if (name === undefined) throw new Error(`no ${selector} pod on ${master}`);
    return name;
  };
  const killContainer = (container: string): void => {
    const target = testbed.runner.processes().find((item) => item.node === master && item.container === container && item.namespace === namespaceOf(container));
    if (target === undefined) throw new Error(`no ${container} process on ${master}`);
    // The whole process group, as a crash of the container would take it.
    process.kill(-target.pid, "SIGKILL");
  };
  const deletePod = async (selector: string): Promise<void> => {
    const result = await testbed.kubectl(["delete", "pod", await podOn(selector), "-n", namespaceOf(selector), "--wait=false"]);
    if (result.code !== 0) throw new Error(`kubectl delete: ${result.stderr}`);
  };
  switch (scenario) {
    case "nginx-pod-delete":
      return deletePod("app=web");
    case "nginx-kill":
      return killContainer("nginx");
    case "agent-delete":
      return deletePod("app.kubernetes.io/name=ha-nginx-agent");
    case "agent-kill":
      return killContainer("agent");
    case "link-cut":
      return testbed.lab.cutLink(testbed.hostOf(master));
  }
}

async function restore(bed: HaVipBed, scenario: Scenario, master: string): Promise<void> {
  if (scenario === "link-cut") await bed.testbed.lab.restoreLink(bed.testbed.hostOf(master));
  const nodeCount = bed.testbed.nodeNames.length;
  await waitFor(
    async () => {
      const [web, agents] = await Promise.all([
        bed.core.listNamespacedPod({ namespace: havipNamespace, labelSelector: "app=web" }),
        bed.core.listNamespacedPod({ namespace: havipSystemNamespace, labelSelector: "app.kubernetes.io/name=ha-nginx-agent" }),
      ]);
      const isAllReady = (items: typeof web.items): boolean => items.length === nodeCount && items.every((pod) => pod.metadata?.deletionTimestamp === undefined && isPodReady(pod));
      return isAllReady(web.items) && isAllReady(agents.items);
    },
    { timeoutMs: 90_000, intervalMs: 250, what: "every nginx and agent pod Ready again" },
  );
  await bed.settled();
}

async function runRound(bed: HaVipBed, scenario: Scenario, round: number): Promise<RoundResult> {
  const { master: from } = await bed.settled();
  const probe = await bed.testbed.lab.startProbe(`http://${bed.vip}/`, probeOptions);
  let to = "";
  let statusNodesAt = 0;
  let statusMasterAt = 0;
  let switchedAt = Number.NaN;
  let faultAt = Date.now();
  let outcome: ProbeReport;
  try {
    await sleep(baselineMs);
    faultAt = Date.now();
    await injectFault(bed, scenario, from);
    await waitFor(
      async () => {
        const status = await bed.havipStatus();
        const now = Date.now();
        const newMasters = (status.nodes ?? []).filter((entry) => entry.state === "MASTER" && entry.node !== from);
        if (statusNodesAt === 0 && newMasters.length > 0) statusNodesAt = now;
        // Not the first new MASTER seen: two Backups whose timers run out together both take over, and the lower
        // yields a moment later (RFC 5798 §6.4.3), so the one that stays is the one status.master settles on.
        if (statusMasterAt === 0 && newMasters.some((entry) => entry.node === status.master)) {
          to = status.master ?? "";
          statusMasterAt = now;
        }
        return statusNodesAt > 0 && statusMasterAt > 0;
      },
      { timeoutMs: 45_000, intervalMs: 20, what: `${scenario}: a new master in status.nodes and status.master` },
    );
    switchedAt = await bed.transitionAt(to);
    // The client must be answered by the new master before the round's outage is final.
    await waitFor(
      async () => {
        const holders = await vipHolders(bed.testbed.lab, bed.vip);
        const snapshot = probe.snapshot();
        return holders.includes(bed.testbed.hostOf(to).name) && !snapshot.windows.some((window) => window.isOpen) && Date.now() - faultAt > 1000;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `${scenario}: the VIP answering again` },
    );
    await sleep(500);
  } finally {
    outcome = await probe.stop();
  }
  const latency = (at: number): number | undefined => (Number.isFinite(switchedAt) && at > 0 ? Math.max(0, at - switchedAt) : undefined);
  // As in keepalived's rounds (pair-round.ts): a request lost to a busy machine before the fault is not the fault's.
  const afterFault = outcome.windows.filter((window) => window.endMs >= faultAt);
  const result: RoundResult = {
    scenario,
    round,
    from,
    to,
    outageMs: afterFault.reduce((max, window) => Math.max(max, window.endMs - window.startMs), 0),
    failed: afterFault.reduce((sum, window) => sum + window.failed, 0),
    statusNodesMs: latency(statusNodesAt),
    statusMasterMs: latency(statusMasterAt),
  };
  progress(`${scenario} #${round}: ${from} -> ${to}, outage ${result.outageMs} ms, ${result.failed} failed of ${outcome.sent}, status.nodes +${result.statusNodesMs ?? "?"} ms, status.master +${result.statusMasterMs ?? "?"} ms`);
  await restore(bed, scenario, from);
  return result;
}

function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const show = (value: number | undefined): string => (value === undefined ? "n/a" : String(Math.round(value)));

interface Options {
  readonly rounds: number;
  readonly scenarios: readonly Scenario[];
  /** The HAVIP's advertisementInterval; undefined leaves it to the product default. */
  readonly interval: string | undefined;
  readonly systems: readonly SystemName[];
}

interface OursRun {
  readonly rounds: readonly RoundResult[];
  readonly applyToAnswerMs: number;
  readonly applyToSettledMs: number;
}

interface KeepalivedRun {
  /** From starting the pair to the VIP's first answer; undefined when the probe saw no start of the outage. */
  readonly startToAnswerMs: number | undefined;
  readonly rounds: readonly PairRoundResult[];
}

function intervalText(interval: string | undefined): string {
  return interval === undefined
    ? `advertisementInterval unset, so the default ${defaultIntervalMs.ours} ms (VRRPv3)`
    : `advertisementInterval ${interval} (pinned with --interval)`;
}

/** "median (min–max)" of the outages, with the rounds that timed out or could not run named. */
function spread(outages: readonly number[], notes: readonly string[]): string {
  const mid = median(outages);
  const text = mid === undefined ? "no round" : `${Math.round(mid)} (${Math.min(...outages)}–${Math.max(...outages)})`;
  const said = notes.filter((note) => note !== "");
  return said.length === 0 ? text : `${text}, ${said.join(", ")}`;
}

function oursTables(ours: OursRun, options: Options): string[] {
  const { rounds: results } = ours;
  const outageRows = options.scenarios.map((scenario) => {
    const mine = results.filter((result) => result.scenario === scenario);
    const outages = mine.map((result) => result.outageMs);
    return [
      scenario,
      show(median(outages)),
      String(mine.reduce((sum, result) => sum + result.failed, 0)),
      show(outages.length === 0 ? undefined : Math.min(...outages)),
      show(outages.length === 0 ? undefined : Math.max(...outages)),
      `${mine.length}/${options.rounds}`,
    ];
  });
  const nodesSamples = results.flatMap((result) => (result.statusNodesMs === undefined ? [] : [result.statusNodesMs]));
  const masterSamples = results.flatMap((result) => (result.statusMasterMs === undefined ? [] : [result.statusMasterMs]));
  return [
    `Test bed: real kube-apiserver, 3 namespace nodes, the real controller, the agent DaemonSet, nginx:1.27 pods; `
      + `${intervalText(options.interval)}, health probe 200 ms x 2, preemption Never; client probe every ${probeIntervalMs} ms, `
      + `timeout ${probeTimeoutMs} ms. outage_ms: the median over rounds of the longest run of failed requests after the fault `
      + `(first failure to first success); failed_requests: the total over rounds.`,
    "",
    markdownTable(["scenario", "outage_ms", "failed_requests", "min_outage_ms", "max_outage_ms", "rounds"], outageRows),
    "",
    markdownTable(["measure", "ms"], [
      ["kubectl apply of the HAVIP to the VIP answering the client", String(ours.applyToAnswerMs)],
      ["kubectl apply of the HAVIP to one MASTER + two BACKUP in status", String(ours.applyToSettledMs)],
    ]),
    "",
    "Status latency: from the new master's transition (its agent's /state lastTransition) to it showing in the HAVIP status.",
    "",
    markdownTable(["status field", "samples", "p50_ms", "p99_ms", "max_ms"], [
      ["status.nodes (state MASTER)", String(nodesSamples.length), show(percentile(nodesSamples, 50)), show(percentile(nodesSamples, 99)), show(percentile(nodesSamples, 100))],
      ["status.master", String(masterSamples.length), show(percentile(masterSamples, 50)), show(percentile(masterSamples, 99)), show(percentile(masterSamples, 100))],
    ]),
    "",
    "Rounds:",
    "",
    markdownTable(
      ["scenario", "round", "from", "to", "outage_ms", "failed", "status.nodes_ms", "status.master_ms"],
      results.map((result) => [result.scenario, String(result.round), result.from, result.to, String(result.outageMs), String(result.failed), show(result.statusNodesMs), show(result.statusMasterMs)]),
    ),
    "",
  ];
}

function comparisonTables(ours: OursRun | undefined, keepalived: KeepalivedRun | undefined, options: Options): string[] {
  const check = healthCheck.keepalived;
  const oursAdverts = options.interval === undefined ? `${defaultIntervalMs.ours} ms adverts, the default` : `${options.interval} adverts`;
  const rows = options.scenarios.map((scenario) => {
    const fault = keepalivedAnalogue[scenario];
    const mine = ours?.rounds.filter((result) => result.scenario === scenario) ?? [];
    const oursOutages = mine.map((result) => result.outageMs);
    const oursText = ours === undefined ? "not run" : spread(oursOutages, [mine.length < options.rounds ? `${mine.length}/${options.rounds} rounds` : ""]);
    if (fault === undefined) return [scenario, "n/a", oursText, "n/a", "n/a"];
    const theirs = keepalived?.rounds.filter((result) => result.scenario === fault) ?? [];
    const valid = theirs.filter((result) => result.error === undefined);
    const timedOut = valid.filter((result) => result.isTimedOut).length;
    const theirOutages = valid.map((result) => result.outageMs);
    const theirText = keepalived === undefined ? "not run"
      : spread(theirOutages, [timedOut > 0 ? `${timedOut} timed out` : "", valid.length < options.rounds ? `${valid.length}/${options.rounds} rounds` : ""]);
    return [scenario, fault, oursText, theirText, ratioText(median(oursOutages), median(theirOutages))];
  });
  return [
    `## Next to keepalived at its defaults`,
    "",
    `${ours === undefined ? "" : `Ours: the tables above, ${intervalText(options.interval)}. `}keepalived: ${machineNote()} At its defaults: advert_int 1 `
      + `(${defaultIntervalMs.keepalived} ms), VRRPv3 multicast, both nodes state BACKUP, priorities ${priorities.master}/${priorities.backup}, `
      + `on the two-node lab pair of bench:failover (namespaces on one bridge, nginx on each node, no Kubernetes), `
      + `track_script curl /healthz every ${check.intervalSeconds} s, timeout ${check.timeoutSeconds} s, fall ${check.fall}, rise ${check.rise}, `
      + `weight 0 (FAULT); the same client probe as ours (every ${probeIntervalMs} ms, timeout ${probeTimeoutMs} ms), outage counted after the fault.`,
    "",
    "Faults: nginx-kill, nginx SIGKILLed on the master; agent-kill ↔ sigkill, the VRRP daemon's process group SIGKILLed "
      + "(the stand-in kubelet restarts our agent container; nothing restarts keepalived during the round, and n1 keeps the VIP "
      + "and its nginx); agent-delete ↔ sigterm, a planned stop (keepalived sends priority 0); link-cut, the master's bridge port "
      + "down. nginx-pod-delete has no keepalived analogue (keepalived knows no pods).",
    "",
    markdownTable(
      ["scenario", "keepalived fault", `ours (${oursAdverts}) outage median (min–max) ms`, `keepalived (${defaultIntervalMs.keepalived} ms adverts) outage median (min–max) ms`, "ratio ours/keepalived (median)"],
      rows,
    ),
    "",
    markdownTable(["configuration in place to the VIP answering the client", "ms"], [
      ["ours: kubectl apply of the HAVIP (VRID allocation, the agent DaemonSet's pods starting, then VRRP)", ours === undefined ? "not run" : String(ours.applyToAnswerMs)],
      ["keepalived: both daemons started with their configuration (then VRRP)", keepalived === undefined ? "not run" : show(keepalived.startToAnswerMs)],
    ]),
    "",
    ...(keepalived === undefined ? [] : [
      "keepalived rounds:",
      "",
      ...keepalived.rounds.map((result) => `- ${result.scenario} r${result.round}: ${describePairRound(result)}`),
      "",
    ]),
  ];
}

function render(ours: OursRun | undefined, keepalived: KeepalivedRun | undefined, options: Options): string {
  return [
    `# ha-nginx Kubernetes benchmark, ${new Date().toISOString()}`,
    "",
    ...(ours === undefined ? [] : oursTables(ours, options)),
    ...comparisonTables(ours, keepalived, options),
  ].join("\n");
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "3" },
      scenarios: { type: "string", default: scenarioNames.join(",") },
      interval: { type: "string" },
      systems: { type: "string", default: systemNames.join(",") },
    },
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, not ${values.rounds}`);
  if (values.interval !== undefined) {
    try {
      parseDuration(values.interval);
    } catch (err) {
      throw new Error(`--interval: ${errorText(err)}`);
    }
  }
  return {
    rounds,
    scenarios: parseList(values.scenarios, scenarioNames, "scenario"),
    interval: values.interval,
    systems: parseList(values.systems, systemNames, "system"),
  };
}

/** The bed's HAVIP with `interval`, or with none: the bed pins 1 s for its tests, the benchmark measures what users get. */
function havipManifestAt(interval: string | undefined): (vip: string) => string {
  return (vip) => {
    const manifest = parse(haVipManifest(vip)) as { spec: Record<string, unknown> };
    if (interval === undefined) delete manifest.spec.advertisementInterval;
    else manifest.spec.advertisementInterval = interval;
    return stringify(manifest);
  };
}

let teardown: (() => Promise<void>) | undefined;
let isStopping = false;

function onSignal(): void {
  if (isStopping) return;
  isStopping = true;
  progress("interrupted: tearing down");
  void (teardown?.() ?? Promise.resolve()).finally(() => process.exit(130));
}

/** Runs `body`, then `stop`; a SIGINT or SIGTERM meanwhile runs `stop` at once and exits. */
async function tornDownAfter<T>(stop: () => Promise<void>, body: () => Promise<T>): Promise<T> {
  teardown = stop;
  try {
    return await body();
  } finally {
    teardown = undefined;
    if (!isStopping) await stop();
  }
}

async function runOurs(opts: Options): Promise<OursRun> {
  progress(`starting the test bed (${opts.scenarios.length} scenarios x ${opts.rounds} rounds, ${intervalText(opts.interval)})`);
  const bed = await startHaVipBed({ shouldWaitForNginx: true, log: progress, havipManifest: havipManifestAt(opts.interval) });
  return tornDownAfter(() => bed.stop(), async () => {
    await waitFor(
      async () => (await bed.testbed.lab.httpGet(bed.testbed.lab.client, `http://${bed.vip}/`, { timeoutMs: 200 })).status === 200,
      { timeoutMs: 120_000, intervalMs: 20, what: "the VIP to answer the client" },
    );
    const applyToAnswerMs = Date.now() - bed.appliedAt;
    progress(`the VIP answers ${applyToAnswerMs} ms after kubectl apply`);
    await bed.settled();
    const applyToSettledMs = Date.now() - bed.appliedAt;
    progress(`settled ${applyToSettledMs} ms after kubectl apply`);
    const results: RoundResult[] = [];
    for (let round = 1; round <= opts.rounds; round += 1) {
      for (const scenario of opts.scenarios) {
        try {
          results.push(await runRound(bed, scenario, round));
        } catch (err) {
          progress(`${scenario} #${round} failed: ${errorText(err)}; the agents say ${await agentStates(bed)}`);
          await bed.settled(120_000);
        }
      }
    }
    return { rounds: results, applyToAnswerMs, applyToSettledMs };
  });
}

/** Each node's agent's view, for a round that failed: which of them saw what, and since when. */
async function agentStates(bed: HaVipBed): Promise<string> {
  const views = await Promise.all(bed.testbed.nodeNames.map(async (node) => {
    const view = await bed.agentState(node).catch(() => ({}));
    return `${node} ${JSON.stringify(view)}`;
  }));
  return views.join("; ");
}

/** From starting the pair (its configuration in place, as kubectl apply is for ours) to the client's first answer. */
async function timeStartToAnswer(bed: Bed): Promise<number | undefined> {
  await bed.stopPair();
  const probe = await bed.lab.startProbe(bed.url, probeOptions);
  const startedAt = Date.now();
  try {
    await bed.startPair("keepalived", "default");
  } catch (err) {
    await probe.stop();
    throw err;
  }
  // No VIP yet when the probe starts, so its first window opens before the start and closes at the first answer.
  const first = (await probe.stop()).windows[0];
  return first !== undefined && !first.isOpen && first.startMs <= startedAt ? first.endMs - startedAt : undefined;
}

async function runKeepalived(opts: Options): Promise<KeepalivedRun> {
  const faults = opts.scenarios.flatMap((scenario) => keepalivedAnalogue[scenario] ?? []);
  progress(`keepalived at its defaults on the lab pair (${faults.length} faults x ${opts.rounds} rounds)`);
  const bed = await createBed("bk");
  return tornDownAfter(() => bed.destroy(), async () => {
    const startToAnswerMs = await timeStartToAnswer(bed);
    progress(`keepalived: the VIP answers ${show(startToAnswerMs)} ms after the daemons start`);
    const rounds: PairRoundResult[] = [];
    for (let round = 1; round <= opts.rounds; round += 1) {
      for (const fault of faults) {
        const result = await runPairRound(bed, "keepalived", "default", fault, round, probeOptions);
        rounds.push(result);
        progress(`keepalived ${fault} #${round}: ${describePairRound(result)}`);
      }
    }
    return { startToAnswerMs, rounds };
  });
}

async function main(): Promise<void> {
  const opts = options();
  if (process.getuid?.() !== 0) throw new Error("bench:k8s needs root (it creates network namespaces)");
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const runAt = new Date();
  // keepalived first: its lab is small and quick, and the test bed is not yet loading the two cores.
  const keepalived = opts.systems.includes("keepalived") ? await runKeepalived(opts) : undefined;
  const ours = opts.systems.includes("ours") ? await runOurs(opts) : undefined;
  const text = render(ours, keepalived, opts);
  const file = writeResults("k8s", runAt, text);
  process.stdout.write(`\n${text}\n`);
  progress(`written to ${file}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:k8s failed: ${errorText(err)}\n`);
  process.exitCode = 1;
});
