// The real cluster: kind nodes with a real kubelet and containerd run the image built from our Dockerfile, installed
// with `helm install` of charts/ha-nginx, while a client container on the kind network requests the VIP every 10 ms.
// Needs the Docker daemon and the images (.ci/run: scripts/docker-daemon.sh and scripts/kind-images.sh); without
// them it fails, never skips.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kindImagesFromEnv } from "./kind-cluster.js";
import {
  agentPodDelete,
  cutMasterNode,
  drainMaster,
  helmUninstall,
  helmUpgradeRollsAgents,
  nginxKill,
  nginxPodDelete,
  pauseMasterNode,
  podUsage,
  startKindHa,
  type KindHa,
  type PodUsage,
  type ScenarioRow,
} from "./kind-ha.js";
import { renderKindTable } from "./kind-report.js";

const soakMs = 120_000;
// A planned move should lose nothing but the request whose connection opened on the old master just before the
// client's ARP entry flipped (README). On kind under this machine's load, planned moves lost 0-3 requests in most
// runs, but one run lost 9 in a 1.5 s stall and 12 over a rolling upgrade (docs/kind.md). These bounds only catch a
// planned move that turns into a failover (nginx killed loses 40-100 over 0.6-3.7 s); the figures are the goal's measure.
const plannedMoveFailures = 20;
const plannedMoveOutageMs = 3000;

let ha: KindHa | undefined;
const rows: ScenarioRow[] = [];
let usage: PodUsage[] = [];
const log = (line: string): void => { process.stderr.write(`[kind] ${line}\n`); };

/** A failed bound prints the row and, below it, the agents' transitions and the client's failure windows. */
function describeRow(row: ScenarioRow): string {
  const { timeline, ...figures } = row;
  return timeline === undefined ? JSON.stringify(figures) : `${JSON.stringify(figures)}\ntimeline:\n${timeline.join("\n")}`;
}

function bed(): KindHa {
  if (ha === undefined) throw new Error("the kind cluster did not start");
  return ha;
}

beforeAll(async () => {
  const started = await startKindHa({ runId: randomBytes(3).toString("hex"), images: kindImagesFromEnv(), log });
  ha = started.ha;
  rows.push(started.install);
}, 900_000);

afterAll(async () => {
  if (rows.length > 0) log(`\n${renderKindTable(rows, usage)}`);
  await ha?.close();
}, 300_000);

describe("kind: the image and the chart under a real kubelet", () => {
  it("helm install brings the VIP up on one node", () => {
    const install = rows[0];
    expect(install?.figures.answeringAfterMs).toBeGreaterThan(0);
  });

  it.each([
    ["the master's nginx pod deleted", nginxPodDelete, 1],
    ["the master's agent pod deleted", agentPodDelete, 1],
    ["a helm upgrade rolling every agent", helmUpgradeRollsAgents, 3],
    ["kubectl drain of the master's node", drainMaster, 1],
  ] as const)("planned move, %s: the VIP moves with no outage over 3 s and at most 20 requests lost per move", async (_name, scenario, moves) => {
    const row = await scenario(bed());
    rows.push(row);
    expect(row.sentRequests).toBeGreaterThan(100);
    expect(row.outageMs, describeRow(row)).toBeLessThan(plannedMoveOutageMs);
    expect(row.failedRequests, describeRow(row)).toBeLessThanOrEqual(plannedMoveFailures * moves);
  }, 420_000);

  it("nginx SIGKILLed in its container on the master: the VIP moves to a healthy node", async () => {
    const row = await nginxKill(bed());
    rows.push(row);
    expect(row.figures.to).not.toBe(row.figures.from);
    expect(row.outageMs, describeRow(row)).toBeLessThan(8000);
  }, 300_000);

  it.each([
    ["frozen with docker pause", pauseMasterNode],
    ["cut off its network", cutMasterNode],
  ])("the master's node %s: a backup takes over, status shows the node gone, and it rejoins without a flip", async (_name, scenario) => {
    const row = await scenario(bed());
    rows.push(row);
    // 1 s adverts: Master_Down_Interval is 3.6 s at priority 100; the bound leaves room for this noisy machine.
    expect(row.figures.takeoverMs, describeRow(row)).toBeLessThan(8000);
    expect(row.figures.holderChangesAfterRejoin, describeRow(row)).toBe(0);
  }, 600_000);

  it(`soak for ${soakMs / 1000} s under the chart's limits: no OOM kill, no restart, working set under the limit`, async () => {
    // Restarts are counted from the soak's start: a node cut off above may have had its agent restarted by liveness.
    const before = new Map((await podUsage(bed())).map((pod) => [pod.pod, pod.restarts]));
    await new Promise((resolveSoak) => setTimeout(resolveSoak, soakMs));
    usage = await podUsage(bed());
    expect(usage.length).toBeGreaterThanOrEqual(4);
    for (const pod of usage) {
      expect(pod.isOomKilled, JSON.stringify(pod)).toBe(false);
      expect(pod.workingSetMiB, JSON.stringify(pod)).toBeGreaterThan(0);
    }
    const restarted = usage.filter((pod) => pod.restarts !== (before.get(pod.pod) ?? 0));
    expect(restarted, JSON.stringify(restarted)).toEqual([]);
  }, soakMs + 120_000);

  it("helm uninstall leaves no VIP on any node and no agent or controller pod", async () => {
    const result = await helmUninstall(bed());
    log(`helm uninstall took ${result.seconds} s`);
    expect(result).toMatchObject({ vipHolders: [], agentPods: 0, controllerPods: 0 });
  }, 400_000);
});
