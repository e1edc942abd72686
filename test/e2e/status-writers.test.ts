// One writer per status field, against the real API server: the controller's adapter and the agents' adapter write
// one HighAvailabilityVIP's status in every interleaving a running cluster produces, and neither fails nor undoes the
// other. Before this, the controller merge-patched the whole status guarded by resourceVersion, so every agent write
// between its read and its write failed it with 409 and sent it into backoff: status.master lagged 10-16 s.
import { KubeConfig } from "@kubernetes/client-node";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION, type HaVipStatus, type NodeStatusEntry } from "../../src/api/v1alpha1/index.js";
import { AgentApi } from "../../src/agent/k8s/client.js";
import { credentialsFromKubeconfig, KubernetesHttpClient } from "../../src/k8s/http-client.js";
import { FIELD_MANAGER } from "../../src/controller/agent-objects.js";
import { Cluster, type HavipRef } from "../../src/controller/k8s/cluster.js";
import type { ControllerStatus } from "../../src/controller/plan.js";
import { startControlPlane, type ControlPlane } from "../../testing/testbed/control-plane.js";
import { haVipManifest, havipName, havipNamespace } from "../../testing/testbed/havip-bed.js";

const repo = resolve(import.meta.dirname, "../..");
let plane: ControlPlane | undefined;
let cluster: Cluster;
const agents = new Map<string, AgentApi>();

function controlPlane(): ControlPlane {
  if (plane === undefined) throw new Error("the control plane did not start");
  return plane;
}

interface StoredHavip {
  readonly metadata: { readonly resourceVersion: string; readonly uid: string; readonly managedFields?: readonly { manager: string; fieldsV1?: unknown }[] };
  readonly status?: HaVipStatus;
}

async function read(): Promise<StoredHavip> {
  const result = await controlPlane().kubectl(["get", `${HAVIP_PLURAL}.${HAVIP_GROUP}`, havipName, "-n", havipNamespace, "-o", "json", "--show-managed-fields"]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as StoredHavip;
}

function refOf(object: StoredHavip): HavipRef {
  return { namespace: havipNamespace, name: havipName, uid: object.metadata.uid, resourceVersion: object.metadata.resourceVersion };
}

function entry(node: string, state: NodeStatusEntry["state"]): NodeStatusEntry {
  return { node, state, priority: 100, effectivePriority: 100, healthy: true, reason: "test", address: "10.0.0.1", lastTransitionTime: "2026-12-05T10:00:00Z" };
}

function controllerStatus(master: string): ControllerStatus {
  return {
    virtualRouterID: 255,
    master,
    peers: ["10.0.0.1", "10.0.0.2"],
    goneNodes: [],
    conditions: [{ type: "Ready", status: "True", reason: "MasterElected", message: `${master} holds the VIP`, lastTransitionTime: "2026-12-05T10:00:00Z" }],
  };
}

async function agentWrites(node: string, state: NodeStatusEntry["state"]): Promise<void> {
  let agent = agents.get(node);
  if (agent === undefined) {
    agent = new AgentApi(new KubernetesHttpClient(credentialsFromKubeconfig(controlPlane().adminKubeconfig)), havipNamespace, havipName, `ha-nginx-agent-${node}`);
    agents.set(node, agent);
  }
  const outcome = await agent.applyStatus(entry(node, state), new AbortController().signal);
  expect(outcome).toEqual({ ok: true });
}

function kubeConfig(): KubeConfig {
  const config = new KubeConfig();
  config.loadFromFile(controlPlane().adminKubeconfig);
  return config;
}

beforeAll(async () => {
  plane = await startControlPlane();
  const crd = await plane.kubectl(["apply", "-f", join(repo, "crds")]);
  expect(crd.code, crd.stderr).toBe(0);
  const established = await plane.kubectl(["wait", "--for=condition=Established", `crd/${HAVIP_PLURAL}.${HAVIP_GROUP}`, "--timeout=60s"]);
  expect(established.code, established.stderr).toBe(0);
  const created = await plane.kubectl(["create", "namespace", havipNamespace]);
  expect(created.code, created.stderr).toBe(0);
  const applied = await plane.kubectl(["apply", "-f", "-"], { input: haVipManifest("10.0.0.200") });
  expect(applied.code, applied.stderr).toBe(0);
  cluster = new Cluster(kubeConfig(), "status-writers-test");
}, 300_000);

afterAll(async () => {
  await plane?.stop();
}, 120_000);

describe(`status of ${HAVIP_GROUP}/${HAVIP_VERSION} with one writer per field`, () => {
  it("the controller's write from a read older than an agent's write succeeds, and keeps that agent's entry", async () => {
    const before = await read();
    await agentWrites("node-1", "MASTER");
    await cluster.applyStatus(refOf(before), controllerStatus("node-1"));
    const after = await read();
    expect(after.status?.master).toBe("node-1");
    expect(after.status?.nodes?.map((stored) => [stored.node, stored.state])).toEqual([["node-1", "MASTER"]]);
  });

  it("agents writing afterwards leave the controller's fields alone, and each other's entries", async () => {
    await agentWrites("node-2", "BACKUP");
    await agentWrites("node-1", "BACKUP");
    await agentWrites("node-2", "MASTER");
    const after = await read();
    expect(after.status).toMatchObject({ master: "node-1", virtualRouterID: 255, peers: ["10.0.0.1", "10.0.0.2"] });
    expect(after.status?.nodes?.map((stored) => [stored.node, stored.state])).toEqual([["node-1", "BACKUP"], ["node-2", "MASTER"]]);
  });

  it("managedFields show it: the controller owns no nodes entry, each agent owns only its own", async () => {
    const { managedFields = [] } = (await read()).metadata;
    const owned = (manager: string): string => JSON.stringify(managedFields.filter((fields) => fields.manager === manager).map((fields) => fields.fieldsV1));
    expect(owned(FIELD_MANAGER)).toContain('"f:master"');
    expect(owned(FIELD_MANAGER)).not.toContain('"f:nodes"');
    expect(owned("ha-nginx-agent-node-1")).toContain('k:{\\"node\\":\\"node-1\\"}');
    expect(owned("ha-nginx-agent-node-1")).not.toContain("node-2");
    expect(owned("ha-nginx-agent-node-1")).not.toContain('"f:master"');
  });

  it("removing a stale entry takes only that node's, and is refused when the list moved since it was read", async () => {
    const stale = await read();
    const storedEntries = stale.status?.nodes ?? [];
    await expect(cluster.removeStatusEntries(refOf(stale), [...storedEntries].reverse(), ["node-2"])).rejects.toMatchObject({ code: 422 });
    expect((await read()).status?.nodes?.map((stored) => stored.node)).toEqual(["node-1", "node-2"]);
    await cluster.removeStatusEntries(refOf(stale), storedEntries, ["node-2"]);
    const after = await read();
    expect(after.status?.nodes?.map((stored) => [stored.node, stored.state])).toEqual([["node-1", "BACKUP"]]);
    expect(after.status?.master).toBe("node-1");
  });
});
