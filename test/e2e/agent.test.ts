// The Kubernetes agent on the test bed: a real API server, three namespace nodes, nginx pods run as real nginx, the
// real controller (node dist/cli.js controller, with its ServiceAccount token and the chart's RBAC) that allocates the
// VRID, publishes the peers and creates the agent DaemonSet, and the agents that DaemonSet runs with their own
// ServiceAccount token bound to the chart's ha-nginx-agent ClusterRole. A missing permission fails this test.
// The bed is testing/testbed/havip-bed.ts, the one bench:k8s measures. Losing the API server is control-plane-loss.test.ts.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConditionType, type NodeStatusEntry } from "../../src/api/v1alpha1/index.js";
import { vipHolders } from "../../testing/lab/agent.js";
import { waitFor } from "../../testing/lab/wait.js";
import { havipName, havipNamespace, havipSystemNamespace, isPodReady, startHaVipBed, type HaVipBed } from "../../testing/testbed/havip-bed.js";
import { computeMasterDownInterval } from "../../src/vrrp/timers.js";
import { centiseconds } from "../../src/vrrp/units.js";

const namespace = havipNamespace;
// The one agent DaemonSet runs in the controller's namespace, and serves every resource.
const agentNamespace = havipSystemNamespace;
const name = havipName;
// The bed's HAVIP advertises every second; node-3's priority 50 waits longest, so this bounds every backup's wait.
const masterDownIntervalMs = computeMasterDownInterval(3, 50, centiseconds(100));
// The kernel lease on a Master's VIP at this interval (src/agent/vip-lease.ts: the Master_Down_Interval at priority 1
// plus 100 ms, in whole seconds): a SIGKILLed agent's address is gone this long after its last advert at the latest.
const vipLeaseMs = 5_000;
// The bed's highest priority (150); node-2 has 100, node-3 50.
const topNode = "node-1";
// A node whose kubelet goes quiet is NotReady after this grace, not the default 40 s, so the node link cut test
// sees it listed in status.goneNodes (NotReady + the controller's AGENT_GONE_GRACE_MS of 30 s) in well under a minute.
// The stand-in kubelet's Lease says 40 s (leaseDurationSeconds) but the node lifecycle controller goes by the grace.
const nodeMonitorGraceMs = 8_000;
const heartbeatIntervalMs = 2_000;

interface HolderSample {
  readonly at: number;
  readonly holders: readonly string[];
}

/** The span covered by samples matching `isIn`: from each first match to the next sample that does not match. */
function windowMs(samples: readonly HolderSample[], isIn: (sample: HolderSample) => boolean): number {
  let total = 0;
  let openedAt: number | undefined;
  for (const sample of samples) {
    if (isIn(sample)) openedAt ??= sample.at;
    else if (openedAt !== undefined) {
      total += sample.at - openedAt;
      openedAt = undefined;
    }
  }
  return openedAt === undefined ? total : total + (samples.at(-1)?.at ?? openedAt) - openedAt;
}

describe("e2e: the agent in Kubernetes", () => {
  let havip: HaVipBed | undefined;
  const measured: Record<string, number | string> = {};
  const log = (line: string): void => {
    process.stdout.write(`[agent e2e] ${line}\n`);
  };

  const bed = (): HaVipBed => {
    if (havip === undefined) throw new Error("no test bed");
    return havip;
  };

  async function masters(): Promise<string[]> {
    return (await bed().statusNodes()).filter((entry) => entry.state === "MASTER").map((entry) => entry.node);
  }

  async function entryOf(node: string): Promise<NodeStatusEntry | undefined> {
    return (await bed().statusNodes()).find((entry) => entry.node === node);
  }

  /** Hands the VIP over, by planned moves (deleting the master's agent pod), until `node` is the master. */
  async function makeMaster(node: string): Promise<void> {
    for (let moves = 0; moves < 3; moves += 1) {
      const { master } = await bed().settled();
      if (master === node) return;
      const agents = await bed().core.listNamespacedPod({ namespace: agentNamespace, labelSelector: "app.kubernetes.io/name=ha-nginx-agent", fieldSelector: `spec.nodeName=${master}` });
      const pod = agents.items[0]?.metadata?.name;
      if (pod === undefined) throw new Error(`no agent pod on ${master}`);
      const deleted = await bed().testbed.kubectl(["delete", "pod", pod, "-n", agentNamespace, "--wait=false"]);
      expect(deleted.code, deleted.stderr).toBe(0);
      await waitFor(async () => !(await masters()).includes(master), { timeoutMs: 20_000, intervalMs: 100, what: `${master} to hand over` });
    }
    throw new Error(`${node} did not become master`);
  }

  /** Reads who holds the VIP about every 20 ms until stopped (each read is one `ip` per node, run in parallel). */
  function sampleHolders(): { stop(): Promise<HolderSample[]> } {
    const samples: HolderSample[] = [];
    let isStopped = false;
    const loop = (async (): Promise<void> => {
      while (!isStopped) {
        const startedAt = Date.now();
        samples.push({ at: startedAt, holders: await vipHolders(bed().testbed.lab, bed().vip) });
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, startedAt + 20 - Date.now())));
      }
    })();
    return {
      async stop() {
        isStopped = true;
        await loop;
        return samples;
      },
    };
  }

  beforeAll(async () => {
    havip = await startHaVipBed({
      log,
      testbed: {
        heartbeatIntervalMs,
        controlPlane: { controllerManagerArgs: [`--node-monitor-grace-period=${nodeMonitorGraceMs / 1000}s`, "--node-monitor-period=1s"] },
      },
    });
    const daemonSet = await bed().testbed.kubectl(["get", "daemonset", "-n", agentNamespace, "-l", "app.kubernetes.io/name=ha-nginx-agent", "-o", "jsonpath={.items[0].spec.template.spec.containers[0].args}"]);
    measured.agentArgs = daemonSet.stdout;
  }, 240_000);

  afterAll(async () => {
    await havip?.stop();
    log(`measurements: ${JSON.stringify(measured)}`);
  }, 120_000);

  it("elects one MASTER and two BACKUP, shown in status.nodes and kubectl; the master holds the VIP and it answers", async () => {
    const { testbed } = bed();
    const { master, backups } = await bed().settled();
    measured.applyToSettledMs = Date.now() - bed().appliedAt;
    expect(backups).toHaveLength(2);
    expect(backups).not.toContain(master);
    const entries = await bed().statusNodes();
    for (const entry of entries) {
      expect(entry.address).toBe(testbed.hostOf(entry.node).address);
      expect(entry.healthy).toBe(true);
      expect(entry.lastTransitionTime).toMatch(/Z$/);
    }
    const answer = await testbed.lab.httpGet(testbed.lab.client, `http://${bed().vip}/`);
    expect(answer.status).toBe(200);
    expect(answer.body.trim()).toBe("web");
    const table = await testbed.kubectl(["get", "havip", name, "-n", namespace, "-o", "custom-columns=NAME:.metadata.name,VIP:.spec.addresses[0],NODES:.status.nodes[*].node,STATES:.status.nodes[*].state", "--no-headers"]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.match(/MASTER/g)).toHaveLength(1);
    expect(table.stdout.match(/BACKUP/g)).toHaveLength(2);
    // kubectl get havip: NAME VIP MASTER READY AGE; the controller copies the single MASTER entry into status.master.
    let row: string[] = [];
    await waitFor(
      async () => {
        const printed = await testbed.kubectl(["get", "havip", name, "-n", namespace, "--no-headers"]);
        row = printed.stdout.trim().split(/\s+/);
        return row[2] === master;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: `kubectl get havip to print MASTER ${master}` },
    );
    expect(row[1]).toBe(`${bed().vip}/24`);
    const events = await bed().core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
    expect(events.items.some((event) => event.reason === "BecameMaster" && event.message?.startsWith(`${master}:`) === true)).toBe(true);
    // A healthy start is no news: no agent reports FAULT while nginx is not Ready yet, and the controller raises no
    // Warning about agents still pending.
    const described = events.items.map((event) => `${event.type} ${event.reason}: ${event.message ?? ""}`);
    expect(described.filter((line) => line.startsWith("Warning")), described.join("\n")).toEqual([]);
  }, 120_000);

  it("nginx pod on the master deleted: the backup takes over before nginx stops, no hole (at most the in-flight request), status follows", async () => {
    const { testbed, core } = bed();
    const { master: before } = await bed().settled();
    const pods = await core.listNamespacedPod({ namespace, labelSelector: "app=web", fieldSelector: `spec.nodeName=${before}` });
    const pod = pods.items.find(isPodReady);
    if (pod?.metadata?.name === undefined) throw new Error(`no Ready nginx pod on ${before}`);
    const probe = await testbed.lab.startProbe(`http://${bed().vip}/`, { intervalMs: 10, timeoutMs: 500 });
    try {
      const deleted = await testbed.kubectl(["delete", "pod", pod.metadata.name, "-n", namespace, "--wait=false"]);
      expect(deleted.code, deleted.stderr).toBe(0);
      const deleteAt = Date.now();
      let after = "";
      let seenAt = 0;
      await waitFor(
        async () => {
          const current = await masters();
          if (current.length !== 1 || current[0] === undefined || current[0] === before) return false;
          seenAt = Date.now();
          after = current[0];
          return true;
        },
        { timeoutMs: 15_000, intervalMs: 20, what: "a new MASTER in status.nodes" },
      );
      const switchedAt = await bed().transitionAt(after);
      await waitFor(async () => (await bed().havipStatus()).master === after, { timeoutMs: 15_000, intervalMs: 20, what: "status.master (kubectl's MASTER column) to follow" });
      measured.podDeleteSwitchToMasterColumnMs = Date.now() - switchedAt;
      measured.podDeleteMasters = `${before} -> ${after}`;
      measured.podDeleteToStatusMs = seenAt - deleteAt;
      measured.podDeleteSwitchToStatusMs = seenAt - switchedAt;
      // Keep probing through the old pod's preStop and stop, and its replacement turning Ready.
      await waitFor(
        async () => {
          const list = await core.listNamespacedPod({ namespace, labelSelector: "app=web", fieldSelector: `spec.nodeName=${before}` });
          return list.items.length === 1 && list.items[0]?.metadata?.name !== pod.metadata?.name && isPodReady(list.items[0] ?? {});
        },
        { timeoutMs: 60_000, intervalMs: 250, what: `a new nginx pod Ready on ${before}` },
      );
      expect(switchedAt).toBeGreaterThan(deleteAt - 1000);
      expect(seenAt - switchedAt).toBeLessThan(3000);
    } finally {
      const report = await probe.stop();
      measured.podDeleteProbe = `${report.ok}/${report.sent} ok, ${report.failed} failed, max outage ${report.maxOutageMs} ms`;
      // No hole (that shows as 100 ms timeouts); at most the one request whose connection opened on the old master
      // just before the client's ARP entry flipped, reset by the new master (see test/ns/agent/failover.test.ts).
      expect(report.failed).toBeLessThanOrEqual(1);
      expect(report.maxOutageMs).toBeLessThan(100);
      expect(report.sent).toBeGreaterThan(100);
    }
    const { master: now } = await bed().settled();
    expect(now).not.toBe(before);
  }, 120_000);

  it("agent process SIGKILLed on the master: the backup takes over, the stale VIP overlaps it for less than its 5 s lease, and the client never waits a whole Master_Down_Interval", async () => {
    const { testbed } = bed();
    const { master: before } = await bed().settled();
    const beforeHost = testbed.hostOf(before).name;
    const agent = testbed.runner.processes().find((item) => item.node === before && item.container === "agent" && item.namespace === agentNamespace);
    if (agent === undefined) throw new Error(`no agent process on ${before}`);
    const probe = await testbed.lab.startProbe(`http://${bed().vip}/`, { intervalMs: 10, timeoutMs: 500 });
    const sampler = sampleHolders();
    let samples: HolderSample[] = [];
    try {
      process.kill(-agent.pid, "SIGKILL");
      const killedAt = Date.now();
      await waitFor(
        async () => {
          const holders = await vipHolders(testbed.lab, bed().vip);
          return holders.length === 1 && holders[0] !== beforeHost && (await entryOf(before))?.state === "BACKUP";
        },
        { timeoutMs: 40_000, intervalMs: 100, what: "another node holding the VIP alone and the restarted agent BACKUP" },
      );
      samples = await sampler.stop();
      const takeover = samples.find((sample) => sample.at >= killedAt && sample.holders.some((holder) => holder !== beforeHost));
      measured.agentKillTakeoverMs = takeover === undefined ? -1 : takeover.at - killedAt;
      // The killed agent leaves the VIP on its interface; the backup adds it after Master_Down_Interval, and the
      // restarted agent removes it once it has read its HAVIP. Between the two, both nodes hold the address.
      const duplicateMs = windowMs(samples, (sample) => sample.holders.length > 1);
      measured.agentKillDuplicateWindowMs = duplicateMs;
      measured.agentKillNoHolderWindowMs = windowMs(samples, (sample) => sample.holders.length === 0);
      const gaps = samples.slice(1).map((sample, index) => sample.at - (samples[index]?.at ?? sample.at));
      measured.agentKillSampleGapMs = `median ${[...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)] ?? 0}, max ${Math.max(0, ...gaps)} over ${samples.length} samples`;
      log(`agent SIGKILL: duplicate window ${duplicateMs} ms (Master_Down_Interval ${masterDownIntervalMs} ms), takeover after ${measured.agentKillTakeoverMs} ms`);
      expect(takeover).toBeDefined();
      // The stale address goes when the restarted agent removes it (the runner's 1 s restart delay, node start-up,
      // reading its HAVIP) or at the latest when its kernel lease runs out, while the backup waits a
      // Master_Down_Interval (3.6-3.8 s) first: so they overlap for under 2 s, plus the sampling's gaps (up to 1 s on
      // two busy cores). Measured 596 ms in CI and 1970 ms here (samples up to 1040 ms apart); the lease keeps 2.5×.
      expect(duplicateMs).toBeLessThan(vipLeaseMs);
    } finally {
      if (samples.length === 0) await sampler.stop();
      const report = await probe.stop();
      measured.agentKillProbe = `${report.ok}/${report.sent} ok, ${report.failed} failed, max outage ${report.maxOutageMs} ms`;
      // The client probed throughout. Until the backup takes over, the killed agent's node still holds the VIP and its
      // nginx answers; an outage needs the restarted agent to remove the stale address first (at least the runner's
      // 1 s restart delay after the kill), so it ends within one Master_Down_Interval, when the backup takes over.
      // With a holder at every sample, at most the one request in flight when the client's ARP entry flips fails
      // (see test/ns/agent/failover.test.ts). Measured in CI: 914/914 ok, max outage 0 ms.
      expect(report.sent).toBeGreaterThan(100);
      expect(report.maxOutageMs).toBeLessThan(masterDownIntervalMs);
      if (measured.agentKillNoHolderWindowMs === 0) expect(report.failed).toBeLessThanOrEqual(1);
    }
    const { master } = await bed().settled();
    expect(master).not.toBe(before);
  }, 120_000);

  it("agent pod deleted on the master: it hands over on SIGTERM, no hole (at most the in-flight request), its replacement joins as BACKUP", async () => {
    const { testbed, core } = bed();
    const { master: before } = await bed().settled();
    const agents = await core.listNamespacedPod({ namespace: agentNamespace, labelSelector: "app.kubernetes.io/name=ha-nginx-agent", fieldSelector: `spec.nodeName=${before}` });
    const agent = agents.items[0];
    if (agent?.metadata?.name === undefined) throw new Error(`no agent pod on ${before}`);
    const probe = await testbed.lab.startProbe(`http://${bed().vip}/`, { intervalMs: 10, timeoutMs: 500 });
    try {
      const deleteAt = Date.now();
      const deleted = await testbed.kubectl(["delete", "pod", agent.metadata.name, "-n", agentNamespace, "--wait=false"]);
      expect(deleted.code, deleted.stderr).toBe(0);
      let after = "";
      await waitFor(
        async () => {
          const current = await masters();
          if (current.length !== 1 || current[0] === undefined || current[0] === before) return false;
          after = current[0];
          return true;
        },
        { timeoutMs: 20_000, intervalMs: 20, what: "a new MASTER after the agent pod's deletion" },
      );
      measured.agentDeleteToStatusMs = Date.now() - deleteAt;
      measured.agentDeleteMasters = `${before} -> ${after}`;
      const { master } = await bed().settled();
      expect(master).toBe(after);
      expect((await entryOf(before))?.state).toBe("BACKUP");
    } finally {
      const report = await probe.stop();
      measured.agentDeleteProbe = `${report.ok}/${report.sent} ok, ${report.failed} failed, max outage ${report.maxOutageMs} ms`;
      const logDir = testbed.runner.podDir(agentNamespace, agent.metadata.name);
      if (report.failed > 0 && logDir !== undefined) log(`old agent log:\n${readFileSync(`${logDir}/agent.log`, "utf8").slice(-4000)}`);
      // No hole (that shows as 100 ms timeouts); at most the one request whose connection opened on the old master
      // just before the client's ARP entry flipped, reset by the new master (see test/ns/agent/failover.test.ts).
      expect(report.failed).toBeLessThanOrEqual(1);
      expect(report.maxOutageMs).toBeLessThan(100);
    }
  }, 120_000);

  it("node link cut on the master (switch port, kubelet and API all gone): a backup takes over, the node is listed gone; restored, the node rejoins as BACKUP and the VIP stays (preemption Never)", async () => {
    const { testbed, core } = bed();
    // Cutting the top-priority node makes its return a real test of preemption Never: it outranks its successor.
    await makeMaster(topNode);
    const before = topNode;
    const host = testbed.hostOf(before);
    const nodeReady = async (): Promise<string | undefined> =>
      (await core.readNode({ name: before })).status?.conditions?.find((condition) => condition.type === "Ready")?.status;
    const probe = await testbed.lab.startProbe(`http://${bed().vip}/`, { intervalMs: 10, timeoutMs: 500 });
    let isCut = false;
    let after = "";
    try {
      const cutAt = Date.now();
      // One failed switch port takes the pods' API connections, the kubelet's heartbeats and the data link together;
      // the API goes first so that no status write of the cut agent slips out between the steps.
      isCut = true;
      await testbed.runner.cutApi(before);
      await testbed.runner.stopNode(before, { keepPods: true });
      await testbed.lab.cutLink(host);
      await waitFor(
        async () => {
          const holders = await vipHolders(testbed.lab, bed().vip);
          const [holder] = holders;
          if (holders.length !== 1 || holder === undefined || holder === host.name) return false;
          after = testbed.nodeNames.find((node) => testbed.hostOf(node).name === holder) ?? "";
          return true;
        },
        { timeoutMs: 30_000, intervalMs: 20, what: "a backup holding the VIP alone" },
      );
      measured.linkCutTakeoverMs = Date.now() - cutAt;
      await waitFor(
        async () => (await testbed.lab.httpGet(testbed.lab.client, `http://${bed().vip}/`, { timeoutMs: 500 })).status === 200,
        { timeoutMs: 15_000, intervalMs: 50, what: "the client answered through the VIP again" },
      );
      measured.linkCutServedAgainMs = Date.now() - cutAt;
      // The cut agent is alive, but its carrier is gone: the link monitor feeds interface-down and it goes to FAULT,
      // dropping the VIP, rather than staying MASTER alone on a dead segment where nobody can hear it; so no stale
      // address is left to clash with the new master when the link returns.
      const cutState = await bed().agentState(before);
      expect(cutState).toMatchObject({ state: "Fault", holdsVip: false, isLinkUp: false });
      await waitFor(async () => (await entryOf(after))?.state === "MASTER", { timeoutMs: 15_000, intervalMs: 100, what: `${after} MASTER in status.nodes` });
      // Nobody can speak for the cut node: its entry keeps the agent's last word, until the controller lists it gone.
      expect((await entryOf(before))?.state).toBe("MASTER");
      await waitFor(async () => (await nodeReady()) === "Unknown", { timeoutMs: 60_000, intervalMs: 250, what: `${before} NotReady (Unknown) after its heartbeats stopped` });
      measured.linkCutNodeNotReadyMs = Date.now() - cutAt;
      // Until the node turned NotReady its stale MASTER looked as live as the new one; from now on the controller
      // knows it is gone, so the live master is the master and nothing is a split brain.
      const isSettledOnLiveMaster = async (): Promise<boolean> => {
        const { master, conditions } = await bed().havipStatus();
        const splitBrain = conditions?.find((condition) => condition.type === ConditionType.SplitBrain);
        return master === after && splitBrain?.status === "False";
      };
      await waitFor(isSettledOnLiveMaster, { timeoutMs: 10_000, intervalMs: 100, what: `status.master ${after} and SplitBrain False once ${before} is NotReady` });
      let wasSplitBrainReportedAgain = false;
      await waitFor(
        async () => {
          wasSplitBrainReportedAgain ||= !(await isSettledOnLiveMaster());
          return (await bed().havipStatus()).goneNodes?.includes(before) === true;
        },
        { timeoutMs: 90_000, intervalMs: 250, what: `${before} in status.goneNodes` },
      );
      measured.linkCutToGoneMs = Date.now() - cutAt;
      expect(wasSplitBrainReportedAgain).toBe(false);
      // A NotReady node stays a peer, so it hears the master from the moment its link returns.
      expect((await bed().havipStatus()).peers).toContain(host.address);
      // The controller writes only its own fields: the cut agent's entry is still its last word.
      expect((await entryOf(before))?.state).toBe("MASTER");
    } finally {
      if (isCut) {
        await testbed.lab.restoreLink(host);
        await testbed.runner.restoreApi(before);
        await testbed.runner.startNode(before);
      }
    }
    const restoredAt = Date.now();
    const sampler = sampleHolders();
    let samples: HolderSample[] = [];
    try {
      await waitFor(
        async () => {
          const status = await bed().havipStatus();
          return status.nodes?.find((entry) => entry.node === before)?.state === "BACKUP" && status.goneNodes?.includes(before) !== true;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: `${before}'s entry back to BACKUP and off status.goneNodes` },
      );
      measured.linkRestoreToBackupMs = Date.now() - restoredAt;
      // Preemption Never: the higher-priority node must not take the VIP back, neither once it hears the master nor
      // after a Master_Down_Interval of hearing it; watch for two of them.
      await new Promise((resolve) => setTimeout(resolve, 2 * masterDownIntervalMs));
      const { master } = await bed().settled();
      expect(master).toBe(after);
    } finally {
      samples = await sampler.stop();
      const report = await probe.stop();
      measured.linkCutProbe = `${report.ok}/${report.sent} ok, ${report.failed} failed, max outage ${report.maxOutageMs} ms`;
      const afterRestore = report.windows.filter((window) => window.startMs >= restoredAt);
      measured.linkRestoreFailed = afterRestore.reduce((sum, window) => sum + window.failed, 0);
      // The takeover waits out a Master_Down_Interval; 5 s more for two shared cores. Measured: max outage 3529 ms in CI
      // and 4084 ms here (takeover after 3437 and 3758 ms), so the bound keeps about twice the worst.
      expect(report.maxOutageMs).toBeLessThan(masterDownIntervalMs + 5_000);
    }
    expect(samples.filter((sample) => sample.holders.includes(host.name))).toEqual([]);
    expect(measured.linkRestoreFailed).toBe(0);
    expect(await bed().agentState(before)).toMatchObject({ state: "Backup", holdsVip: false, isLinkUp: true });
  }, 240_000);
});
