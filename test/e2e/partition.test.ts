// Issue #7 item 3, on the e2e test bed (real API server, controller, three agents, nginx): the path between the nodes
// is cut while the client still reaches every node and every agent still reaches the API server (through its own
// relay, not the lab's segment). Both sides of the cut must claim MASTER and status must say SplitBrain; once the path
// is back, the lower-priority Master must yield within about one advertisement interval, and nothing may move for the
// next 60 s.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConditionType, HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION, type HaVipCondition, type NodeStatusEntry } from "../../src/api/v1alpha1/index.js";
import { DEFAULT_AGENT_HTTP_PORT } from "../../src/controller/command.js";
import { vipHolders } from "../../testing/lab/agent.js";
import type { LabHost } from "../../testing/lab/types.js";
import { waitFor } from "../../testing/lab/wait.js";
import { havipName, havipNamespace, startHaVipBed, type HaVipBed } from "../../testing/testbed/havip-bed.js";

// The bed's HAVIP advertises every second (haVipManifest's advertisementInterval).
const advertIntervalMs = 1_000;
const quietWindowMs = 60_000;
const holderSampleMs = 100;
const statusSampleMs = 1_000;
const agentSampleMs = 5_000;
// After healing, one holder and the client on it: one interval until the next advert of either Master, plus the
// yielding one's 200 ms release linger, plus the polling (`ip` and the client's neighbour table in namespaces, slow on
// two busy cores). Measured: one holder after 702 ms in CI and 247 and 985 ms here, the client on the survivor after
// 751, 433 and 1064 ms; 2.5 s keeps over twice the worst.
const healBoundMs = advertIntervalMs + 1_500;

interface HavipStatus {
  readonly master?: string;
  readonly nodes?: readonly NodeStatusEntry[];
  readonly conditions?: readonly HaVipCondition[];
}

interface AgentView {
  readonly state: string;
  readonly priority: number;
  readonly transitions: number;
  readonly lastTransitionAt: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("e2e: a partition between the nodes, the client still reaching all of them", () => {
  let bed: HaVipBed | undefined;
  let statePort = 0;
  const measured: Record<string, number | string> = {};
  // Set while the master is cut off from both backups; the heal test needs it.
  let partition: { readonly master: string; readonly rival: string; readonly bystander: string } | undefined;

  const b = (): HaVipBed => {
    if (bed === undefined) throw new Error("no test bed");
    return bed;
  };
  const host = (node: string): LabHost => b().testbed.hostOf(node);
  const nodeOfHost = (name: string): string => b().testbed.nodeNames.find((node) => host(node).name === name) ?? name;

  async function havipStatus(): Promise<HavipStatus> {
    const object = (await b().custom.getNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, namespace: havipNamespace, plural: HAVIP_PLURAL, name: havipName })) as {
      status?: HavipStatus;
    };
    return object.status ?? {};
  }

  const mastersIn = (status: HavipStatus): string[] => (status.nodes ?? []).filter((entry) => entry.state === "MASTER").map((entry) => entry.node).sort();
  const splitBrainOf = (status: HavipStatus): HaVipCondition | undefined => status.conditions?.find((condition) => condition.type === ConditionType.SplitBrain);

  /** The agent's own view from its /state endpoint, fetched from the client: proof the client still reaches the node. */
  async function agentView(node: string): Promise<AgentView> {
    const answer = await b().testbed.lab.httpGet(b().testbed.lab.client, `http://${host(node).address}:${statePort}/state`);
    if (answer.status !== 200) throw new Error(`${node}'s /state answered ${answer.status}`);
    type RouterView = { state?: string; priority?: number; counters?: Record<string, number>; lastTransition?: { at?: string } };
    const state = (JSON.parse(answer.body) as { routers?: RouterView[] }).routers?.[0] ?? {};
    return {
      state: state.state ?? "",
      priority: state.priority ?? 0,
      transitions: state.counters?.transitions ?? 0,
      lastTransitionAt: state.lastTransition?.at ?? "",
    };
  }

  async function holders(): Promise<string[]> {
    return (await vipHolders(b().testbed.lab, b().vip)).map(nodeOfHost).sort();
  }

  /** The node whose MAC the client's neighbour entry for the VIP holds: where the client sends its VIP traffic. */
  async function clientTarget(): Promise<string> {
    const { lab } = b().testbed;
    const result = await lab.exec(lab.client, "ip", ["-j", "neigh", "show", "to", b().vip, "dev", lab.client.ifname], { check: true });
    const entries = JSON.parse(result.stdout) as { lladdr?: string }[];
    const mac = entries[0]?.lladdr;
    return b().testbed.nodeNames.find((node) => host(node).mac === mac) ?? `none (${mac ?? "no entry"})`;
  }

  beforeAll(async () => {
    bed = await startHaVipBed({ shouldWaitForNginx: true, log: (line) => process.stdout.write(`[partition e2e] ${line}\n`) });
    statePort = DEFAULT_AGENT_HTTP_PORT;
  }, 300_000);

  afterAll(async () => {
    if (bed !== undefined && partition !== undefined) {
      const { lab } = bed.testbed;
      for (const peer of [partition.rival, partition.bystander]) await lab.healPeers(host(partition.master), host(peer));
    }
    await bed?.stop();
    process.stdout.write(`[partition e2e] measurements: ${JSON.stringify(measured)}\n`);
  }, 120_000);

  it("master cut off from both backups: it and the higher-priority backup both hold the VIP, status shows both MASTER and SplitBrain", async () => {
    const { master, backups } = await b().settled();
    const views = new Map(await Promise.all(backups.map(async (node) => [node, await agentView(node)] as const)));
    const [rival, bystander] = [...backups].sort((x, y) => (views.get(y)?.priority ?? 0) - (views.get(x)?.priority ?? 0));
    if (rival === undefined || bystander === undefined) throw new Error("the bed should have two backups");
    expect(views.get(rival)?.priority).toBeGreaterThan(views.get(bystander)?.priority ?? 0);
    const before = await havipStatus();
    expect(splitBrainOf(before)?.status).toBe("False");

    const { lab } = b().testbed;
    partition = { master, rival, bystander };
    for (const peer of [rival, bystander]) await lab.isolatePeers(host(master), host(peer));
    const isolatedAt = Date.now();

    await waitFor(async () => (await holders()).length === 2, { timeoutMs: 20_000, intervalMs: 50, what: "a second node to take the VIP" });
    measured.isolateToTwoHoldersMs = Date.now() - isolatedAt;
    expect(await holders()).toEqual([master, rival].sort());

    let status: HavipStatus = {};
    await waitFor(
      async () => {
        status = await havipStatus();
        return splitBrainOf(status)?.status === "True" && mastersIn(status).length === 2;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: "status to show two MASTER and SplitBrain=True" },
    );
    measured.isolateToSplitBrainInStatusMs = Date.now() - isolatedAt;
    expect(mastersIn(status)).toEqual([master, rival].sort());
    expect(status.nodes?.find((entry) => entry.node === bystander)?.state).toBe("BACKUP");
    const splitBrain = splitBrainOf(status);
    expect(splitBrain?.reason).toBe("MultipleMasters");
    expect(splitBrain?.message).toContain(master);
    expect(splitBrain?.message).toContain(rival);
    // Only the path between the nodes is cut: the client still reaches all three, and each agent saw itself as above.
    const during = await Promise.all([master, rival, bystander].map(agentView));
    expect(during.map((view) => view.state)).toEqual(["Master", "Master", "Backup"]);
    // The bystander never hears the master, but it hears the rival, which outranks it: it must not join the fight.
    expect(await holders()).toEqual([master, rival].sort());
    const answer = await lab.httpGet(lab.client, `http://${b().vip}/`);
    expect(answer.status).toBe(200);
    measured.clientTargetDuringSplit = await clientTarget();
  }, 120_000);

  it("healed: one holder and the client on it within an advertisement interval plus 1.5 s, SplitBrain clears, then 60 s without a move", async () => {
    if (partition === undefined) throw new Error("the partition test did not cut the path");
    const { master, rival, bystander } = partition;
    const { lab } = b().testbed;
    // RFC 5798 §6.4.3: of two Masters, the lower priority yields to the other's advertisement, preemption or not.
    const [masterView, rivalView] = await Promise.all([agentView(master), agentView(rival)]);
    const survivor = masterView.priority > rivalView.priority ? master : rival;
    measured.roles = `master ${master}, rival ${rival}, bystander ${bystander}, survivor ${survivor}`;
    const probe = await lab.startProbe(`http://${b().vip}/`, { intervalMs: 20, timeoutMs: 500 });
    try {
      // Traffic first, so the client holds a neighbour entry for the VIP when the path comes back, and the probe's
      // outage figure shows how long the client was left on the yielding node.
      await sleep(500);
      const healStartedAt = Date.now();
      await Promise.all([rival, bystander].map((peer) => lab.healPeers(host(master), host(peer))));
      const healedAt = Date.now();
      measured.healCommandMs = healedAt - healStartedAt;
      partition = undefined;

      let current: string[] = [];
      await waitFor(
        async () => {
          current = await holders();
          return current.length === 1;
        },
        { timeoutMs: 15_000, intervalMs: 20, what: "a single VIP holder after healing" },
      );
      const healToSingleHolderMs = Date.now() - healedAt;
      measured.healToSingleHolderMs = healToSingleHolderMs;
      expect(current).toEqual([survivor]);
      expect(healToSingleHolderMs).toBeLessThan(healBoundMs);
      // The yielding Master's last advert makes the survivor announce the VIP again even when its own advert got
      // there first (src/vrrp/machine.ts), so the client follows within about one interval. Timed before the status
      // wait below, so that the API's pace does not count against the data plane.
      await waitFor(async () => (await clientTarget()) === survivor, { timeoutMs: 30_000, intervalMs: 20, what: `the client's neighbour entry on ${survivor}` });
      measured.healToClientOnSurvivorMs = Date.now() - healedAt;
      expect(measured.healToClientOnSurvivorMs).toBeLessThan(healBoundMs);

      let status: HavipStatus = {};
      await waitFor(
        async () => {
          status = await havipStatus();
          return splitBrainOf(status)?.status === "False" && status.master === survivor;
        },
        { timeoutMs: 30_000, intervalMs: 100, what: "SplitBrain=False and status.master to name the survivor" },
      );
      measured.healToSplitBrainClearedMs = Date.now() - healedAt;
      expect(mastersIn(status)).toEqual([survivor]);
      expect((await lab.httpGet(lab.client, `http://${b().vip}/`)).status).toBe(200);
      measured.clientTargetAfterHeal = await clientTarget();
    } finally {
      const report = await probe.stop();
      measured.healProbe = `${report.ok}/${report.sent} ok, ${report.failed} failed, max outage ${report.maxOutageMs} ms`;
    }

    // The quiet window: from here nothing may move, on the wire, in status, or in any agent's own account.
    const { master: settledMaster } = await b().settled(30_000);
    expect(settledMaster).toBe(survivor);
    const nodes = [master, rival, bystander];
    const baseline = new Map(await Promise.all(nodes.map(async (node) => [node, await agentView(node)] as const)));
    const baselineStates = JSON.stringify((await havipStatus()).nodes?.map((entry) => [entry.node, entry.state]).sort());
    const moves: string[] = [];
    let holderSamples = 0;
    let statusSamples = 0;
    let agentSamples = 0;
    const startedAt = Date.now();
    let nextStatusAt = startedAt;
    let nextAgentsAt = startedAt;
    while (Date.now() - startedAt < quietWindowMs) {
      const sampleAt = Date.now();
      const now = await holders();
      holderSamples += 1;
      if (now.length !== 1 || now[0] !== survivor) moves.push(`+${sampleAt - startedAt} ms: VIP on [${now.join(", ")}]`);
      if (sampleAt >= nextStatusAt) {
        nextStatusAt += statusSampleMs;
        const status = await havipStatus();
        statusSamples += 1;
        if (status.master !== survivor) moves.push(`+${sampleAt - startedAt} ms: status.master ${JSON.stringify(status.master)}`);
        const states = JSON.stringify(status.nodes?.map((entry) => [entry.node, entry.state]).sort());
        if (states !== baselineStates) moves.push(`+${sampleAt - startedAt} ms: status.nodes ${states}`);
      }
      if (sampleAt >= nextAgentsAt) {
        nextAgentsAt += agentSampleMs;
        for (const node of nodes) {
          const view = await agentView(node);
          const was = baseline.get(node);
          if (view.transitions !== was?.transitions || view.lastTransitionAt !== was.lastTransitionAt) {
            moves.push(`+${sampleAt - startedAt} ms: ${node} ${view.state}, ${view.transitions} transitions, last at ${view.lastTransitionAt}`);
          }
        }
        agentSamples += 1;
      }
      await sleep(Math.max(0, sampleAt + holderSampleMs - Date.now()));
    }
    measured.quietWindowMs = Date.now() - startedAt;
    measured.quietHolderSamples = holderSamples;
    measured.quietStatusSamples = statusSamples;
    measured.quietAgentSamples = agentSamples;
    expect(moves).toEqual([]);
    // At 100 ms a sample 600 would be taken; a loaded machine slows the `ip` calls (587 samples in CI, 197 and 228 on
    // two busy cores here), so ask for a sixth of that: about half the fewest seen.
    expect(holderSamples).toBeGreaterThan(quietWindowMs / holderSampleMs / 6);
    expect(statusSamples).toBeGreaterThan(quietWindowMs / statusSampleMs / 3);
    expect(agentSamples).toBeGreaterThanOrEqual(quietWindowMs / agentSampleMs / 3);
    for (const node of nodes) expect((await agentView(node)).transitions).toBe(baseline.get(node)?.transitions);
  }, 180_000);
});
