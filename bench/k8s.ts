// Kubernetes benchmark: the whole operator on the e2e test bed (real API server, the real controller, the agent
// DaemonSet, nginx pods), one HighAvailabilityVIP, faults on its master, a client probing the VIP every 10 ms.
//
//   npm run bench:k8s -- [--rounds 3] [--scenarios nginx-pod-delete,nginx-kill,agent-delete,agent-kill,link-cut]
//
// Root only (namespaces). Needs `npm run build` first (the controller and the agents run from dist/). Prints
// progress lines, then the markdown tables, also written to bench/results/k8s-<UTC stamp>.md.
import { parseArgs } from "node:util";
import { vipHolders } from "../testing/lab/agent.js";
import type { ProbeReport } from "../testing/lab/types.js";
import { waitFor } from "../testing/lab/wait.js";
import { havipNamespace, havipSystemNamespace, isPodReady, startHaVipBed, type HaVipBed } from "../testing/testbed/havip-bed.js";
import { errorText, sleep } from "./support/bed.js";
import { markdownTable, median, parseList, writeResults } from "./support/report.js";

const scenarioNames = ["nginx-pod-delete", "nginx-kill", "agent-delete", "agent-kill", "link-cut"] as const;
type Scenario = (typeof scenarioNames)[number];

const probeIntervalMs = 10;
// A LAN answer takes a few ms; 100 ms keeps loaded cores from counting as outage while a dead node still shows fast.
const probeTimeoutMs = 100;
const baselineMs = 500;

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
  const probe = await bed.testbed.lab.startProbe(`http://${bed.vip}/`, { intervalMs: probeIntervalMs, timeoutMs: probeTimeoutMs });
  let to = "";
  let statusNodesAt = 0;
  let statusMasterAt = 0;
  let switchedAt = Number.NaN;
  let outcome: ProbeReport;
  try {
    await sleep(baselineMs);
    const faultAt = Date.now();
    await injectFault(bed, scenario, from);
    await waitFor(
      async () => {
        const status = await bed.havipStatus();
        const now = Date.now();
        const newMasters = (status.nodes ?? []).filter((entry) => entry.state === "MASTER" && entry.node !== from);
        if (to === "" && newMasters[0] !== undefined) to = newMasters[0].node;
        if (to !== "" && statusNodesAt === 0 && newMasters.some((entry) => entry.node === to)) statusNodesAt = now;
        if (to !== "" && statusMasterAt === 0 && status.master === to) statusMasterAt = now;
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
  const result: RoundResult = {
    scenario,
    round,
    from,
    to,
    outageMs: outcome.maxOutageMs,
    failed: outcome.failed,
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

function render(results: readonly RoundResult[], scenarios: readonly Scenario[], rounds: number, applyToAnswerMs: number, applyToSettledMs: number): string {
  const outageRows = scenarios.map((scenario) => {
    const mine = results.filter((result) => result.scenario === scenario);
    const outages = mine.map((result) => result.outageMs);
    return [
      scenario,
      show(median(outages)),
      String(mine.reduce((sum, result) => sum + result.failed, 0)),
      show(outages.length === 0 ? undefined : Math.min(...outages)),
      show(outages.length === 0 ? undefined : Math.max(...outages)),
      `${mine.length}/${rounds}`,
    ];
  });
  const nodesSamples = results.flatMap((result) => (result.statusNodesMs === undefined ? [] : [result.statusNodesMs]));
  const masterSamples = results.flatMap((result) => (result.statusMasterMs === undefined ? [] : [result.statusMasterMs]));
  return [
    `# ha-nginx Kubernetes benchmark, ${new Date().toISOString()}`,
    "",
    `Test bed: real kube-apiserver, 3 namespace nodes, the real controller, the agent DaemonSet, nginx:1.27 pods; `
      + `advertisementInterval 1s, health probe 200 ms x 2, preemption Never; client probe every ${probeIntervalMs} ms, `
      + `timeout ${probeTimeoutMs} ms. outage_ms: the median over rounds of the longest run of failed requests `
      + `(first failure to first success); failed_requests: the total over rounds.`,
    "",
    markdownTable(["scenario", "outage_ms", "failed_requests", "min_outage_ms", "max_outage_ms", "rounds"], outageRows),
    "",
    markdownTable(["measure", "ms"], [
      ["kubectl apply of the HAVIP to the VIP answering the client", String(applyToAnswerMs)],
      ["kubectl apply of the HAVIP to one MASTER + two BACKUP in status", String(applyToSettledMs)],
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
  ].join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "3" },
      scenarios: { type: "string", default: scenarioNames.join(",") },
    },
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, not ${values.rounds}`);
  const scenarios = parseList(values.scenarios, scenarioNames, "scenario");
  if (process.getuid?.() !== 0) throw new Error("bench:k8s needs root (it creates network namespaces)");
  progress(`starting the test bed (${scenarios.length} scenarios x ${rounds} rounds)`);
  const bed = await startHaVipBed({ shouldWaitForNginx: true, log: progress });
  let isStopping = false;
  const onSignal = (): void => {
    if (isStopping) return;
    isStopping = true;
    progress("interrupted: tearing down the test bed");
    void bed.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const results: RoundResult[] = [];
  try {
    await waitFor(
      async () => (await bed.testbed.lab.httpGet(bed.testbed.lab.client, `http://${bed.vip}/`, { timeoutMs: 200 })).status === 200,
      { timeoutMs: 120_000, intervalMs: 20, what: "the VIP to answer the client" },
    );
    const applyToAnswerMs = Date.now() - bed.appliedAt;
    progress(`the VIP answers ${applyToAnswerMs} ms after kubectl apply`);
    await bed.settled();
    const applyToSettledMs = Date.now() - bed.appliedAt;
    progress(`settled ${applyToSettledMs} ms after kubectl apply`);
    for (let round = 1; round <= rounds; round += 1) {
      for (const scenario of scenarios) {
        try {
          results.push(await runRound(bed, scenario, round));
        } catch (err) {
          progress(`${scenario} #${round} failed: ${errorText(err)}`);
          await bed.settled(120_000);
        }
      }
    }
    const text = render(results, scenarios, rounds, applyToAnswerMs, applyToSettledMs);
    const file = writeResults("k8s", new Date(), text);
    process.stdout.write(`\n${text}\n`);
    progress(`written to ${file}`);
  } finally {
    if (!isStopping) {
      isStopping = true;
      await bed.stop();
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:k8s failed: ${errorText(err)}\n`);
  process.exitCode = 1;
});
