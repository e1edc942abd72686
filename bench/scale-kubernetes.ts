// The scale benchmark's Kubernetes half: the operator on the e2e test bed (real API server, the real controller, the
// one agent DaemonSet run by the stand-in kubelet on 3 nodes, nginx pods) with N HighAvailabilityVIPs at 1 s adverts.
// Once node-1 is Master and the other nodes Backup for every resource, it measures each node's agent over a warm-up and a window
// (RSS, CPU, flips, the watches it holds open on the API server), then applies one more resource and times it to its
// VIP answering the client, checking that no other router flipped and no agent restarted meanwhile.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { HAVIP_API_VERSION, HAVIP_GROUP, HAVIP_KIND, HAVIP_PLURAL, HAVIP_VERSION, type HaVipStatus } from "../src/api/v1alpha1/index.js";
import { DEFAULT_AGENT_HTTP_PORT } from "../src/controller/command.js";
import { addressesOn, waitFor, type Lab } from "../testing/lab/index.js";
import type { AgentDocument, AgentState } from "../testing/lab/agent.js";
import { havipName, havipNamespace, havipSystemNamespace, isPodReady, startHaVipBed, type HaVipBed } from "../testing/testbed/havip-bed.js";
import { errorText, failureOf, mib, sleep } from "./support/bed.js";
import { markdownTable } from "./support/report.js";
import { cpuText, sampleSteadyResources, type SteadySample } from "./support/resources.js";

// The test bed's nodes; node-1 leads every resource (preemption Always), so each node's roles are known in advance.
const nodePriorities = [["node-1", 150], ["node-2", 100], ["node-3", 50]] as const;
const masterNode = "node-1";
const agentUser = `system:serviceaccount:${havipSystemNamespace}:ha-nginx-agent`;
const agentSelector = "app.kubernetes.io/name=ha-nginx-agent";
// lab.vip() hands out 51 addresses (index 0..50, .200 to .250). Past those, resources take .101 to .199 of the lab's
// /24: the client has .100 and the nodes .11 to .13, and pods use their node's address, so nothing else claims them.
const labVipCount = 51;
const extraVipFirstOctet = 101;
const extraVipCount = 99;
/** N resources and the one more applied after the window each need an address. */
export const maxResources = labVipCount + extraVipCount - 1;
// Roles unchanged this long before the window, so startup work (status writes, GARP bursts) stays out of it.
const quietMs = 5_000;
// The controller takes one resource at a time, a few a second on two busy cores (100 got their VRIDs in 56 s at load
// 5 and in 135 s at load 20); a minute plus 2 s per resource leaves room for that.
const settleTimeoutMsPer = (count: number): number => 60_000 + 2_000 * count;
const answerTimeoutMs = 60_000;
// Logs only watches, when they start and when they end: enough to count each user's open watches per node.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["watch"]
  - level: None
`;

interface Resource {
  readonly name: string;
  readonly vip: string;
}

interface OpenWatches {
  /** Per node (the token's node-name), the resources of the watches the agent there holds open. */
  readonly byNode: ReadonlyMap<string, readonly string[]>;
}

interface NodeRow extends SteadySample {
  readonly flips: number;
  readonly watches: readonly string[];
}

interface OneMore {
  readonly vridMs: number;
  readonly answerMs: number;
  /** To one MASTER and two BACKUP in the new resource's status.nodes. */
  readonly statusMs: number;
  /** Per node, the other routers whose state, last transition or transition count changed. */
  readonly changedByNode: ReadonlyMap<string, readonly string[]>;
  readonly podsBefore: number;
  readonly podsAfter: number;
  /** Agent pods or processes after that are not among those before (a restart, a replacement), as "node pod pid". */
  readonly replaced: readonly string[];
  readonly watches: OpenWatches;
  readonly apiWatches: number;
}

interface KubernetesRun {
  readonly resources: number;
  readonly rows: readonly NodeRow[];
  readonly agentPods?: number;
  /** Every client's open watches on the API server (apiserver_longrunning_requests{verb="WATCH"} summed). */
  readonly apiWatches?: number;
  /** From applying the first resource (the bed's) to the settled state, all N created in between. */
  readonly settleMs?: number;
  /** The milestones of the settled state, in milliseconds from applying the first resource. */
  readonly milestonesMs: Milestones;
  readonly vrids?: VridTrack;
  readonly unsettled?: string;
  readonly oneMore?: OneMore;
  readonly oneMoreError?: string;
  readonly loadAverage: string;
  readonly error?: string;
}

function resourceAt(lab: Lab, index: number): Resource {
  const firstThree = lab.subnet.split(".").slice(0, 3).join(".");
  const address = index < labVipCount ? lab.vip(index).address : `${firstThree}.${extraVipFirstOctet + index - labVipCount}`;
  return { name: index === 0 ? havipName : `vip-${String(index + 1).padStart(3, "0")}`, vip: `${address}/${lab.prefixLength}` };
}

// What a cluster runs: the default transport (unicast to the nodes the controller publishes, successor naming on), so
// a new resource's best router takes over as soon as its peers' candidacies are heard. VRRPv3, 1 s adverts unless
// `interval` is undefined (the default, 250 ms), preemption on. The health check is the nginx pods' readiness from the agent's shared pod watch, what a cluster runs;
// no local probe, which would cost per resource.
function resourceObject(resource: Resource, interval: string | undefined): object {
  return {
    apiVersion: HAVIP_API_VERSION,
    kind: HAVIP_KIND,
    metadata: { name: resource.name, namespace: havipNamespace },
    spec: {
      addresses: [resource.vip],
      interface: "eth0",
      vrrpVersion: 3,
      ...(interval === undefined ? {} : { advertisementInterval: interval }),
      preemption: { mode: "Always" },
      nodes: { priorities: nodePriorities.map(([node, priority]) => ({ node, priority })) },
      healthCheck: { nginxPodSelector: { matchLabels: { app: "web" } } },
    },
  };
}

async function createResource(bed: HaVipBed, resource: Resource, interval: string | undefined): Promise<void> {
  await bed.custom.createNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, namespace: havipNamespace, plural: HAVIP_PLURAL, body: resourceObject(resource, interval) });
}

async function statuses(bed: HaVipBed): Promise<Map<string, HaVipStatus>> {
  const list = (await bed.custom.listNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, namespace: havipNamespace, plural: HAVIP_PLURAL })) as {
    items?: { metadata?: { name?: string }; status?: HaVipStatus }[];
  };
  return new Map((list.items ?? []).map((item) => [item.metadata?.name ?? "", item.status ?? {}]));
}

// One object, not the list: listing 100 takes long enough on a loaded machine to blur a timing.
async function statusOf(bed: HaVipBed, name: string): Promise<HaVipStatus> {
  const object = (await bed.custom.getNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, namespace: havipNamespace, plural: HAVIP_PLURAL, name })) as {
    status?: HaVipStatus;
  };
  return object.status ?? {};
}

/** One MASTER on node-1 and BACKUP on the others in status.nodes. */
function isSettledStatus(status: HaVipStatus | undefined): boolean {
  const nodes = status?.nodes ?? [];
  return nodes.length === nodePriorities.length && nodePriorities.every(([node]) => nodes.some((entry) => entry.node === node && entry.state === (node === masterNode ? "MASTER" : "BACKUP")));
}

/** Each node's agent /state, undefined for an agent that does not answer. */
async function agentDocuments(bed: HaVipBed): Promise<Map<string, AgentDocument | undefined>> {
  const { testbed } = bed;
  const documents = await Promise.all(testbed.nodeNames.map(async (node) => {
    const host = testbed.hostOf(node);
    const answer = await testbed.lab.httpGet(host, `http://${host.address}:${DEFAULT_AGENT_HTTP_PORT}/state`, { timeoutMs: 5_000 });
    return [node, answer.status === 200 ? (JSON.parse(answer.body) as AgentDocument) : undefined] as const;
  }));
  return new Map(documents);
}

function routerOf(document: AgentDocument | undefined, resource: Resource): AgentState | undefined {
  return document?.routers.find((router) => router.havip === `${havipNamespace}/${resource.name}`);
}

/** "Master×100", or "Master×99 none×1": every resource counted, those without a router as none. */
function roles(document: AgentDocument | undefined, resources: readonly Resource[]): string {
  const counts = new Map<string, number>();
  for (const resource of resources) {
    const state = routerOf(document, resource)?.state ?? "none";
    counts.set(state, (counts.get(state) ?? 0) + 1);
  }
  return [...counts].map(([state, n]) => `${state}×${n}`).join(" ");
}

function transitionCount(document: AgentDocument | undefined, resources: readonly Resource[]): number {
  return resources.reduce((sum, resource) => sum + (routerOf(document, resource)?.counters["transitions"] ?? 0), 0);
}

/**
 * When each part of the settled state was first seen (epoch milliseconds): every resource with its own VRID, every
 * agent's routers in their roles, every status.nodes agreeing. They tell which side a slow start waits on.
 */
interface Milestones {
  vrids?: number;
  routers?: number;
  status?: number;
}

/**
 * What status.virtualRouterID did while the resources started. A VRID that moves after allocation, or one that two
 * resources hold at once, means routers ran (or were refused as a duplicate) with a VRID that was not theirs to keep.
 */
interface VridTrack {
  readonly last: Map<string, number>;
  /** "vip-019 238 → 177" */
  readonly moves: string[];
  /** The most resources seen holding a VRID that another also held, at one look. */
  mostShared: number;
}

function trackVrids(track: VridTrack, byName: ReadonlyMap<string, HaVipStatus>): void {
  const holders = new Map<number, number>();
  for (const [name, status] of byName) {
    const vrid = status.virtualRouterID;
    if (vrid === undefined) continue;
    const previous = track.last.get(name);
    if (previous !== undefined && previous !== vrid) track.moves.push(`${name} ${previous} → ${vrid}`);
    track.last.set(name, vrid);
    holders.set(vrid, (holders.get(vrid) ?? 0) + 1);
  }
  const shared = [...holders.values()].filter((n) => n > 1).reduce((sum, n) => sum + n, 0);
  track.mostShared = Math.max(track.mostShared, shared);
}

/**
 * Waits until every agent has node-1 Master and the others Backup for every resource, status.nodes says the same,
 * and no router changed state for `quietMs`; then checks the kernel: node-1 alone holds every VIP. Returns when that
 * quiet time began (epoch milliseconds); `milestones` fills in as the parts are reached, whether it settles or not.
 */
async function waitSettled(bed: HaVipBed, resources: readonly Resource[], timeoutMs: number, milestones: Milestones, vrids: VridTrack): Promise<number> {
  let lastTotal = -1;
  let since: number | undefined;
  let quietFrom = 0;
  let where = "no answer yet";
  const isSettled = async (): Promise<boolean> => {
    const [documents, byName] = await Promise.all([agentDocuments(bed), statuses(bed)]);
    trackVrids(vrids, byName);
    const distinct = new Set(resources.map((resource) => byName.get(resource.name)?.virtualRouterID ?? 0));
    const settledInStatus = resources.filter((resource) => isSettledStatus(byName.get(resource.name))).length;
    where = [...documents].map(([node, document]) => `${node} ${document === undefined ? "no /state" : roles(document, resources)}`).join(", ") +
      `; ${distinct.size - (distinct.has(0) ? 1 : 0)} distinct VRIDs; ${settledInStatus}/${resources.length} settled in status`;
    const total = [...documents.values()].reduce((sum, document) => sum + transitionCount(document, resources), 0);
    const areRoutersInPlace = [...documents].every(([node, document]) => resources.every((resource) => routerOf(document, resource)?.state === (node === masterNode ? "Master" : "Backup")));
    const isStatusInPlace = settledInStatus === resources.length;
    const now = Date.now();
    if (!distinct.has(0) && distinct.size === resources.length) milestones.vrids ??= now;
    if (areRoutersInPlace) milestones.routers ??= now;
    if (isStatusInPlace) milestones.status ??= now;
    const isInPlace = areRoutersInPlace && isStatusInPlace;
    if (!isInPlace) since = undefined;
    else if (since === undefined || total !== lastTotal) since = now;
    lastTotal = total;
    if (since === undefined || now - since < quietMs) return false;
    quietFrom = since;
    return true;
  };
  try {
    await waitFor(isSettled, { timeoutMs, intervalMs: 500, what: `${masterNode} Master and the others Backup for all ${resources.length} resources, then ${quietMs / 1000} s without a state change` });
  } catch (err) {
    throw new Error(`${errorText(err)}; then ${where}`);
  }
  const { testbed } = bed;
  for (const node of testbed.nodeNames) {
    const held = new Set((await addressesOn(testbed.lab, testbed.hostOf(node))).map((a) => `${a.address}/${a.prefixLength}`));
    const count = resources.filter((resource) => held.has(resource.vip)).length;
    const expected = node === masterNode ? resources.length : 0;
    if (count !== expected) throw new Error(`${node} holds ${count} of the ${resources.length} VIPs, not ${expected}`);
  }
  return quietFrom;
}

/**
 * The watches each agent holds open now, from the API server's audit log: a watch request of the agents' user that
 * has started its response and not completed. Bound ServiceAccount tokens name the node, so this counts per node.
 */
function openWatches(auditLog: string): OpenWatches {
  const open = new Map<string, { node: string; resource: string }>();
  // The last piece is empty, or a line still being written.
  for (const line of readFileSync(auditLog, "utf8").split("\n").slice(0, -1)) {
    const event = JSON.parse(line) as {
      auditID: string;
      stage: string;
      user?: { username?: string; extra?: Record<string, string[] | undefined> };
      objectRef?: { resource?: string };
    };
    if (event.user?.username !== agentUser) continue;
    if (event.stage === "ResponseStarted") {
      open.set(event.auditID, { node: event.user.extra?.["authentication.kubernetes.io/node-name"]?.[0] ?? "?", resource: event.objectRef?.resource ?? "?" });
    } else {
      open.delete(event.auditID);
    }
  }
  const byNode = new Map<string, string[]>();
  for (const { node, resource } of open.values()) byNode.set(node, [...(byNode.get(node) ?? []), resource].sort());
  return { byNode };
}

/** Every client's open watches, as kube-apiserver counts them. */
async function apiServerWatches(bed: HaVipBed): Promise<number> {
  const result = await bed.testbed.kubectl(["get", "--raw", "/metrics"]);
  if (result.code !== 0) throw new Error(`kube-apiserver /metrics: ${result.stderr}`);
  return result.stdout.split("\n")
    .filter((line) => line.startsWith("apiserver_longrunning_requests{") && line.includes('verb="WATCH"'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

/** The agent pods not being deleted, as "node pod pid": a restarted or replaced agent shows as a different line. */
async function agentPods(bed: HaVipBed): Promise<string[]> {
  const pods = await bed.core.listNamespacedPod({ namespace: havipSystemNamespace, labelSelector: agentSelector });
  const processes = bed.testbed.runner.processes().filter((p) => p.namespace === havipSystemNamespace && p.container === "agent");
  return pods.items.filter((pod) => pod.metadata?.deletionTimestamp === undefined).map((pod) => {
    const pid = processes.find((p) => p.uid === pod.metadata?.uid)?.pid;
    return `${pod.spec?.nodeName ?? "?"} ${pod.metadata?.name ?? "?"}${isPodReady(pod) ? "" : " (not Ready)"} pid ${pid ?? "none"}`;
  });
}

function agentPid(bed: HaVipBed, node: string): number {
  const agent = bed.testbed.runner.processes().find((p) => p.namespace === havipSystemNamespace && p.container === "agent" && p.node === node);
  if (agent === undefined) throw new Error(`no agent process on ${node}`);
  return agent.pid;
}

async function timeUntil(startedAt: number, predicate: () => Promise<boolean>, intervalMs: number, what: string): Promise<number> {
  await waitFor(predicate, { timeoutMs: answerTimeoutMs, intervalMs, what });
  return performance.now() - startedAt;
}

/** Applies one more resource; times its VRID, its VIP answering and its status; compares everything else before/after. */
async function addOneMore(bed: HaVipBed, resources: readonly Resource[], extra: Resource, auditLog: string, interval: string | undefined): Promise<OneMore> {
  const { lab } = bed.testbed;
  const before = await agentDocuments(bed);
  const podsBefore = await agentPods(bed);
  const startedAt = performance.now();
  await createResource(bed, extra, interval);
  const [vridMs, answerMs] = await Promise.all([
    timeUntil(startedAt, async () => ((await statusOf(bed, extra.name)).virtualRouterID ?? 0) > 0, 100, "the controller to allocate its VRID"),
    timeUntil(startedAt, async () => (await lab.httpGet(lab.client, `http://${extra.vip.split("/")[0] ?? ""}/`, { timeoutMs: 200 })).status === 200, 20, "its VIP to answer the client"),
  ]);
  const statusMs = await timeUntil(startedAt, async () => isSettledStatus(await statusOf(bed, extra.name)), 100, "one MASTER and two BACKUP in its status");
  // A flip or a restart the new resource set off shows within Master_Down_Interval (about 3.6 s); this waits longer.
  await sleep(quietMs);
  const after = await agentDocuments(bed);
  const podsAfter = await agentPods(bed);
  const changedByNode = new Map(bed.testbed.nodeNames.map((node) => [node, resources.filter((resource) => {
    const [was, now] = [routerOf(before.get(node), resource), routerOf(after.get(node), resource)];
    return now === undefined || was?.state !== now.state || was.lastTransition?.at !== now.lastTransition?.at || was.counters["transitions"] !== now.counters["transitions"];
  }).map((resource) => `${resource.name} ${routerOf(before.get(node), resource)?.state ?? "none"} → ${routerOf(after.get(node), resource)?.state ?? "none"}`)]));
  return {
    vridMs,
    answerMs,
    statusMs,
    changedByNode,
    podsBefore: podsBefore.length,
    podsAfter: podsAfter.length,
    replaced: podsAfter.filter((pod) => !podsBefore.includes(pod)),
    watches: openWatches(auditLog),
    apiWatches: await apiServerWatches(bed),
  };
}


function loadAverage(): string {
  return loadavg().map((l) => l.toFixed(2)).join(" ");
}

async function runOne(count: number, warmupMs: number, windowMs: number, interval: string | undefined): Promise<KubernetesRun> {
  const scratch = mkdtempSync(join(tmpdir(), "ha-nginx-bench-scale-"));
  const auditLog = join(scratch, "audit.log");
  writeFileSync(join(scratch, "audit-policy.yaml"), auditPolicy);
  let bed: HaVipBed | undefined;
  try {
    const startedAt = performance.now();
    const started = await startHaVipBed({
      shouldWaitForNginx: true,
      havipManifest: (vip) => JSON.stringify(resourceObject({ name: havipName, vip: `${vip}/24` }, interval)),
      testbed: { controlPlane: { apiServerArgs: [`--audit-policy-file=${join(scratch, "audit-policy.yaml")}`, `--audit-log-path=${auditLog}`] } },
    });
    bed = started;
    const { lab } = started.testbed;
    const resources = Array.from({ length: count }, (_, i) => resourceAt(lab, i));
    console.log(`   test bed up, nginx Ready and ${havipName} applied after ${((performance.now() - startedAt) / 1000).toFixed(1)} s; creating ${count - 1} more`);
    for (const resource of resources.slice(1)) await createResource(started, resource, interval);
    let settleMs: number | undefined;
    const milestones: Milestones = {};
    const vrids: VridTrack = { last: new Map(), moves: [], mostShared: 0 };
    const unsettled = await failureOf(async () => {
      settleMs = (await waitSettled(started, resources, settleTimeoutMsPer(count), milestones, vrids)) - started.appliedAt;
    });
    const fromApplied = (at: number | undefined): number | undefined => (at === undefined ? undefined : at - started.appliedAt);
    const milestonesMs: Milestones = { vrids: fromApplied(milestones.vrids), routers: fromApplied(milestones.routers), status: fromApplied(milestones.status) };
    console.log(`   ${milestonesText(milestonesMs)}; ${vridText(vrids)}`);
    // An operator that never settles is a finding, not a crash: the window still shows what it costs and how it flips.
    console.log(settleMs === undefined
      ? `   ! not settled (${unsettled ?? ""}); measuring ${warmupMs / 1000} s of warm-up and ${windowMs / 1000} s all the same`
      : `   settled ${(settleMs / 1000).toFixed(1)} s after the first resource was applied; measuring ${warmupMs / 1000} s of warm-up, then ${windowMs / 1000} s`);

    const before = await agentDocuments(started);
    const pods = await agentPods(started);
    const watches = openWatches(auditLog);
    const apiWatches = await apiServerWatches(started);
    const measured = started.testbed.nodeNames.map((node) => {
      const pid = agentPid(started, node);
      return { host: started.testbed.hostOf(node), pids: () => [pid], role: () => roles(before.get(node), resources) };
    });
    const samples = await sampleSteadyResources(measured, warmupMs, windowMs);
    const load = loadAverage();
    const after = await agentDocuments(started);
    const rows = samples.map((sample, i) => {
      const node = started.testbed.nodeNames[i] ?? "?";
      return { ...sample, node, flips: transitionCount(after.get(node), resources) - transitionCount(before.get(node), resources), watches: watches.byNode.get(node) ?? [] };
    });
    for (const row of rows) {
      console.log(`   ${row.node} (${row.role}): RSS ${mib(row.rssKiB)} MiB, peak ${mib(row.peakKiB)} MiB, CPU ${cpuText(row)}, flips ${row.flips}, ` +
        `watches ${row.watches.length} (${row.watches.join(", ")})`);
    }
    console.log(`   ${pods.length} agent pod(s); ${apiWatches} watches open on the API server in all; load average ${load}`);

    const extra = resourceAt(lab, count);
    console.log(`   creating one more (${extra.name} on ${extra.vip})`);
    let oneMore: OneMore | undefined;
    const oneMoreError = await failureOf(async () => {
      oneMore = await addOneMore(started, resources, extra, auditLog, interval);
    });
    if (oneMore !== undefined) {
      const changed = [...oneMore.changedByNode.values()].flat();
      console.log(`   VRID after ${ms(oneMore.vridMs)}, VIP answers after ${ms(oneMore.answerMs)}, settled in status after ${ms(oneMore.statusMs)}; ` +
        `${changed.length} other router(s) changed; agent pods ${oneMore.podsBefore} → ${oneMore.podsAfter}, ${oneMore.replaced.length} replaced or restarted`);
    } else {
      console.log(`   ! one more: ${oneMoreError ?? ""}`);
    }
    return { resources: count, rows, agentPods: pods.length, apiWatches, settleMs, milestonesMs, vrids, unsettled, oneMore, oneMoreError, loadAverage: load };
  } catch (err) {
    console.log(`   ! ${errorText(err)}`);
    if (bed !== undefined) console.log(`   controller log tail:\n      ${readFileSync(bed.controllerLog, "utf8").trim().split("\n").slice(-10).join("\n      ")}`);
    return { resources: count, rows: [], milestonesMs: {}, loadAverage: loadAverage(), error: errorText(err) };
  } finally {
    await bed?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function milestonesText(milestonesMs: Milestones): string {
  const at = (value: number | undefined): string => (value === undefined ? "never" : `after ${(value / 1000).toFixed(1)} s`);
  return `distinct VRIDs for all ${at(milestonesMs.vrids)}, every agent's routers in their roles ${at(milestonesMs.routers)}, ` +
    `every status.nodes agreeing ${at(milestonesMs.status)}`;
}

function vridText(track: VridTrack): string {
  return `VRIDs moved after allocation: ${track.moves.length === 0 ? "none" : track.moves.join(", ")}; ` +
    `at most ${track.mostShared} resources seen sharing a VRID at one look`;
}

function ms(value: number): string {
  return `${Math.round(value)} ms`;
}

function watchText(watches: readonly string[]): string {
  return watches.length === 0 ? "0" : `${watches.length} (${watches.join(", ")})`;
}

function nodeTable(run: KubernetesRun): string {
  return markdownTable([
    "node (roles before the warm-up)", "RSS (MiB)", "peak RSS (MiB)", "CPU in the warm-up (% of one core)", "CPU (% of one core)", "flips in the warm-up and window", "watches the agent holds open", "settled after",
  ], run.rows.map((row) => [
    `${row.node} (${row.role})`, mib(row.rssKiB), mib(row.peakKiB), row.warmupCpuPercent?.toFixed(2) ?? "–", row.cpuPercent.toFixed(2), String(row.flips), watchText(row.watches),
    run.settleMs === undefined ? "not settled (below)" : `${(run.settleMs / 1000).toFixed(1)} s`,
  ]));
}

function oneMoreTable(run: KubernetesRun, oneMore: OneMore): string {
  const changed = (node: string): string => {
    const list = oneMore.changedByNode.get(node) ?? [];
    return list.length === 0 ? "0" : `${list.length} (${list.slice(0, 3).join("; ")}${list.length > 3 ? "; …" : ""})`;
  };
  return markdownTable(["measure", "value"], [
    ["create → status.virtualRouterID allocated", ms(oneMore.vridMs)],
    ["create → HTTP 200 from the client through its VIP", ms(oneMore.answerMs)],
    ["create → one MASTER and two BACKUP in its status.nodes", ms(oneMore.statusMs)],
    ...run.rows.map((row) => [`other routers changed on ${row.node}`, changed(row.node)]),
    ["agent pods before → after", `${oneMore.podsBefore} → ${oneMore.podsAfter}`],
    ["agent pods or processes replaced", oneMore.replaced.length === 0 ? "none" : oneMore.replaced.join("; ")],
    ...run.rows.map((row) => [`watches the agent on ${row.node} holds open after`, watchText(oneMore.watches.byNode.get(row.node) ?? [])]),
    ["watches open on the API server in all, before → after", `${run.apiWatches ?? "?"} → ${oneMore.apiWatches}`],
  ]);
}

function section(run: KubernetesRun): string[] {
  const title = `### ${run.resources} resource${run.resources === 1 ? "" : "s"}`;
  if (run.error !== undefined) return [title, "", `Failed: ${run.error}`, ""];
  return [
    title,
    "",
    `${run.agentPods ?? "?"} agent pod(s); ${run.apiWatches ?? "?"} watches open on the API server in all (every client); load average at the end of the window ${run.loadAverage}. ` +
      `From applying the first resource: ${milestonesText(run.milestonesMs)}. ${run.vrids === undefined ? "" : `${vridText(run.vrids)}.`}`,
    "",
    nodeTable(run),
    "",
    ...(run.unsettled === undefined ? [] : [`- did not settle: ${run.unsettled}`, ""]),
    `One more resource (${run.resources + 1} in all):`,
    "",
    ...(run.oneMore === undefined ? [`Failed: ${run.oneMoreError ?? "?"}`] : [oneMoreTable(run, run.oneMore)]),
    "",
  ];
}

/** Runs one fresh test bed per count, one after the other; returns the report's Kubernetes section. */
/** `interval`: the resources' advertisementInterval, or undefined to leave it to the default. */
export async function runKubernetes(counts: readonly number[], warmupMs: number, windowMs: number, interval: string | undefined): Promise<string[]> {
  const startedAt = performance.now();
  const runs: KubernetesRun[] = [];
  for (const count of counts) {
    console.log(`\n== kubernetes, ${count} resource(s): starting the test bed`);
    runs.push(await runOne(count, warmupMs, windowMs, interval));
  }
  return [
    "## Kubernetes",
    "",
    `The e2e test bed: real kube-apiserver, etcd, controller-manager and scheduler, 3 namespace nodes, the real controller, the one agent DaemonSet ` +
      `run by the stand-in kubelet, nginx pods on every node; a fresh bed per count. N HighAvailabilityVIPs, each its own IPv4 VIP (lab.vip(0..${labVipCount - 1}), ` +
      `then .${extraVipFirstOctet} up of the lab's /24), VRIDs allocated by the controller, VRRPv3 unicast to the published nodes with successor naming (the defaults), ${interval === undefined ? "the default advertisement interval (250 ms)" : `${interval} adverts`}, priorities ` +
      `${nodePriorities.map(([node, priority]) => `${node} ${priority}`).join(", ")}, preemption Always, health check the nginx pods' readiness (no local probe). ` +
      `Measured once every agent had ${masterNode} Master and the others Backup for every resource, status.nodes agreed, ${masterNode} alone held every VIP ` +
      `and nothing had changed for ${quietMs / 1000} s ("settled after" counts from applying the first resource, the other N−1 created right after, without those ${quietMs / 1000} s; ` +
      `VRIDs that moved or were shared come from status.virtualRouterID polled every 0.5 s meanwhile, so a share shorter than that can go unseen): ` +
      `then, after a ${warmupMs / 1000} s warm-up (measured too: V8 still compiles the agent's hot paths), the agent process's VmRSS at the end of the window and VmHWM (peak), ` +
      `utime+stime as % of one core, the routers' transitions in the warm-up and window (flips, expected 0). ` +
      `Watches: from kube-apiserver's audit log (watch requests only), the watches of user ${agentUser} whose response started and has not completed, ` +
      `per node by the bound token's node name; "in all" sums apiserver_longrunning_requests{verb="WATCH"} over every client (control plane, stand-in kubelets, controller, agents). ` +
      `One more resource: created through the API, then timed to its VRID, to the client's first HTTP 200 through its VIP (a try every 20 ms) and to its status; ` +
      `${quietMs / 1000} s later every other router's state, last transition and transition count, and the agent pods and processes, are compared with before. ` +
      `Part took ${Math.round((performance.now() - startedAt) / 1000)} s.`,
    "",
    ...runs.flatMap(section),
  ];
}
