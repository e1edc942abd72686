// The controller end to end on the test bed: the real API server and kube-controller-manager, the controller as a
// real process (node dist/cli.js controller) holding a ServiceAccount token bound by charts/ha-nginx's RBAC files,
// never system:masters. Agent pods are created by the real DaemonSet controller but not run (see agentImage), so the
// status.nodes entries the conditions are computed from are written by the test itself.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubeconfigForServiceAccount } from "../../src/testbed/control-plane.js";
import { freePort, havipSystemNamespace as system, installControllerAccess, killControllers, spawnController, type ControllerProcess as Controller } from "../../src/testbed/controller-process.js";
import { startTestbed, type Testbed } from "../../src/testbed/testbed.js";
import { waitForValue as waitFor } from "../support/wait-value.js";

const repo = resolve(import.meta.dirname, "../..");
const ns = "default";
const edgeLabel = "ha-nginx.io/edge";
// An image the test bed refuses to run (src/testbed/node-runner.ts imageKind): the DaemonSet's pods exist but
// no agent runs, so the status.nodes entries this file writes are the only ones. The agent's own e2e tests run the
// real agent with this controller.
const agentImage = "example.invalid/ha-nginx-agent-stub:0";

interface Json {
  readonly [key: string]: unknown;
}

type Condition = { type: string; status: string; reason: string; message: string; lastTransitionTime: string };
interface Havip {
  metadata: { name: string; finalizers?: string[]; generation?: number };
  status?: { virtualRouterID?: number; master?: string; peers?: string[]; conditions?: Condition[]; observedGeneration?: number; nodes?: Json[] };
}

describe("e2e controller", () => {
  let bed: Testbed | undefined;
  let saKubeconfig = "";
  const controllers: Controller[] = [];
  const scratch = mkdtempSync(join(tmpdir(), "ha-nginx-controller-e2e-"));
  const measured: Record<string, number> = {};

  const kubectl = async (args: readonly string[], input?: string) => {
    if (bed === undefined) throw new Error("no test bed");
    return bed.kubectl(args, input === undefined ? undefined : { input });
  };
  const getJson = async <T>(args: readonly string[]): Promise<T | undefined> => {
    const result = await kubectl([...args, "-o", "json"]);
    return result.code === 0 ? (JSON.parse(result.stdout) as T) : undefined;
  };
  const havip = (name: string) => getJson<Havip>(["get", "havip", name, "-n", ns]);
  const condition = (object: Havip | undefined, type: string) => object?.status?.conditions?.find((item) => item.type === type);
  const apply = async (manifest: string) => {
    const result = await kubectl(["apply", "-f", "-"], manifest);
    expect(result.code, result.stderr).toBe(0);
  };

  async function startController(env: Readonly<Record<string, string>>, extraArgs: readonly string[] = []): Promise<Controller> {
    const controller = spawnController({ scratch, logName: `controller-${controllers.length}.log`, env, agentImage, metricsPort: await freePort(), extraArgs });
    controllers.push(controller);
    return controller;
  }

  async function runToExit(env: Readonly<Record<string, string>>): Promise<{ code: number | null; output: string }> {
    const controller = await startController(env);
    const code = await Promise.race([controller.exited, new Promise<null>((resolveTimeout) => setTimeout(() => resolveTimeout(null), 30_000))]);
    if (code === null) controller.child.kill("SIGKILL");
    await new Promise((resolveFlush) => setTimeout(resolveFlush, 100));
    return { code, output: readFileSync(controller.logFile, "utf8") };
  }

  beforeAll(async () => {
    if (!existsSync(join(repo, "dist/controller/main.js"))) throw new Error("dist/ lacks the controller; run `npm run build` first");
    bed = await startTestbed({ nodes: 3 });
    // The CRD is left out: the first test starts the controller without it.
    saKubeconfig = await installControllerAccess(bed, { shouldInstallCrd: false });
  }, 240_000);

  afterAll(async () => {
    await killControllers(controllers);
    await bed?.stop();
    rmSync(scratch, { recursive: true, force: true });
    process.stdout.write(`[controller e2e] measurements: ${JSON.stringify(measured)}\n`);
  }, 120_000);

  it("startup: no kubeconfig, then CRD missing, then RBAC denied, each in one sentence that says what to do", async () => {
    const none = await runToExit({ KUBECONFIG: "" });
    expect(none.code).toBe(2);
    expect(none.output).toContain("no kubeconfig");

    const noCrd = await runToExit({ KUBECONFIG: saKubeconfig });
    expect(noCrd.code).toBe(2);
    expect(noCrd.output).toContain("install the CRD: kubectl apply -f crds/");

    const crd = await kubectl(["apply", "--server-side", "-f", join(repo, "crds/ha-nginx.io_highavailabilityvips.yaml")]);
    expect(crd.code, crd.stderr).toBe(0);
    const established = await kubectl(["wait", "--for=condition=Established", "crd/highavailabilityvips.ha-nginx.io", "--timeout=60s"]);
    expect(established.code, established.stderr).toBe(0);

    const created = await kubectl(["create", "serviceaccount", "nobody", "-n", system]);
    expect(created.code, created.stderr).toBe(0);
    if (bed === undefined) throw new Error("no test bed");
    const nobody = await kubeconfigForServiceAccount(bed.cp, system, "nobody");
    const denied = await runToExit({ KUBECONFIG: nobody });
    expect(denied.code).toBe(2);
    expect(denied.output).toContain("RBAC denies the controller");
    expect(denied.output).toContain("list highavailabilityvips (ha-nginx.io) cluster-wide");
  }, 120_000);

  it("examples/vip.yaml: the DaemonSet appears with the expected spec, VRID and peers in status, finalizer set", async () => {
    for (const node of ["node-1", "node-2"]) {
      const label = await kubectl(["label", "node", node, `${edgeLabel}=true`, "--overwrite"]);
      expect(label.code, label.stderr).toBe(0);
    }
    const controller = await startController({ KUBECONFIG: saKubeconfig }, ["--leader-elect"]);
    const started = Date.now();
    const example = await kubectl(["apply", "-f", join(repo, "examples/vip.yaml")]);
    expect(example.code, example.stderr).toBe(0);
    const daemonSet = await waitFor("the agent DaemonSet", 60_000, () =>
      getJson<{ metadata: Json; spec: { template: { spec: Json & { containers: Json[] } }; updateStrategy: Json } }>(["get", "daemonset", "ha-nginx-agent-edge", "-n", ns]),
    );
    measured.applyToDaemonSetMs = Date.now() - started;
    expect(daemonSet.metadata.ownerReferences).toMatchObject([{ kind: "HighAvailabilityVIP", name: "edge", controller: true }]);
    expect(daemonSet.spec.updateStrategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
    expect(daemonSet.spec.template.spec).toMatchObject({
      hostNetwork: true,
      dnsPolicy: "ClusterFirstWithHostNet",
      nodeSelector: { [edgeLabel]: "true" },
      tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }],
      serviceAccountName: "ha-nginx-agent-edge",
    });
    expect(daemonSet.spec.template.spec.containers[0]).toMatchObject({
      image: agentImage,
      args: ["agent", "--namespace", ns, "--name", "edge", "--http-port", "9851", "--log-level", "info"],
      securityContext: { capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] }, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
    });
    const edge = await waitFor("status with VRID and peers", 30_000, async () => {
      const current = await havip("edge");
      return current?.status?.peers?.length === 2 ? current : undefined;
    });
    if (bed === undefined) throw new Error("no test bed");
    expect(edge.status?.virtualRouterID).toBe(51);
    expect(edge.status?.peers).toEqual([bed.hostOf("node-1").address, bed.hostOf("node-2").address].sort());
    expect(edge.metadata.finalizers).toContain("ha-nginx.io/release");
    expect(condition(edge, "Invalid")).toMatchObject({ status: "False", reason: "SpecValid" });
    expect(condition(edge, "Conflict")).toMatchObject({ status: "False" });
    expect(edge.status?.observedGeneration).toBe(edge.metadata.generation);
    const binding = await getJson<{ roleRef: Json }>(["get", "rolebinding", "ha-nginx-agent-edge", "-n", ns]);
    expect(binding?.roleRef).toMatchObject({ kind: "ClusterRole", name: "ha-nginx-agent" });
    // The agent's RBAC, with the agent's own ServiceAccount token: its namespace only, nothing it does not use.
    const agentKubeconfig = await kubeconfigForServiceAccount(bed.cp, ns, "ha-nginx-agent-edge");
    const canAgent = async (...args: string[]) => (await bed?.kubectl(["auth", "can-i", ...args], { kubeconfig: agentKubeconfig }))?.stdout.trim();
    expect(await canAgent("watch", "highavailabilityvips.ha-nginx.io", "-n", ns)).toBe("yes");
    expect(await canAgent("patch", "highavailabilityvips.ha-nginx.io", "--subresource=status", "-n", ns)).toBe("yes");
    expect(await canAgent("list", "pods", "-n", ns)).toBe("yes");
    expect(await canAgent("patch", "highavailabilityvips.ha-nginx.io", "-n", ns)).toBe("no");
    expect(await canAgent("get", "highavailabilityvips.ha-nginx.io", "-n", system)).toBe("no");
    // Without authentication an agent may read no Secret at all; least-privilege.test.ts covers the password Role.
    expect(await canAgent("get", "secrets", "-n", ns)).toBe("no");
    expect(await canAgent("list", "secrets", "-n", ns)).toBe("no");
    const canController = async (...args: string[]) => (await bed?.kubectl(["auth", "can-i", ...args], { kubeconfig: saKubeconfig }))?.stdout.trim();
    // get, never list: held so that the API server lets it grant an agent get on that agent's password Secret.
    expect(await canController("get", "secrets", "-n", ns)).toBe("yes");
    expect(await canController("list", "secrets", "-n", ns)).toBe("no");
    expect(await canController("bind", "clusterrole/cluster-admin")).toBe("no");
    expect(await canController("patch", "leases/ha-nginx-controller", "-n", system)).toBe("yes");
    expect(await canController("patch", "leases/other", "-n", system)).toBe("no");
    const metrics = await fetch(`http://127.0.0.1:${controller.metricsPort}/metrics`).then((response) => response.text());
    expect(metrics).toMatch(/ha_nginx_controller_reconciles_total\{result="success"\} [1-9]/);
    expect(metrics).toContain("ha_nginx_controller_queue_depth");
    expect((await fetch(`http://127.0.0.1:${controller.metricsPort}/readyz`)).status).toBe(200);
  }, 120_000);

  it("an invalid resource is rejected by the API server with a message naming the field", async () => {
    const result = await kubectl(["apply", "-f", "-"], `
apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata: { name: bad, namespace: ${ns} }
spec:
  addresses: [10.77.0.210/24]
  vrrpVersion: 2
  advertisementInterval: 500ms
`);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("spec.advertisementInterval");
  }, 30_000);

  it("allocation and conflict between resources: highest free VRIDs, then Conflict on both sides naming the other", async () => {
    const manifest = (name: string, address: string, vrid?: number) => `
apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata: { name: ${name}, namespace: ${ns} }
spec:
  addresses: [${address}]
${vrid === undefined ? "" : `  virtualRouterID: ${vrid}\n`}  nodes: { selector: { matchLabels: { ${edgeLabel}: "true" } } }
`;
    await apply(manifest("alloc-a", "10.77.0.201/24"));
    const a = await waitFor("alloc-a's VRID", 30_000, async () => (await havip("alloc-a"))?.status?.virtualRouterID);
    await apply(manifest("alloc-b", "10.77.0.202/24"));
    const b = await waitFor("alloc-b's VRID", 30_000, async () => (await havip("alloc-b"))?.status?.virtualRouterID);
    expect([a, b]).toEqual([255, 254]);

    await apply(manifest("rival", "10.77.0.203/24", 51));
    const rival = await waitFor("rival's Conflict", 30_000, async () => {
      const current = await havip("rival");
      return condition(current, "Conflict")?.status === "True" ? current : undefined;
    });
    expect(condition(rival, "Conflict")).toMatchObject({ reason: "VirtualRouterIDInUse" });
    expect(condition(rival, "Conflict")?.message).toContain("default/edge");
    const edge = await waitFor("edge's Conflict", 30_000, async () => {
      const current = await havip("edge");
      return condition(current, "Conflict")?.status === "True" ? current : undefined;
    });
    expect(condition(edge, "Conflict")?.message).toContain("default/rival");
    const rivalSet = await kubectl(["get", "daemonset", "ha-nginx-agent-rival", "-n", ns]);
    expect(rivalSet.code).not.toBe(0);

    await apply(manifest("thief", "10.77.0.201/32", 60));
    const thief = await waitFor("thief's AddressInUse", 30_000, async () => {
      const current = await havip("thief");
      return condition(current, "Conflict")?.reason === "AddressInUse" ? current : undefined;
    });
    expect(condition(thief, "Conflict")?.message).toContain("default/alloc-a");

    const removed = await kubectl(["delete", "havip", "rival", "thief", "alloc-a", "alloc-b", "-n", ns, "--wait=true", "--timeout=90s"]);
    expect(removed.code, removed.stderr).toBe(0);
    await waitFor("edge's Conflict to clear", 30_000, async () => (condition(await havip("edge"), "Conflict")?.status === "False" ? true : undefined));
  }, 180_000);

  it("a spec change updates the DaemonSet; a priority change does not touch it", async () => {
    const before = await getJson<{ metadata: { generation: number } }>(["get", "daemonset", "ha-nginx-agent-edge", "-n", ns]);
    const priority = await kubectl(["patch", "havip", "edge", "-n", ns, "--type=merge", "-p", '{"spec":{"nodes":{"priorities":[{"node":"node-1","priority":200}]}}}']);
    expect(priority.code, priority.stderr).toBe(0);
    await waitFor("the priority change to be observed", 30_000, async () => {
      const current = await havip("edge");
      return current?.status?.observedGeneration === current?.metadata.generation ? true : undefined;
    });
    const unchanged = await getJson<{ metadata: { generation: number } }>(["get", "daemonset", "ha-nginx-agent-edge", "-n", ns]);
    expect(unchanged?.metadata.generation).toBe(before?.metadata.generation);

    const tolerations = await kubectl(["patch", "havip", "edge", "-n", ns, "--type=merge", "-p", '{"spec":{"nodes":{"tolerations":[{"key":"dedicated","operator":"Equal","value":"edge","effect":"NoSchedule"}]}}}']);
    expect(tolerations.code, tolerations.stderr).toBe(0);
    const updated = await waitFor("the DaemonSet to carry the new toleration", 30_000, async () => {
      const current = await getJson<{ spec: { template: { spec: { tolerations?: Json[] } } } }>(["get", "daemonset", "ha-nginx-agent-edge", "-n", ns]);
      return current?.spec.template.spec.tolerations?.some((toleration) => toleration.key === "dedicated") === true ? current : undefined;
    });
    expect(updated.spec.template.spec.tolerations).toEqual([{ key: "dedicated", operator: "Equal", value: "edge", effect: "NoSchedule" }]);
  }, 90_000);

  it("a node label change adds an agent pod and a peer, and removing it takes them away", async () => {
    if (bed === undefined) throw new Error("no test bed");
    const podNodes = async () => {
      const pods = await getJson<{ items: { spec: { nodeName?: string }; metadata: { deletionTimestamp?: string } }[] }>(["get", "pods", "-n", ns, "-l", "ha-nginx.io/agent=ha-nginx-agent-edge"]);
      return (pods?.items ?? []).filter((pod) => pod.metadata.deletionTimestamp === undefined).map((pod) => pod.spec.nodeName ?? "").sort();
    };
    await waitFor("agent pods on node-1 and node-2", 60_000, async () => ((await podNodes()).join() === "node-1,node-2" ? true : undefined));
    const node3 = bed.hostOf("node-3").address;
    const labelled = await kubectl(["label", "node", "node-3", `${edgeLabel}=true`]);
    expect(labelled.code, labelled.stderr).toBe(0);
    await waitFor("an agent pod on node-3", 60_000, async () => ((await podNodes()).includes("node-3") ? true : undefined));
    await waitFor("node-3 among the peers", 30_000, async () => ((await havip("edge"))?.status?.peers?.includes(node3) === true ? true : undefined));
    const unlabelled = await kubectl(["label", "node", "node-3", `${edgeLabel}-`]);
    expect(unlabelled.code, unlabelled.stderr).toBe(0);
    await waitFor("node-3's agent pod to go", 60_000, async () => ((await podNodes()).includes("node-3") ? undefined : true));
    await waitFor("node-3 to leave the peers", 30_000, async () => ((await havip("edge"))?.status?.peers?.includes(node3) === false ? true : undefined));
  }, 180_000);

  it("conditions and kubectl get havip columns follow the status.nodes entries agents write", async () => {
    const entries = (node1: string, node2: string) => JSON.stringify({
      status: { nodes: [{ node: "node-1", state: node1, healthy: true, priority: 200 }, { node: "node-2", state: node2, healthy: true, priority: 120 }] },
    });
    const written = await kubectl(["patch", "havip", "edge", "-n", ns, "--subresource=status", "--type=merge", "-p", entries("MASTER", "BACKUP")]);
    expect(written.code, written.stderr).toBe(0);
    let last: Havip | undefined;
    const ready = await waitFor("Ready=True with node-1 as master", 30_000, async () => {
      last = await havip("edge");
      return last?.status?.master === "node-1" && condition(last, "Ready")?.status === "True" ? last : undefined;
    }).catch((error: unknown) => {
      throw new Error(`${String(error)}; last status: ${JSON.stringify(last?.status)}; controller log: ${readFileSync(controllers.at(-1)?.logFile ?? "", "utf8").slice(-3000)}`);
    });
    expect(condition(ready, "Degraded")).toMatchObject({ status: "False", reason: "AllNodesHealthy" });
    const table = await kubectl(["get", "havip", "-n", ns]);
    const [header, row] = table.stdout.trim().split("\n").map((line) => line.trim().split(/\s+/));
    expect(header).toEqual(["NAME", "VIP", "MASTER", "READY", "AGE"]);
    expect(row?.slice(0, 4)).toEqual(["edge", "10.77.0.200/24", "node-1", "True"]);
    const wide = await kubectl(["get", "havip", "-n", ns, "-o", "wide"]);
    const [wideHeader, wideRow] = wide.stdout.trim().split("\n").map((line) => line.trim().split(/\s+/));
    expect(wideHeader).toEqual(["NAME", "VIP", "MASTER", "READY", "AGE", "VRID", "HEALTHY", "TRANSPORT"]);
    expect(wideRow?.[5]).toBe(String(ready.status?.virtualRouterID));
    expect(wideRow?.[6]).toMatch(/^[0-3]$/);
    expect(wideRow?.[7]).toMatch(/^(Multicast|Unicast)$/);

    const split = await kubectl(["patch", "havip", "edge", "-n", ns, "--subresource=status", "--type=merge", "-p", entries("MASTER", "MASTER")]);
    expect(split.code, split.stderr).toBe(0);
    const broken = await waitFor("SplitBrain=True", 30_000, async () => {
      const current = await havip("edge");
      return condition(current, "SplitBrain")?.status === "True" ? current : undefined;
    });
    expect(broken.status?.master).toBe("");
    expect(condition(broken, "Ready")).toMatchObject({ status: "False", reason: "MultipleMasters" });
    const events = await getJson<{ items: { reason: string; regarding?: { kind?: string; name?: string } }[] }>(["get", "events.v1.events.k8s.io", "-n", ns]);
    const onEdge = events?.items.filter((event) => event.regarding?.kind === "HighAvailabilityVIP" && event.regarding.name === "edge") ?? [];
    const reasons = new Set(onEdge.map((event) => event.reason));
    expect(reasons.has("MasterChanged")).toBe(true);
    expect(reasons.has("MultipleMasters")).toBe(true);
  }, 90_000);

  it("leader failover: a second replica takes over within 15 s of the leader being killed", async () => {
    const leaseHolder = async () => (await getJson<{ spec: { holderIdentity?: string } }>(["get", "lease", "ha-nginx-controller", "-n", system]))?.spec.holderIdentity ?? "";
    const first = controllers.at(-1);
    if (first === undefined) throw new Error("no running controller");
    const holder = await waitFor("a lease holder", 30_000, async () => ((await leaseHolder()) === "" ? undefined : leaseHolderOf(await leaseHolder())));
    expect(holder).toBe(first.child.pid);
    const second = await startController({ KUBECONFIG: saKubeconfig }, ["--leader-elect"]);
    await waitFor("the standby to sync its caches", 30_000, async () => ((await fetch(`http://127.0.0.1:${second.metricsPort}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined));
    const killedAt = Date.now();
    first.child.kill("SIGKILL");
    await first.exited;
    await waitFor("the standby to take the lease", 20_000, async () => (leaseHolderOf(await leaseHolder()) === second.child.pid ? true : undefined));
    const takeoverMs = Date.now() - killedAt;
    measured.leaderTakeoverMs = takeoverMs;
    expect(takeoverMs).toBeLessThan(15_000);
    await apply(`
apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata: { name: after-failover, namespace: ${ns} }
spec:
  addresses: [10.77.0.220/24]
  nodes: { selector: { matchLabels: { ${edgeLabel}: "true" } } }
`);
    await waitFor("the new leader to reconcile a new resource", 30_000, async () => ((await havip("after-failover"))?.status?.virtualRouterID === undefined ? undefined : true));
    const removed = await kubectl(["delete", "havip", "after-failover", "-n", ns, "--wait=true", "--timeout=90s"]);
    expect(removed.code, removed.stderr).toBe(0);
  }, 120_000);

  it("the controller outlives an API server restart: watches restart and the next spec change still lands", async () => {
    if (bed === undefined) throw new Error("no test bed");
    const leader = controllers.at(-1);
    if (leader === undefined) throw new Error("no running controller");
    await bed.cp.stopApiServer();
    await new Promise((resolveWait) => setTimeout(resolveWait, 3_000));
    await bed.cp.startApiServer();
    expect(leader.child.exitCode).toBeNull();
    const patch = await kubectl(["patch", "havip", "edge", "-n", ns, "--type=merge", "-p", '{"spec":{"nodes":{"tolerations":[{"key":"after-restart","operator":"Exists"}]}}}']);
    expect(patch.code, patch.stderr).toBe(0);
    await waitFor("the DaemonSet to follow a spec change made after the restart", 60_000, async () => {
      const current = await getJson<{ spec: { template: { spec: { tolerations?: Json[] } } } }>(["get", "daemonset", "ha-nginx-agent-edge", "-n", ns]);
      return current?.spec.template.spec.tolerations?.some((toleration) => toleration.key === "after-restart") === true ? true : undefined;
    });
    const metrics = await fetch(`http://127.0.0.1:${leader.metricsPort}/metrics`).then((response) => response.text());
    expect(metrics).toMatch(/ha_nginx_controller_watch_errors_total\{resource="[a-z]+"\} [1-9]/);
    expect(leader.child.exitCode).toBeNull();
  }, 120_000);

  it("delete: the finalizer deletes the DaemonSet, waits for the agent pods, and leaves nothing behind", async () => {
    const started = Date.now();
    const removed = await kubectl(["delete", "havip", "edge", "-n", ns, "--wait=true", "--timeout=90s"]);
    expect(removed.code, removed.stderr).toBe(0);
    measured.deleteMs = Date.now() - started;
    const left = await kubectl(["get", "daemonset,pods,serviceaccount,rolebinding", "-n", ns, "-l", "ha-nginx.io/agent=ha-nginx-agent-edge", "-o", "name"]);
    expect(left.code, left.stderr).toBe(0);
    // ServiceAccount and RoleBinding go through the garbage collector; the DaemonSet and pods were waited for.
    expect(left.stdout.split("\n").filter((line) => line.startsWith("daemonset") || line.startsWith("pod"))).toEqual([]);
    await waitFor("the garbage collector to remove the agent ServiceAccount and RoleBinding", 60_000, async () => {
      const rest = await kubectl(["get", "serviceaccount,rolebinding", "-n", ns, "-l", "ha-nginx.io/agent=ha-nginx-agent-edge", "-o", "name"]);
      return rest.code === 0 && rest.stdout.trim() === "" ? true : undefined;
    });
  }, 120_000);
});

// The controller's identity is "<hostname>-<pid>".
function leaseHolderOf(identity: string): number | undefined {
  const pid = Number(identity.split("-").pop());
  return Number.isInteger(pid) ? pid : undefined;
}
