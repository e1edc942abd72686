// One agent per node serves every HighAvailabilityVIP placed there (issue #12), on the test bed with the real
// controller, the real API server and real nginx: more resources add routers to the same three agent processes, never
// agent pods; adding, editing, breaking or deleting one resource leaves the others' routers alone (no transition, no
// MASTER change); one resource's fault (its password Secret missing) stays its own.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION, type HaVipStatus } from "../../src/api/v1alpha1/index.js";
import { DEFAULT_AGENT_HTTP_PORT } from "../../src/controller/command.js";
import { vipHolders } from "../../testing/lab/agent.js";
import { waitFor } from "../../testing/lab/wait.js";
import { haVipManifest, havipName, havipNamespace, havipSystemNamespace, startHaVipBed, type HaVipBed } from "../../testing/testbed/havip-bed.js";

const web = `${havipNamespace}/${havipName}`;
const second = "second-vip";
const broken = "broken-vip";

interface RouterView {
  readonly havip: string;
  readonly state: string;
  readonly lastTransition?: { readonly at?: string; readonly reason?: string };
  readonly counters?: Readonly<Record<string, number>>;
}

interface AgentDocument {
  readonly routers: readonly RouterView[];
  readonly problems: readonly { readonly havip: string; readonly problem: string }[];
}

/** The second resource: another address, node-3 preferred, so its MASTER differs from the bed's own. */
function secondManifest(vip: string, node3Priority = 200): string {
  return haVipManifest(vip, { name: second }).replace("{ node: node-3, priority: 50 }", `{ node: node-3, priority: ${node3Priority} }`);
}

describe("e2e: one agent per node serves every HighAvailabilityVIP", () => {
  let havip: HaVipBed | undefined;
  const bed = (): HaVipBed => {
    if (havip === undefined) throw new Error("no test bed");
    return havip;
  };
  const log = (line: string): void => {
    process.stdout.write(`[node-agent e2e] ${line}\n`);
  };

  async function agentDocument(node: string): Promise<AgentDocument> {
    const host = bed().testbed.hostOf(node);
    const answer = await bed().testbed.lab.httpGet(host, `http://${host.address}:${DEFAULT_AGENT_HTTP_PORT}/state`);
    if (answer.status !== 200) throw new Error(`${node}'s agent answered ${answer.status}`);
    return JSON.parse(answer.body) as AgentDocument;
  }

  /** Per node, the bed resource's router: its state and when it last changed. A flip shows as a new `at`. */
  async function webRouters(): Promise<Record<string, string>> {
    const entries = await Promise.all(
      bed().testbed.nodeNames.map(async (node) => {
        const router = (await agentDocument(node)).routers.find((item) => item.havip === web);
        return [node, `${router?.state ?? "absent"} since ${router?.lastTransition?.at ?? "?"}`] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  /** The kubelet's readiness view of each agent: Ready once every resource placed on its node runs or says why not. */
  async function readiness(): Promise<readonly number[]> {
    return Promise.all(
      bed().testbed.nodeNames.map(async (node) => {
        const host = bed().testbed.hostOf(node);
        return (await bed().testbed.lab.httpGet(host, `http://${host.address}:${DEFAULT_AGENT_HTTP_PORT}/readyz`)).status;
      }),
    );
  }

  async function agentPods(): Promise<readonly V1Pod[]> {
    return (await bed().core.listNamespacedPod({ namespace: havipSystemNamespace, labelSelector: "app.kubernetes.io/name=ha-nginx-agent" })).items;
  }

  /** uid and restart count of every agent pod: equal before and after means no agent restarted or was replaced. */
  async function agentIdentities(): Promise<readonly string[]> {
    return (await agentPods()).map((pod) => `${pod.spec?.nodeName ?? "?"} ${pod.metadata?.uid ?? "?"} restarts ${pod.status?.containerStatuses?.[0]?.restartCount ?? "?"}`).sort();
  }

  async function statusOf(name: string): Promise<HaVipStatus | undefined> {
    try {
      const object = (await bed().custom.getNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, namespace: havipNamespace, plural: HAVIP_PLURAL, name })) as { status?: HaVipStatus };
      return object.status ?? {};
    } catch {
      return undefined;
    }
  }

  async function apply(manifest: string): Promise<void> {
    const result = await bed().testbed.kubectl(["apply", "-f", "-"], { input: manifest });
    expect(result.code, result.stderr).toBe(0);
  }

  beforeAll(async () => {
    havip = await startHaVipBed({ shouldWaitForNginx: true, log });
    await bed().settled();
  }, 300_000);

  afterAll(async () => {
    await havip?.stop();
  }, 120_000);

  it("a second resource gets routers in the running agents: still one agent pod per node, the first resource's routers untouched", async () => {
    const pods = await agentPods();
    expect(pods.map((pod) => pod.spec?.nodeName).sort()).toEqual(bed().testbed.nodeNames.slice().sort());
    const agentsBefore = await agentIdentities();
    const webBefore = await webRouters();
    const webMaster = (await bed().settled()).master;
    const secondVip = bed().testbed.lab.vip(1).address;
    const appliedAt = Date.now();
    await apply(secondManifest(secondVip));
    await waitFor(
      async () => {
        const holders = await vipHolders(bed().testbed.lab, secondVip);
        const status = await statusOf(second);
        return holders.length === 1 && holders[0] === bed().testbed.hostOf("node-3").name && status?.master === "node-3";
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "node-3 MASTER of the second resource, holding its VIP" },
    );
    log(`second resource applied to its VIP held by node-3: ${Date.now() - appliedAt} ms`);
    // No Master yet, and both peers' candidacies heard: node-3, the best, took over without RFC 5798's startup wait.
    const node3Router = (await agentDocument("node-3")).routers.find((router) => router.havip === `${havipNamespace}/${second}`);
    expect(node3Router?.lastTransition?.reason).toBe("unopposed");
    const answer = await bed().testbed.lab.httpGet(bed().testbed.lab.client, `http://${secondVip}/`);
    expect(answer.status).toBe(200);
    for (const node of bed().testbed.nodeNames) {
      const document = await agentDocument(node);
      expect(document.routers.map((router) => router.havip).sort(), node).toEqual([web, `${havipNamespace}/${second}`].sort());
    }
    expect(await agentIdentities()).toEqual(agentsBefore);
    expect(await webRouters()).toEqual(webBefore);
    expect((await bed().settled()).master).toBe(webMaster);
    expect(await readiness()).toEqual([200, 200, 200]);
    const metrics = await bed().testbed.lab.httpGet(bed().testbed.hostOf("node-1"), `http://${bed().testbed.hostOf("node-1").address}:${DEFAULT_AGENT_HTTP_PORT}/metrics`);
    expect(metrics.body).toContain(`havip="${web}"`);
    expect(metrics.body).toContain(`havip="${havipNamespace}/${second}"`);
  }, 120_000);

  it("editing one resource's priorities moves its MASTER and leaves the other resource's routers untouched", async () => {
    const agentsBefore = await agentIdentities();
    const webBefore = await webRouters();
    // node-3 drops below node-2 (100); with preemption Never the MASTER stays until it is told to move, so Always.
    await apply(secondManifest(bed().testbed.lab.vip(1).address, 20).replace("preemption: { mode: Never }", "preemption: { mode: Always }"));
    await waitFor(async () => (await statusOf(second))?.master === "node-1", { timeoutMs: 60_000, intervalMs: 200, what: "node-1 MASTER of the second resource after the edit" });
    expect(await webRouters()).toEqual(webBefore);
    expect(await agentIdentities()).toEqual(agentsBefore);
  }, 120_000);

  it("a resource whose password Secret is missing reports its problem on every node; the other resources run on untouched", async () => {
    const agentsBefore = await agentIdentities();
    const webBefore = await webRouters();
    const manifest = haVipManifest(bed().testbed.lab.vip(2).address, { name: broken }).replace(
      "  interface: eth0\n",
      "  interface: eth0\n  vrrpVersion: 2\n  authentication: { passwordSecretRef: { name: no-such-secret, key: password } }\n",
    );
    await apply(manifest);
    await waitFor(
      async () => {
        const documents = await Promise.all(bed().testbed.nodeNames.map(agentDocument));
        return documents.every((document) => document.problems.some((problem) => problem.havip === `${havipNamespace}/${broken}` && problem.problem.includes("no-such-secret")));
      },
      { timeoutMs: 60_000, intervalMs: 250, what: "every agent to name the missing Secret for the broken resource" },
    );
    expect(await vipHolders(bed().testbed.lab, bed().testbed.lab.vip(2).address)).toEqual([]);
    // A resource that says why it does not run is settled: the agent stays Ready, and a rollout is not held up by it.
    expect(await readiness()).toEqual([200, 200, 200]);
    expect(await webRouters()).toEqual(webBefore);
    expect(await agentIdentities()).toEqual(agentsBefore);
    const answer = await bed().testbed.lab.httpGet(bed().testbed.lab.client, `http://${bed().vip}/`);
    expect(answer.status).toBe(200);
  }, 120_000);

  it("deleting resources releases their VIPs and removes them; the agents and the remaining resource run on", async () => {
    const agentsBefore = await agentIdentities();
    const webBefore = await webRouters();
    const secondVip = bed().testbed.lab.vip(1).address;
    const deleted = await bed().testbed.kubectl(["delete", "havip", second, broken, "-n", havipNamespace, "--timeout=90s"]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(await statusOf(second)).toBeUndefined();
    await waitFor(async () => (await vipHolders(bed().testbed.lab, secondVip)).length === 0, { timeoutMs: 10_000, intervalMs: 200, what: "the second VIP released" });
    for (const node of bed().testbed.nodeNames) {
      const document = await agentDocument(node);
      expect(document.routers.map((router) => router.havip), node).toEqual([web]);
      expect(document.problems, node).toEqual([]);
    }
    expect(await webRouters()).toEqual(webBefore);
    expect(await agentIdentities()).toEqual(agentsBefore);
    const daemonSet = await bed().testbed.kubectl(["get", "daemonset", "ha-nginx-agent", "-n", havipSystemNamespace, "-o", "name"]);
    expect(daemonSet.stdout.trim()).toBe("daemonset.apps/ha-nginx-agent");
  }, 150_000);
});
