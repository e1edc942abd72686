// Hostile resource input on the real API server (issue #7 item 2). A table of invalid HighAvailabilityVIPs, each
// either refused by `kubectl apply` with a message line that names the field and says what to write, or - where the
// API server let it in, as one built from an older CRD without the rule would - stored and marked Invalid by the
// controller with the same. Then keepalived #942 (a health-check weight too small to move the VIP) on real agents:
// WeightIneffective turns True with a Warning Event while the resource stays Ready, and the trap is shown to be real.
// Two resources that clash get Conflict on both in test/e2e/controller.test.ts, so that is not repeated here.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join, resolve } from "node:path";
import { buildCrd, type JsonObject, type JsonValue } from "../../src/api/v1alpha1/index.js";
import { DEFAULT_AGENT_HTTP_PORT } from "../../src/controller/command.js";
import { vipHolders } from "../../testing/lab/agent.js";
import { waitFor } from "../../testing/lab/wait.js";
import { haVipManifest, havipName, havipNamespace as namespace, havipSystemNamespace, isPodReady, startHaVipBed, type HaVipBed } from "../../testing/testbed/havip-bed.js";

const repo = resolve(import.meta.dirname, "../..");
const crdFile = join(repo, "crds/ha-nginx.io_highavailabilityvips.yaml");
const log = (line: string): void => void process.stdout.write(`[resource-input e2e] ${line}\n`);
const measured: Record<string, number | string> = {};

const v4 = ["10.77.0.200/24"];

interface Row {
  readonly name: string;
  readonly spec: Record<string, unknown>;
  /** The field as the API server names it, followed by ": " on the message line. */
  readonly path: string;
  /** Words of the fix that must stand on the same line. */
  readonly fix: string;
}

const rejected: readonly Row[] = [
  { name: "bad address", spec: { addresses: ["10.77.0.300/24"] }, path: "spec.addresses[0]", fix: "e.g. 192.0.2.10/24" },
  { name: "netmask instead of a prefix length", spec: { addresses: ["10.77.0.200/255.255.255.0"] }, path: "spec.addresses[0]", fix: "e.g. 192.0.2.10/24" },
  { name: "prefix over 32", spec: { addresses: ["10.77.0.200/33"] }, path: "spec.addresses[0]", fix: "e.g. 192.0.2.10/24" },
  { name: "host name instead of an address", spec: { addresses: ["vip.example.com"] }, path: "spec.addresses[0]", fix: "e.g. 192.0.2.10/24" },
  { name: "same address twice", spec: { addresses: ["10.77.0.200/24", "10.77.0.200/24"] }, path: "spec.addresses", fix: "remove the duplicate" },
  { name: "same address with two prefixes", spec: { addresses: ["10.77.0.200/24", "10.77.0.200"] }, path: "spec.addresses", fix: "remove the duplicate" },
  { name: "IPv4 and IPv6 mixed", spec: { addresses: ["10.77.0.200", "2001:db8::1"] }, path: "spec.addresses", fix: "create one HighAvailabilityVIP per family" },
  { name: "VRRPv3 interval over 40.95 s", spec: { addresses: v4, advertisementInterval: "41s" }, path: "spec.advertisementInterval", fix: "use e.g. 1s or 100ms" },
  { name: "VRRPv3 interval not in centiseconds", spec: { addresses: v4, advertisementInterval: "15ms" }, path: "spec.advertisementInterval", fix: "use e.g. 1s or 100ms" },
  {
    name: "VRRPv2 interval not whole seconds",
    spec: { addresses: v4, vrrpVersion: 2, advertisementInterval: "1500ms" },
    path: "spec.advertisementInterval",
    fix: "use e.g. 1s, or vrrpVersion: 3",
  },
  { name: "VRRPv2 with IPv6", spec: { addresses: ["2001:db8::1"], vrrpVersion: 2 }, path: "spec.vrrpVersion", fix: "use vrrpVersion: 3" },
  { name: "VRRP version 4", spec: { addresses: v4, vrrpVersion: 4 }, path: "spec.vrrpVersion", fix: "supported values" },
  { name: "VRID 0", spec: { addresses: v4, virtualRouterID: 0 }, path: "spec.virtualRouterID", fix: "omit it to let the controller allocate one" },
  {
    name: "priority 0 (reserved for a master giving up)",
    spec: { addresses: v4, nodes: { priorities: [{ node: "node-1", priority: 0 }] } },
    path: "spec.nodes.priorities[0].priority",
    fix: "use e.g. 100",
  },
  {
    name: "priority 255 on a non-owner",
    spec: { addresses: v4, nodes: { priorities: [{ node: "node-1", priority: 255 }] } },
    path: "spec.nodes.priorities[0].priority",
    fix: "use e.g. 100",
  },
  {
    name: "node listed twice in priorities",
    spec: { addresses: v4, nodes: { priorities: [{ node: "node-1", priority: 150 }, { node: "node-1", priority: 120 }] } },
    path: "spec.nodes.priorities",
    fix: "remove the second entry of a node",
  },
  {
    name: "preemption delay without mode Delayed",
    spec: { addresses: v4, preemption: { mode: "Always", delay: "30s" } },
    path: "spec.preemption.delay",
    fix: "set spec.preemption.mode: Delayed, or remove delay",
  },
  {
    name: "mode Delayed without a delay",
    spec: { addresses: v4, preemption: { mode: "Delayed" } },
    path: "spec.preemption.delay",
    fix: "set spec.preemption.delay, e.g. 30s",
  },
  {
    name: "unicast peers with mode Multicast",
    spec: { addresses: v4, transport: { mode: "Multicast", peers: ["10.77.0.11"] } },
    path: "spec.transport.peers",
    fix: "set spec.transport.mode: Unicast, or remove peers",
  },
  { name: "IPv6 peer for IPv4 addresses", spec: { addresses: v4, transport: { peers: ["2001:db8::11"] } }, path: "spec.transport.peers", fix: "use IPv4 peers" },
  {
    name: "authentication with VRRPv3",
    spec: { addresses: v4, authentication: { passwordSecretRef: { name: "vrrp-auth", key: "password" } } },
    path: "spec.authentication",
    fix: "remove authentication, or set vrrpVersion: 2",
  },
  { name: "interface name with a slash", spec: { addresses: v4, interface: "eth0/1" }, path: "spec.interface", fix: "write e.g. eth0" },
  { name: "interface name ..", spec: { addresses: v4, interface: ".." }, path: "spec.interface", fix: "write e.g. eth0" },
  // maxLength stops validation before the CEL rule (which needs the bound for its cost estimate), so the API server's
  // own text answers; it states the limit.
  {
    name: "interface name over 15 characters",
    spec: { addresses: v4, interface: "a-very-long-interface" },
    path: "spec.interface",
    fix: "may not be more than 15 bytes",
  },
  { name: "positive weight", spec: { addresses: v4, healthCheck: { weight: 10 } }, path: "spec.healthCheck.weight", fix: "use 0" },
  { name: "weight below -253", spec: { addresses: v4, healthCheck: { weight: -254 } }, path: "spec.healthCheck.weight", fix: "must be -253..0" },
  {
    name: "empty nginxPodSelector (matches the agent's own pod)",
    spec: { addresses: v4, healthCheck: { nginxPodSelector: {} } },
    path: "spec.healthCheck.nginxPodSelector",
    fix: "add matchLabels naming the nginx pods",
  },
  {
    name: "probe timeout longer than its period",
    spec: { addresses: v4, healthCheck: { probe: { httpGet: { path: "/healthz", port: 80 }, period: "100ms", timeout: "200ms" } } },
    path: "spec.healthCheck.probe.timeout",
    fix: "lower timeout or raise period",
  },
  // The API server's own text, which this project cannot change: it names the field; the fix (remove it or fix its
  // spelling) is implied by "unknown field".
  { name: "misspelt field", spec: { addresses: v4, advertisementIntreval: "1s" }, path: "spec.advertisementIntreval", fix: "unknown field" },
];

// Rules added to the CRD in this release: a resource stored under an older CRD that lacked them is still in etcd after
// the upgrade, and only the controller can tell its owner.
const storedBeforeTheRule: readonly (Row & { readonly ruleAt: readonly string[] })[] = [
  {
    name: "empty nginxPodSelector",
    spec: { addresses: ["10.77.0.210/24"], healthCheck: { nginxPodSelector: {} } },
    ruleAt: ["spec", "healthCheck", "nginxPodSelector"],
    path: "spec.healthCheck.nginxPodSelector",
    fix: "add matchLabels naming the nginx pods",
  },
  {
    name: "interface name .",
    spec: { addresses: ["10.77.0.211/24"], interface: "." },
    ruleAt: ["spec", "interface"],
    path: "spec.interface",
    fix: "write e.g. eth0",
  },
];

const oldToleration = (index: number): string => `ha-nginx.io/old-${index}`;

function manifest(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: "ha-nginx.io/v1alpha1", kind: "HighAvailabilityVIP", metadata: { name, namespace }, spec });
}

function schemaNode(crd: JsonObject, path: readonly string[]): JsonObject {
  const versions = crd["spec"] as { versions: { schema: { openAPIV3Schema: JsonObject } }[] };
  let node: JsonValue | undefined = versions.versions[0]?.schema.openAPIV3Schema;
  for (const key of path) node = ((node as JsonObject)["properties"] as JsonObject)[key];
  return node as JsonObject;
}

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
}

// node-1 at 150 over node-2 at 100: unhealthy, node-1 advertises 150 - 10 = 140, still above 100, so node-2 never
// preempts (RFC 5798 §6.4.2). The smallest weight that works is -51.
// The resource tolerates the NoSchedule taint the third test puts on node-1: an agent serves only the resources whose
// tolerations cover its node's taints, and the nginx DaemonSet, which has none, must be the only one kept off node-1.
const testTaint = "ha-nginx.io/resource-input-test";
const weakWeightManifest = (vip: string): string => {
  const manifest = haVipManifest(vip, { agents: { preemption: "Always", weight: -10, hasLocalProbe: false } });
  const tolerating = manifest.replace("  nodes:\n", `  nodes:\n    tolerations: [{ key: ${testTaint}, operator: Exists, effect: NoSchedule }]\n`);
  if (tolerating === manifest) throw new Error("the bed's HAVIP manifest has no spec.nodes to add the toleration to");
  return tolerating;
};

describe("e2e resource input", () => {
  let havip: HaVipBed | undefined;
  const bed = (): HaVipBed => {
    if (havip === undefined) throw new Error("no test bed");
    return havip;
  };
  const kubectl = (args: readonly string[], input?: string) => bed().testbed.kubectl(args, input === undefined ? undefined : { input });
  const conditionsOf = async (name: string): Promise<readonly Condition[]> => {
    const got = await kubectl(["get", "havip", name, "-n", namespace, "-o", "jsonpath={.status.conditions}"]);
    return got.code === 0 && got.stdout !== "" ? (JSON.parse(got.stdout) as Condition[]) : [];
  };

  beforeAll(async () => {
    const started = Date.now();
    havip = await startHaVipBed({ log, havipManifest: weakWeightManifest, shouldWaitForNginx: true });
    measured.bedStartMs = Date.now() - started;
  }, 240_000);

  afterAll(async () => {
    await havip?.stop();
    log(`measurements: ${JSON.stringify(measured)}`);
  }, 120_000);

  it.each(rejected.map((row, index) => ({ ...row, index })))("API server refuses $name: $path says how to fix it", async ({ spec, path, fix, index }) => {
    const name = `bad-${index}`;
    const applied = await kubectl(["apply", "-f", "-"], manifest(name, spec));
    expect(applied.code, applied.stdout).not.toBe(0);
    const lines = applied.stderr.split("\n");
    // CEL and schema errors read "path: Invalid value: …"; strict decoding reads 'unknown field "path"'.
    const line = lines.find((text) => (text.includes(`${path}: `) || text.includes(`"${path}"`)) && text.includes(fix));
    expect(line, `no line names ${path} and says "${fix}":\n${applied.stderr}`).toBeDefined();
    const stored = await kubectl(["get", "havip", name, "-n", namespace]);
    expect(stored.code, `${name} was stored`).not.toBe(0);
  }, 30_000);

  it("keepalived #942: weight -10 cannot move the VIP off node-1 (150 over 100): WeightIneffective True, Warning Event, still Ready", async () => {
    // The agents start apart: one that starts before node-1 holds the VIP until node-1's Master_Down_Interval (3.4 s)
    // runs out and it preempts (mode Always), so the first settled state may still show that one.
    const started = Date.now();
    let master = "";
    await waitFor(async () => (master = (await bed().settled(5_000)).master) === "node-1", { timeoutMs: 30_000, intervalMs: 250, what: "node-1 (150) to hold the VIP" });
    measured.nodeOneMasterAfterMs = Date.now() - started;
    expect(master).toBe("node-1");
    let weight: Condition | undefined;
    await waitFor(
      async () => {
        const { conditions = [], nodes = [] } = await bed().havipStatus();
        weight = conditions.find((condition) => condition.type === "WeightIneffective");
        if (weight?.status === "True" && conditions.some((condition) => condition.type === "Ready" && condition.status === "True")) return true;
        // Thrown, not false: waitFor quotes the last error, so a timeout shows what the status said instead.
        const seen = (items: readonly object[]): string => items.map((item) => JSON.stringify(item)).join(", ");
        throw new Error(`conditions [${seen(conditions.map(({ type, status, reason, message }) => ({ type, status, reason, message })))}]; status.nodes [${seen(nodes)}]`);
      },
      { timeoutMs: 30_000, intervalMs: 250, what: "WeightIneffective=True next to Ready=True" },
    );
    expect(weight?.reason).toBe("WeightTooSmall");
    for (const part of ["node-1 (priority 150)", "lowers it only to 140", "node-2 (priority 100)", "weight ≤ -51"]) expect(weight?.message).toContain(part);
    expect((await conditionsOf(havipName)).find((condition) => condition.type === "Invalid")).toMatchObject({ status: "False", reason: "SpecValid" });
    const events = await kubectl(["get", "events", "-n", namespace, "--field-selector", `involvedObject.name=${havipName},reason=WeightTooSmall`, "-o", "json"]);
    expect(events.code, events.stderr).toBe(0);
    const items = (JSON.parse(events.stdout) as { items: { type: string; message: string }[] }).items;
    expect(items.map((item) => item.type)).toContain("Warning");
    expect(items[0]?.message).toContain("node-1 (priority 150)");
  }, 120_000);

  it("the warning is right: node-1 unhealthy at 140 keeps the VIP for three advert intervals", async () => {
    const { testbed, core } = bed();
    // A NoSchedule taint keeps the DaemonSet from replacing node-1's nginx pod, so node-1 stays unhealthy; the running
    // agent pod is not evicted by it, and the resource tolerates it, so that agent keeps serving it.
    const taint = `${testTaint}=unhealthy:NoSchedule`;
    const tainted = await kubectl(["taint", "node", "node-1", taint]);
    expect(tainted.code, tainted.stderr).toBe(0);
    try {
      const deleted = await kubectl(["delete", "pod", "-n", namespace, "-l", "app=web", "--field-selector", "spec.nodeName=node-1", "--wait=false"]);
      expect(deleted.code, deleted.stderr).toBe(0);
      const deletedAt = Date.now();
      await waitFor(
        async () => {
          const entry = (await bed().statusNodes()).find((candidate) => candidate.node === "node-1");
          return entry?.healthy === false && entry.effectivePriority === 140;
        },
        { timeoutMs: 30_000, intervalMs: 100, what: "node-1 reporting unhealthy at effective priority 140" },
      );
      measured.deleteToUnhealthyInStatusMs = Date.now() - deletedAt;
      const samples: string[][] = [];
      const until = Date.now() + 3_000;
      // Three intervals at least, and enough samples to mean something when `ip` itself is slow on a loaded machine.
      while (Date.now() < until || samples.length <= 5) {
        samples.push(await vipHolders(testbed.lab, bed().vip));
        await new Promise((resolveSleep) => setTimeout(resolveSleep, 100));
      }
      measured.holderSamplesWhileUnhealthy = samples.length;
      expect(samples.length).toBeGreaterThan(5);
      expect(samples.every((holders) => holders.length === 1 && holders[0] === testbed.hostOf("node-1").name), JSON.stringify(samples)).toBe(true);
      const entries = await bed().statusNodes();
      expect(entries.find((entry) => entry.node === "node-1")).toMatchObject({ state: "MASTER", healthy: false, effectivePriority: 140 });
      expect(entries.filter((entry) => entry.state === "MASTER")).toHaveLength(1);
    } finally {
      const untainted = await kubectl(["taint", "node", "node-1", `${taint}-`]);
      expect(untainted.code, untainted.stderr).toBe(0);
    }
    await waitFor(
      async () => {
        const list = await core.listNamespacedPod({ namespace, labelSelector: "app=web", fieldSelector: "spec.nodeName=node-1" });
        return list.items.length === 1 && isPodReady(list.items[0] ?? {});
      },
      { timeoutMs: 60_000, intervalMs: 250, what: "nginx Ready on node-1 again" },
    );
  }, 120_000);

  it("stored under an older CRD without the rule: the controller marks it Invalid, naming the field and the fix", async () => {
    const older = buildCrd();
    for (const row of storedBeforeTheRule) delete schemaNode(older, row.ruleAt)["x-kubernetes-validations"];
    try {
      const downgraded = await kubectl(["apply", "--server-side", "-f", "-"], JSON.stringify(older));
      expect(downgraded.code, downgraded.stderr).toBe(0);
      for (const [index, row] of storedBeforeTheRule.entries()) {
        // Each with a toleration of its own, which would show in the agent DaemonSet if the controller placed agents for it.
        const spec = { ...row.spec, nodes: { tolerations: [{ key: oldToleration(index), operator: "Exists" }] } };
        // The API server may take a moment to serve the older schema.
        await waitFor(async () => (await kubectl(["apply", "-f", "-"], manifest(`old-${index}`, spec))).code === 0, {
          timeoutMs: 30_000,
          intervalMs: 500,
          what: `the older CRD to accept ${row.name}`,
        });
      }
    } finally {
      const restored = await kubectl(["apply", "--server-side", "-f", crdFile]);
      expect(restored.code, restored.stderr).toBe(0);
    }
    for (const [index, row] of storedBeforeTheRule.entries()) {
      const name = `old-${index}`;
      let invalid: Condition | undefined;
      await waitFor(
        async () => {
          invalid = (await conditionsOf(name)).find((condition) => condition.type === "Invalid" && condition.status === "True");
          return invalid !== undefined;
        },
        { timeoutMs: 30_000, intervalMs: 250, what: `Invalid=True on ${name} (${row.name})` },
      );
      expect(invalid?.reason).toBe("ValidationFailed");
      expect(invalid?.message).toContain(`${row.path}: `);
      expect(invalid?.message).toContain(row.fix);
      expect((await conditionsOf(name)).find((condition) => condition.type === "Ready")).toMatchObject({ status: "False", reason: "SpecInvalid" });
    }
    // A valid resource stored after them, on no node: once its toleration is in the agent DaemonSet, the controller has
    // placed the agents with the invalid ones in its cache, and their tolerations must not be there.
    const control = manifest("placement-control", { addresses: ["10.77.0.212/24"], nodes: { selector: { matchLabels: { "ha-nginx.io/nowhere": "true" } }, tolerations: [{ key: "ha-nginx.io/placement-control", operator: "Exists" }] } });
    const applied = await kubectl(["apply", "-f", "-"], control);
    expect(applied.code, applied.stderr).toBe(0);
    let tolerations: readonly string[] = [];
    await waitFor(
      async () => {
        const got = await kubectl(["get", "daemonset", "ha-nginx-agent", "-n", havipSystemNamespace, "-o", "jsonpath={.spec.template.spec.tolerations[*].key}"]);
        tolerations = got.code === 0 ? got.stdout.split(" ") : [];
        return tolerations.includes("ha-nginx.io/placement-control");
      },
      { timeoutMs: 30_000, intervalMs: 250, what: "the control resource's toleration in the agent DaemonSet" },
    );
    for (const index of storedBeforeTheRule.keys()) expect(tolerations, `the controller placed agents for invalid old-${index}`).not.toContain(oldToleration(index));
    // Nor does any agent serve them: on every node, no router and no problem under their names.
    for (const node of bed().testbed.nodeNames) {
      const host = bed().testbed.hostOf(node);
      const answer = await bed().testbed.lab.httpGet(host, `http://${host.address}:${DEFAULT_AGENT_HTTP_PORT}/state`);
      expect(answer.status, `${node}'s agent /state`).toBe(200);
      const state = JSON.parse(answer.body) as { routers?: { havip?: string }[]; problems?: { havip?: string }[] };
      const served = [...(state.routers ?? []), ...(state.problems ?? [])].map((part) => part.havip);
      expect(served, `${node}'s agent`).toContain(`${namespace}/${havipName}`);
      for (const index of storedBeforeTheRule.keys()) expect(served, `${node}'s agent`).not.toContain(`${namespace}/old-${index}`);
    }
    const removed = await kubectl(["delete", "havip", "placement-control", "-n", namespace, "--wait=true", "--timeout=60s"]);
    expect(removed.code, removed.stderr).toBe(0);
    // The restored CRD keeps refusing the same spec for a new object.
    const again = await kubectl(["apply", "-f", "-"], manifest("old-again", storedBeforeTheRule[0]?.spec ?? {}));
    expect(again.code).not.toBe(0);
  }, 120_000);
});

