// ha-nginx as users run it, on a kind cluster: the image from our Dockerfile, `helm install` of charts/ha-nginx with
// the bundled nginx and a VIP on the kind network, and a client container requesting the VIP every 10 ms. The
// scenarios are shared by test/kind/kind.test.ts (asserts) and bench/kind.ts (prints the table).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION, type HaVipStatus, type NodeStatusEntry } from "../../src/api/v1alpha1/index.js";
import { startProbeProcess } from "../../testing/lab/probe.js";
import type { Probe, ProbeReport } from "../../testing/lab/types.js";
import { waitFor } from "../../testing/lab/wait.js";
import { locateBinaries } from "../../testing/testbed/binaries.js";
import { createKindCluster, docker, kindBinary, repo, run, type KindCluster, type KindImages, type KindNode } from "./kind-cluster.js";

export const namespace = "ha-nginx-system";
export const release = "edge";
export const havipName = "edge-ha-nginx";
const agentDaemonSet = "ha-nginx-agent";
const nginxSelector = "app.kubernetes.io/name=ha-nginx-nginx";
const agentSelector = "app.kubernetes.io/name=ha-nginx-agent";
const controllerSelector = "app.kubernetes.io/name=ha-nginx-controller";

export interface ScenarioRow {
  readonly scenario: string;
  /** The longest run of failed requests, first failure to next success. */
  readonly outageMs: number;
  readonly failedRequests: number;
  readonly sentRequests: number;
  /** Scenario-specific figures: takeover, status, rejoin times. */
  readonly figures: Readonly<Record<string, number | string>>;
  /**
   * The agents' VRRP transitions, health changes and warnings during the scenario, merged with the probe's failure
   * windows, in time order: a failed assertion prints the row, so it says which node did what when.
   */
  readonly timeline?: readonly string[];
}

export interface PodUsage {
  readonly pod: string;
  readonly node: string;
  readonly restarts: number;
  readonly isOomKilled: boolean;
  readonly workingSetMiB: number;
  readonly peakMiB: number;
  readonly throttledPeriods: number;
  readonly periods: number;
  readonly cpuMillicores: number;
  readonly request: string;
  readonly limit: string;
}

export interface KindHa {
  readonly cluster: KindCluster;
  readonly vip: string;
  readonly vipAddress: string;
  /** The node whose interface holds the VIP now, or undefined when none or several do. */
  holder(): Promise<KindNode | undefined>;
  holders(): Promise<KindNode[]>;
  statusNodes(): Promise<readonly NodeStatusEntry[]>;
  /** status.goneNodes: the selected nodes whose agent the controller has not heard from for its grace. */
  goneNodes(): Promise<readonly string[]>;
  statusMaster(): Promise<string>;
  /** A fresh client probe for one scenario. */
  startClient(label: string): Promise<Probe>;
  node(name: string): KindNode;
  podOn(selector: string, node: string): Promise<string>;
  /**
   * Follows every agent pod's log from now on, so that a pod deleted during the scenario keeps its last lines; `stop`
   * adds the pods started since, and returns the lines worth reading (transitions, health, warnings).
   */
  tapAgentLogs(): AgentLogTap;
  close(): Promise<void>;
}

export interface TimelineLine {
  /** Epoch milliseconds. */
  readonly time: number;
  readonly text: string;
}

export interface AgentLogTap {
  stop(): Promise<TimelineLine[]>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

export interface KindHaOptions {
  readonly runId: string;
  readonly images: KindImages;
  readonly log: (line: string) => void;
}

/** Preemption Never, so no node takes the VIP back on its return; priorities favour the workers. */
export async function startKindHa(opts: KindHaOptions): Promise<{ ha: KindHa; install: ScenarioRow }> {
  const cluster = await createKindCluster({ runId: opts.runId, images: opts.images, workers: 2, log: opts.log });
  let clientCount = 0;
  const probes = new Set<Probe>();
  try {
    await run(kindBinary(), ["load", "docker-image", "--name", cluster.name, opts.images.app, opts.images.nginx], { timeoutMs: 300_000 });
    const [first, second, third] = cluster.nodes;
    if (first === undefined || second === undefined || third === undefined) throw new Error("kind made fewer than 3 nodes");
    for (const node of cluster.nodes) await cluster.kubectl(["label", "node", node.name, "ha-nginx.io/edge=true", "--overwrite"]);
    const [network] = cluster.subnet.split("/");
    const octets = (network ?? "").split(".");
    const vipAddress = `${octets[0]}.${octets[1]}.200.200`;
    const vip = `${vipAddress}/${cluster.prefixLength}`;
    const workers = cluster.nodes.filter((node) => node.role === "worker");
    const controlPlane = cluster.nodes.find((node) => node.role === "control-plane");

    const holders = async (): Promise<KindNode[]> => {
      const held: KindNode[] = [];
      for (const node of cluster.nodes) {
        const result = await cluster.exec(node, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"], { isFailureExpected: true });
        if (result.stdout.includes(` ${vipAddress}/`)) held.push(node);
      }
      return held;
    };
    const statusOf = async (): Promise<HaVipStatus> => {
      const result = await cluster.kubectl(["get", `${HAVIP_PLURAL}.${HAVIP_GROUP}`, havipName, "-n", namespace, "-o", "json"]);
      const object = JSON.parse(result.stdout) as { apiVersion: string; status?: HaVipStatus };
      if (object.apiVersion !== `${HAVIP_GROUP}/${HAVIP_VERSION}`) throw new Error(`unexpected apiVersion ${object.apiVersion}`);
      return object.status ?? {};
    };
    const ha: KindHa = {
      cluster,
      vip,
      vipAddress,
      holders,
      async holder() {
        const held = await holders();
        return held.length === 1 ? held[0] : undefined;
      },
      async statusNodes() {
        return (await statusOf()).nodes ?? [];
      },
      async goneNodes() {
        return (await statusOf()).goneNodes ?? [];
      },
      async statusMaster() {
        return (await statusOf()).master ?? "";
      },
      async startClient(label) {
        clientCount += 1;
        const container = `${cluster.name}-client-${clientCount}-${label}`;
        const probe = await startProbeProcess((args) => cluster.runOnNetwork(container, opts.images.client, args), `http://${vipAddress}/`, {
          intervalMs: 10,
          timeoutMs: 100,
        });
        probes.add(probe);
        return probe;
      },
      node(name) {
        const found = cluster.nodes.find((node) => node.name === name);
        if (found === undefined) throw new Error(`no kind node ${name}`);
        return found;
      },
      async podOn(selector, node) {
        const result = await cluster.kubectl(["get", "pods", "-n", namespace, "-l", selector, "--field-selector", `spec.nodeName=${node}`, "-o", "jsonpath={.items[*].metadata.name}"]);
        const [pod] = result.stdout.trim().split(/\s+/).filter((name) => name !== "");
        if (pod === undefined) throw new Error(`no pod ${selector} on ${node}`);
        return pod;
      },
      tapAgentLogs() {
        return tapAgentLogs(cluster);
      },
      async close() {
        for (const probe of probes) await probe.stop();
        await cluster.delete();
      },
    };

    await cluster.kubectl(["apply", "--server-side", "-f", join(repo, "crds")]);
    const probe = await ha.startClient("install");
    const [appRepository, appTag] = splitImage(opts.images.app);
    const [nginxRepository, nginxTag] = splitImage(opts.images.nginx);
    const started = Date.now();
    opts.log("helm install");
    await cluster.helm(
      [
        "install", release, join(repo, "charts/ha-nginx"), "-n", namespace, "--create-namespace", "--wait", "--timeout", "5m",
        "--set", `image.repository=${appRepository}`, "--set", `image.tag=${appTag}`, "--set", "image.pullPolicy=Never",
        "--set", "nginx.enabled=true", "--set", `nginx.image.repository=${nginxRepository}`, "--set", `nginx.image.tag=${nginxTag}`,
        "--set", "nginx.image.pullPolicy=Never",
        "--set", "vip.enabled=true", "--set", `vip.address=${vip}`, "--set", "vip.preemption.mode=Never",
        "--set", `vip.priorities[0].node=${workers[0]?.name ?? ""}`, "--set", "vip.priorities[0].priority=150",
        "--set", `vip.priorities[1].node=${workers[1]?.name ?? ""}`, "--set", "vip.priorities[1].priority=100",
        "--set", `vip.priorities[2].node=${controlPlane?.name ?? ""}`, "--set", "vip.priorities[2].priority=50",
        "--set", "edge.tolerations[0].key=node-role.kubernetes.io/control-plane",
        "--set", "edge.tolerations[0].operator=Exists", "--set", "edge.tolerations[0].effect=NoSchedule",
        // Three nodes for two controller replicas: after a drain both would otherwise share the one worker left.
        "--set", "controller.tolerations[0].key=node-role.kubernetes.io/control-plane",
        "--set", "controller.tolerations[0].operator=Exists", "--set", "controller.tolerations[0].effect=NoSchedule",
      ],
      { timeoutMs: 330_000 },
    );
    await waitFor(async () => (probe.snapshot().ok > 0), { timeoutMs: 120_000, intervalMs: 100, what: "the VIP answering the client" });
    // Under preemption Never the first agent to finish Master_Down_Interval wins, whatever its priority.
    let held: string[] = [];
    await waitFor(async () => {
      held = (await holders()).map((node) => node.name);
      return held.length === 1;
    }, { timeoutMs: 60_000, intervalMs: 250, what: "one node alone holding the VIP" }).catch((error: unknown) => {
      throw new Error(`${String(error)}; held by [${held.join(", ")}]`);
    });
    await sleep(1000);
    const report = await probe.stop();
    probes.delete(probe);
    const firstAnswer = firstAnswerAt(report);
    return {
      ha,
      install: { scenario: "install until the VIP answers", outageMs: 0, failedRequests: 0, sentRequests: report.sent, figures: { answeringAfterMs: firstAnswer - started } },
    };
  } catch (error) {
    for (const probe of probes) await probe.stop();
    await cluster.delete();
    throw error;
  }
}

/** An agent log line is kept when it tells what the router did or saw. */
const TIMELINE_MESSAGES = /^(VRRP |handing over|stopped|router starting|node (un)?healthy|removing a virtual address|a virtual address)/;

interface AgentLogLine {
  readonly time?: number;
  readonly level?: number;
  readonly node?: string;
  readonly msg?: string;
  readonly detail?: string;
}

function tapAgentLogs(cluster: KindCluster): AgentLogTap {
  const since = new Date();
  const kubectl = locateBinaries().kubectl;
  const seen = new Set<string>();
  const kept: TimelineLine[] = [];
  const take = (text: string): void => {
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line === "" || seen.has(line)) continue;
      seen.add(line);
      let parsed: AgentLogLine;
      try {
        parsed = JSON.parse(line) as AgentLogLine;
      } catch {
        continue;
      }
      const message = parsed.msg ?? "";
      if ((parsed.level ?? 0) < 40 && !TIMELINE_MESSAGES.test(message)) continue;
      const time = parsed.time ?? 0;
      kept.push({ time, text: `${new Date(time).toISOString().slice(11, 23)} ${parsed.node ?? "?"}: ${message}${parsed.detail === undefined ? "" : ` (${parsed.detail})`}` });
    }
  };
  // One follower for the pods present now: `kubectl logs -f -l` does not pick up pods created later, which `stop` reads.
  const follower = spawn(kubectl, ["--kubeconfig", cluster.kubeconfig, "logs", "-f", "-n", namespace, "-l", agentSelector, "--max-log-requests=20", "--since=1s"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let pending = "";
  follower.stdout.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8");
    const end = pending.lastIndexOf("\n");
    if (end < 0) return;
    take(pending.slice(0, end));
    pending = pending.slice(end + 1);
  });
  follower.once("error", () => undefined);
  return {
    async stop() {
      const after = await cluster.kubectl(["logs", "-n", namespace, "-l", agentSelector, "--max-log-requests=20", `--since-time=${since.toISOString()}`], { isFailureExpected: true });
      take(after.stdout);
      follower.kill("SIGTERM");
      take(pending);
      return kept.sort((a, b) => a.time - b.time);
    },
  };
}

/** The probe's failure windows as timeline lines. */
function probeTimeline(report: ProbeReport): TimelineLine[] {
  return report.windows.map((window) => ({
    time: window.startMs,
    text: `${new Date(window.startMs).toISOString().slice(11, 23)} client: ${window.failed} failed until ${new Date(window.endMs).toISOString().slice(11, 23)}${window.isOpen ? " (still failing at the end)" : ""}`,
  }));
}

/**
 * Runs a scenario with the agents' logs tapped: its row carries the merged timeline, and a scenario that throws has
 * the timeline appended to its error.
 */
async function withTimeline(ha: KindHa, scenario: () => Promise<{ row: ScenarioRow; report: ProbeReport }>): Promise<ScenarioRow> {
  const tap = ha.tapAgentLogs();
  let result: { row: ScenarioRow; report: ProbeReport };
  try {
    result = await scenario();
  } catch (error) {
    const lines = await tap.stop();
    throw new Error(`${String(error)}\nagent timeline:\n${lines.map((line) => line.text).join("\n")}`, { cause: error });
  }
  const lines = [...(await tap.stop()), ...probeTimeline(result.report)].sort((x, y) => x.time - y.time);
  return { ...result.row, timeline: lines.map((line) => line.text) };
}

function splitImage(image: string): [string, string] {
  const colon = image.lastIndexOf(":");
  return [image.slice(0, colon), image.slice(colon + 1)];
}

/** Until the VIP first answers, every request fails: the first outage window ends at the first success. */
function firstAnswerAt(report: ProbeReport): number {
  const first = report.windows[0];
  if (first === undefined || first.isOpen) throw new Error("the VIP never answered the client");
  return first.endMs;
}

export function rowFrom(scenario: string, report: ProbeReport, figures: Record<string, number | string> = {}): ScenarioRow {
  const failedWith = Object.entries(report.failedWith).map(([why, count]) => `${count} ${why}`).join(" + ");
  return { scenario, outageMs: report.maxOutageMs, failedRequests: report.failed, sentRequests: report.sent, figures: { ...figures, ...(failedWith === "" ? {} : { failedWith }) } };
}

async function waitForMove(ha: KindHa, from: string, timeoutMs: number): Promise<KindNode> {
  let moved: KindNode | undefined;
  await waitFor(async () => {
    moved = await ha.holder();
    return moved !== undefined && moved.name !== from;
  }, { timeoutMs, intervalMs: 100, what: `the VIP moving off ${from}` });
  if (moved === undefined) throw new Error("unreachable");
  return moved;
}

async function waitForRollout(ha: KindHa, kind: string, name: string): Promise<void> {
  await ha.cluster.kubectl(["rollout", "status", "-n", namespace, `${kind}/${name}`, "--timeout=240s"], { timeoutMs: 250_000 });
}

/**
 * Every agent pod Ready and on the DaemonSet's current revision. `rollout status` cannot tell: the agent DaemonSet is
 * OnDelete, and the controller replaces its pods itself, one node at a time.
 */
async function waitForAgentsCurrent(ha: KindHa): Promise<void> {
  let seen = "";
  await waitFor(async () => {
    const revision = (await ha.cluster.kubectl(["get", "daemonset", "-n", namespace, agentDaemonSet, "-o", "jsonpath={.spec.template.metadata.annotations.ha-nginx\\.io/agent-revision}"])).stdout.trim();
    const pods = await ha.cluster.kubectl(["get", "pods", "-n", namespace, "-l", agentSelector, "-o", "jsonpath={range .items[*]}{.metadata.annotations.ha-nginx\\.io/agent-revision} {.status.conditions[?(@.type==\"Ready\")].status} {.metadata.deletionTimestamp}{\"\\n\"}{end}"]);
    const lines = pods.stdout.trim().split("\n").filter((line) => line.trim() !== "");
    seen = `revision ${revision}; pods: ${lines.join(", ")}`;
    return revision !== "" && lines.length === ha.cluster.nodes.length && lines.every((line) => line.trim() === `${revision} True`);
  }, { timeoutMs: 240_000, intervalMs: 500, what: "every agent Ready on the current revision" }).catch((error: unknown) => {
    throw new Error(`${String(error)}; ${seen}`);
  });
}

async function waitForStatusMaster(ha: KindHa, node: string, timeoutMs: number): Promise<void> {
  await waitFor(async () => (await ha.statusMaster()) === node, { timeoutMs, intervalMs: 250, what: `status.master = ${node}` });
}

/**
 * Every node MASTER or BACKUP in status.nodes: a scenario that starts while the node an earlier one disturbed is still
 * in FAULT (its new nginx pod not Ready yet: `rollout status` can read the DaemonSet's status from before the delete)
 * measures a move with one Backup fewer than it says.
 */
async function waitForAllNodesRunning(ha: KindHa, timeoutMs: number): Promise<void> {
  let states = "";
  await waitFor(async () => {
    const entries = await ha.statusNodes();
    states = entries.map((entry) => `${entry.node} ${entry.state}`).join(", ");
    return entries.length === ha.cluster.nodes.length && entries.every((entry) => entry.state === "MASTER" || entry.state === "BACKUP");
  }, { timeoutMs, intervalMs: 500, what: "every node MASTER or BACKUP" }).catch((error: unknown) => {
    throw new Error(`${String(error)}; status.nodes: ${states}`);
  });
}

async function currentMaster(ha: KindHa): Promise<KindNode> {
  await waitForAllNodesRunning(ha, 120_000);
  let holder: KindNode | undefined;
  await waitFor(async () => (holder = await ha.holder()) !== undefined, { timeoutMs: 30_000, intervalMs: 200, what: "one node holding the VIP" });
  if (holder === undefined) throw new Error("unreachable");
  await waitForStatusMaster(ha, holder.name, 30_000);
  return holder;
}

async function deleteMastersPod(ha: KindHa, label: string, scenario: string, selector: string, settle: () => Promise<void>): Promise<ScenarioRow> {
  const master = await currentMaster(ha);
  return withTimeline(ha, async () => {
    const probe = await ha.startClient(label);
    const pod = await ha.podOn(selector, master.name);
    await ha.cluster.kubectl(["delete", "pod", "-n", namespace, pod, "--wait=false"]);
    const next = await waitForMove(ha, master.name, 30_000);
    await settle();
    await waitForReplacement(ha, selector, master.name, pod);
    await sleep(1000);
    const report = await probe.stop();
    return { row: rowFrom(scenario, report, { from: master.name, to: next.name }), report };
  });
}

/** `rollout status` right after a pod delete may read the DaemonSet's status from before it: wait for the new pod. */
async function waitForReplacement(ha: KindHa, selector: string, node: string, deleted: string): Promise<void> {
  await waitFor(async () => {
    const result = await ha.cluster.kubectl(["get", "pods", "-n", namespace, "-l", selector, "--field-selector", `spec.nodeName=${node}`, "-o", "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]);
    return result.stdout.trim().split("\n").some((line) => {
      const [name, ready] = line.trim().split(" ");
      return name !== deleted && ready === "True";
    });
  }, { timeoutMs: 240_000, intervalMs: 500, what: `a Ready replacement of ${deleted} on ${node}` });
}

/** Deleting the master's nginx pod: its readiness goes, the agent hands the VIP over, then nginx stops. */
export function nginxPodDelete(ha: KindHa): Promise<ScenarioRow> {
  return deleteMastersPod(ha, "nginx-pod-delete", "nginx pod deleted (planned)", nginxSelector, () => waitForRollout(ha, "daemonset", `${release}-ha-nginx-nginx`));
}

/** Deleting the master's agent pod: SIGTERM, the agent sends priority 0 and keeps the VIP until its successor speaks. */
export function agentPodDelete(ha: KindHa): Promise<ScenarioRow> {
  return deleteMastersPod(ha, "agent-pod-delete", "agent pod deleted (planned)", agentSelector, () => waitForAgentsCurrent(ha));
}

/** A `helm upgrade` that changes what the agents run, so the controller replaces every agent, one at a time. */
export async function helmUpgradeRollsAgents(ha: KindHa): Promise<ScenarioRow> {
  await currentMaster(ha);
  return withTimeline(ha, () => helmUpgradeMeasured(ha));
}

async function helmUpgradeMeasured(ha: KindHa): Promise<{ row: ScenarioRow; report: ProbeReport }> {
  const before = await ha.cluster.kubectl(["get", "daemonset", "-n", namespace, agentDaemonSet, "-o", "jsonpath={.metadata.generation}"]);
  const probe = await ha.startClient("helm-upgrade");
  await ha.cluster.helm(["upgrade", release, join(repo, "charts/ha-nginx"), "-n", namespace, "--reuse-values", "--set", "controller.logLevel=debug", "--wait", "--timeout", "5m"], { timeoutMs: 330_000 });
  await waitFor(async () => {
    const after = await ha.cluster.kubectl(["get", "daemonset", "-n", namespace, agentDaemonSet, "-o", "jsonpath={.metadata.generation}"]);
    return after.stdout !== before.stdout;
  }, { timeoutMs: 60_000, intervalMs: 500, what: "the controller updating the agent DaemonSet" });
  await waitForAgentsCurrent(ha);
  await currentMaster(ha);
  await sleep(1000);
  const report = await probe.stop();
  return { row: rowFrom("helm upgrade rolls the agents (planned)", report), report };
}

/** `kubectl drain` of the master's node; then uncordon. */
export async function drainMaster(ha: KindHa): Promise<ScenarioRow> {
  const master = await currentMaster(ha);
  try {
    return await withTimeline(ha, async () => {
      const probe = await ha.startClient("drain");
      await ha.cluster.kubectl(["drain", master.name, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=180s"], { timeoutMs: 200_000 });
      const next = await waitForMove(ha, master.name, 30_000);
      await sleep(1000);
      const report = await probe.stop();
      return { row: rowFrom("kubectl drain of the master's node (planned)", report, { from: master.name, to: next.name }), report };
    });
  } finally {
    await ha.cluster.kubectl(["uncordon", master.name]);
  }
}

/** nginx SIGKILLed inside its container on the master: the agent's probe fails and the VIP moves. */
export async function nginxKill(ha: KindHa): Promise<ScenarioRow> {
  const master = await currentMaster(ha);
  return withTimeline(ha, async () => {
    const probe = await ha.startClient("nginx-kill");
    await ha.cluster.exec(master, ["pkill", "-KILL", "-x", "nginx"]);
    const next = await waitForMove(ha, master.name, 30_000);
    await waitForRollout(ha, "daemonset", `${release}-ha-nginx-nginx`);
    await sleep(1000);
    const report = await probe.stop();
    return { row: rowFrom("nginx killed on the master", report, { from: master.name, to: next.name }), report };
  });
}

export interface NodeLossOptions {
  readonly label: string;
  readonly scenario: string;
  readonly lose: (node: KindNode) => Promise<void>;
  readonly restore: (node: KindNode) => Promise<void>;
}

/**
 * The master's node lost (frozen or cut off): the takeover, status showing the node gone (in status.goneNodes, once
 * the node is NotReady and the controller's grace has passed), then the node back, rejoining as BACKUP without
 * taking the VIP.
 */
export async function loseMasterNode(ha: KindHa, opts: NodeLossOptions): Promise<ScenarioRow> {
  await masterOnWorker(ha);
  const master = await currentMaster(ha);
  const probe = await ha.startClient(opts.label);
  const lostAt = performance.now();
  let restoredAt: number | undefined;
  const restore = async (): Promise<void> => {
    if (restoredAt !== undefined) return;
    restoredAt = performance.now();
    await opts.restore(master);
  };
  try {
    await opts.lose(master);
    const next = await waitForMove(ha, master.name, 30_000);
    const takeoverMs = performance.now() - lostAt;
    // The controller shows the new master once the lost node is NotReady (about 50 s), and may itself have to fail
    // over to its standby first.
    await waitForStatusMaster(ha, next.name, 150_000);
    const statusMasterMs = performance.now() - lostAt;
    await waitFor(async () => (await ha.goneNodes()).includes(master.name), {
      timeoutMs: 180_000,
      intervalMs: 1000,
      what: `${master.name} in status.goneNodes`,
    });
    const goneMs = performance.now() - lostAt;
    await restore();
    const isBackupAgain = async (): Promise<boolean> =>
      (await ha.statusNodes()).some((entry) => entry.node === master.name && entry.state === "BACKUP") && !(await ha.goneNodes()).includes(master.name);
    await waitFor(isBackupAgain, {
      timeoutMs: 120_000,
      intervalMs: 500,
      what: `${master.name} back as BACKUP`,
    });
    const rejoinMs = performance.now() - (restoredAt ?? lostAt);
    const flipsSeen: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      const holder = await ha.holder();
      if (holder?.name !== next.name) flipsSeen.push(holder?.name ?? "none or several");
      await sleep(500);
    }
    return rowFrom(opts.scenario, await probe.stop(), {
      from: master.name,
      to: next.name,
      takeoverMs: Math.round(takeoverMs),
      statusMasterMs: Math.round(statusMasterMs),
      goneMs: Math.round(goneMs),
      rejoinMs: Math.round(rejoinMs),
      holderChangesAfterRejoin: flipsSeen.length,
    });
  } finally {
    // A failed step must not leave the node frozen or cut off for the scenarios after it.
    await restore();
    await probe.stop();
  }
}

/** Freezing or cutting the control-plane node would take the API server too: the VIP moves to a worker first. */
async function masterOnWorker(ha: KindHa): Promise<void> {
  const master = await currentMaster(ha);
  if (master.role === "worker") return;
  const pod = await ha.podOn(nginxSelector, master.name);
  await ha.cluster.kubectl(["delete", "pod", "-n", namespace, pod, "--wait=false"]);
  await waitForMove(ha, master.name, 30_000);
  await waitForRollout(ha, "daemonset", `${release}-ha-nginx-nginx`);
}

export function pauseMasterNode(ha: KindHa): Promise<ScenarioRow> {
  return loseMasterNode(ha, {
    label: "pause",
    scenario: "master's node frozen (docker pause)",
    lose: async (node) => { await docker(["pause", node.name]); },
    restore: async (node) => { await docker(["unpause", node.name]); },
  });
}

export function cutMasterNode(ha: KindHa): Promise<ScenarioRow> {
  let defaultRoute = "";
  return loseMasterNode(ha, {
    label: "link-cut",
    scenario: "master's node cut off its network",
    lose: async (node) => {
      defaultRoute = (await ha.cluster.exec(node, ["ip", "route", "show", "default"])).stdout.trim();
      await ha.cluster.exec(node, ["ip", "link", "set", "eth0", "down"]);
    },
    restore: async (node) => {
      await ha.cluster.exec(node, ["ip", "link", "set", "eth0", "up"]);
      if (defaultRoute !== "") await ha.cluster.exec(node, ["sh", "-c", `ip route replace ${defaultRoute}`]);
    },
  });
}

/** Every ha-nginx pod's restarts, OOM kills, and its cgroup's memory and CPU beside the request and limit. */
export async function podUsage(ha: KindHa): Promise<PodUsage[]> {
  const listed = await ha.cluster.kubectl(["get", "pods", "-n", namespace, "-l", `${agentSelector.split("=")[0]} in (ha-nginx-agent, ha-nginx-controller)`, "-o", "json"]);
  const pods = (JSON.parse(listed.stdout) as { items: PodJson[] }).items;
  const usage: PodUsage[] = [];
  for (const pod of pods) {
    const container = pod.status?.containerStatuses?.[0];
    const containerId = (container?.containerID ?? "").replace(/^containerd:\/\//, "");
    const node = ha.node(pod.spec?.nodeName ?? "");
    const cgroup = await readCgroup(ha, node, containerId);
    const resources = pod.spec?.containers?.[0]?.resources ?? {};
    usage.push({
      pod: pod.metadata?.name ?? "",
      node: node.name,
      restarts: container?.restartCount ?? 0,
      isOomKilled: container?.lastState?.terminated?.reason === "OOMKilled",
      ...cgroup,
      request: `${resources.requests?.cpu ?? "-"} / ${resources.requests?.memory ?? "-"}`,
      limit: `${resources.limits?.cpu ?? "-"} / ${resources.limits?.memory ?? "-"}`,
    });
  }
  return usage;
}

interface PodJson {
  metadata?: { name?: string };
  spec?: { nodeName?: string; containers?: { resources?: { requests?: Record<string, string>; limits?: Record<string, string> } }[] };
  status?: { containerStatuses?: { containerID?: string; restartCount?: number; lastState?: { terminated?: { reason?: string } } }[] };
}

/**
 * Reads a container's cgroup (v1 here; v2 names in brackets) inside its kind node: working set = usage minus
 * inactive file pages, as the kubelet computes it; peak; CFS throttling; CPU from usage over one second.
 */
async function readCgroup(ha: KindHa, node: KindNode, containerId: string): Promise<Pick<PodUsage, "workingSetMiB" | "peakMiB" | "throttledPeriods" | "periods" | "cpuMillicores">> {
  const script = `
    set -e
    pid=$(ctr -n k8s.io task ls | awk -v id="${containerId}" '$1 == id { print $2 }')
    path() { awk -F: -v c="$1" '{ n = split($2, names, ","); for (i = 1; i <= n; i++) if (names[i] == c) print $3 }' /proc/$pid/cgroup; }
    mem=/sys/fs/cgroup/memory$(path memory)
    cpu=/sys/fs/cgroup/cpu$(path cpu)
    acct=/sys/fs/cgroup/cpuacct$(path cpuacct)
    a=$(cat $acct/cpuacct.usage); sleep 1; b=$(cat $acct/cpuacct.usage)
    echo "usage $(cat $mem/memory.usage_in_bytes)"
    echo "inactive $(awk '$1 == "total_inactive_file" { print $2 }' $mem/memory.stat)"
    echo "peak $(cat $mem/memory.max_usage_in_bytes)"
    awk '{ print $1, $2 }' $cpu/cpu.stat
    echo "cpu_ns $((b - a))"
  `;
  const result = await ha.cluster.exec(node, ["bash", "-c", script]);
  const values = new Map(result.stdout.trim().split("\n").map((line) => {
    const [key = "", value = "0"] = line.trim().split(/\s+/);
    return [key, Number(value)] as const;
  }));
  const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;
  return {
    workingSetMiB: mib((values.get("usage") ?? 0) - (values.get("inactive") ?? 0)),
    peakMiB: mib(values.get("peak") ?? 0),
    throttledPeriods: values.get("nr_throttled") ?? 0,
    periods: values.get("nr_periods") ?? 0,
    cpuMillicores: Math.round((values.get("cpu_ns") ?? 0) / 1e6),
  };
}

/** `helm uninstall` with the VIP present: the pre-delete hook deletes it; nothing may stay on any node. */
export async function helmUninstall(ha: KindHa): Promise<{ seconds: number; vipHolders: string[]; agentPods: number; controllerPods: number }> {
  const started = performance.now();
  await ha.cluster.helm(["uninstall", release, "-n", namespace, "--wait", "--timeout", "5m"], { timeoutMs: 330_000 });
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  await waitFor(async () => {
    const pods = await ha.cluster.kubectl(["get", "pods", "-n", namespace, "-l", agentSelector, "-o", "name"]);
    return pods.stdout.trim() === "";
  }, { timeoutMs: 60_000, intervalMs: 500, what: "no agent pod left" });
  const agents = await ha.cluster.kubectl(["get", "pods", "-n", namespace, "-l", agentSelector, "-o", "name"]);
  const controllers = await ha.cluster.kubectl(["get", "pods", "-n", namespace, "-l", controllerSelector, "-o", "name"]);
  return {
    seconds,
    vipHolders: (await ha.holders()).map((node) => node.name),
    agentPods: agents.stdout.trim() === "" ? 0 : agents.stdout.trim().split("\n").length,
    controllerPods: controllers.stdout.trim() === "" ? 0 : controllers.stdout.trim().split("\n").length,
  };
}

/** Every scenario after the install, in the order the e2e and the benchmark run them. */
export const failoverScenarios = [nginxPodDelete, agentPodDelete, helmUpgradeRollsAgents, drainMaster, nginxKill, pauseMasterNode, cutMasterNode] as const;
