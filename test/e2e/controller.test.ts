// The controller end to end on the test bed: the real API server and kube-controller-manager, the controller as a
// real process (node dist/cli.js controller) holding a ServiceAccount token bound by charts/ha-nginx's RBAC files,
// never system:masters. Agent pods are created by the real DaemonSet controller but not run (see agentImage), so the
// status.nodes entries the conditions and the finalizer read are written by the test itself; only the last test
// switches the controller to an image the test bed runs, to watch it replace real agents.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_REVISION_ANNOTATION } from "../../src/controller/agent-objects.js";
import { passwordAccessName } from "../../src/controller/names.js";
import { kubeconfigForServiceAccount } from "../../testing/testbed/control-plane.js";
import { freePort, havipSystemNamespace as system, installControllerAccess, killControllers, spawnController, type ControllerProcess as Controller } from "../../testing/testbed/controller-process.js";
import { startTestbed, type Testbed } from "../../testing/testbed/testbed.js";
import { waitForValue as waitFor } from "../support/wait-value.js";

const repo = resolve(import.meta.dirname, "../..");
const ns = "default";
const edgeLabel = "ha-nginx.io/edge";
// An image the test bed refuses to run (testing/testbed/stand-in-kubelet/image-commands.ts): the DaemonSet's pods exist but
// no agent runs, so the status.nodes entries this file writes are the only ones. The agent's own e2e tests run the
// real agent with this controller.
const agentImage = "example.invalid/ha-nginx-agent-stub:0";
// The one agent DaemonSet, in the controller's namespace, and the label its pods carry.
const agentSet = "ha-nginx-agent";
const agentPodLabel = "ha-nginx.io/agent=ha-nginx-agent";

interface Json {
  readonly [key: string]: unknown;
}

type Condition = { type: string; status: string; reason: string; message: string; lastTransitionTime: string };
interface Havip {
  metadata: { name: string; finalizers?: string[]; generation?: number; deletionTimestamp?: string };
  status?: { virtualRouterID?: number; master?: string; peers?: string[]; conditions?: Condition[]; observedGeneration?: number; nodes?: Json[] };
}

interface DaemonSetJson {
  metadata: Json & { generation: number; labels?: Record<string, string> };
  spec: {
    updateStrategy: Json;
    template: {
      metadata: { annotations?: Record<string, string> };
      spec: Json & {
        containers: Json[];
        tolerations?: Json[];
        terminationGracePeriodSeconds?: number;
        affinity?: { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: Json[] } } };
      };
    };
  };
}

interface PodJson {
  metadata: { name: string; uid: string; deletionTimestamp?: string; annotations?: Record<string, string> };
  spec: { nodeName?: string; containers: { image?: string }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

/** What the tests read of an agent pod. */
interface AgentPod {
  readonly name: string;
  readonly uid: string;
  readonly node: string;
  readonly image: string;
  readonly revision: string | undefined;
  readonly isReady: boolean;
  readonly isTerminating: boolean;
}

const termsOf = (daemonSet: DaemonSetJson) => daemonSet.spec.template.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
const revisionOf = (daemonSet: DaemonSetJson) => daemonSet.spec.template.metadata.annotations?.[AGENT_REVISION_ANNOTATION];
const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

describe("e2e controller", () => {
  let bed: Testbed | undefined;
  let saKubeconfig = "";
  let agentKubeconfig = "";
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
  const agentDaemonSet = () => getJson<DaemonSetJson>(["get", "daemonset", agentSet, "-n", system]);
  const agentPods = async (): Promise<AgentPod[] | undefined> => {
    const list = await getJson<{ items: PodJson[] }>(["get", "pods", "-n", system, "-l", agentPodLabel]);
    return list?.items.map((pod) => ({
      name: pod.metadata.name,
      uid: pod.metadata.uid,
      node: pod.spec.nodeName ?? "",
      image: pod.spec.containers[0]?.image ?? "",
      revision: pod.metadata.annotations?.[AGENT_REVISION_ANNOTATION],
      isReady: pod.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") === true,
      isTerminating: pod.metadata.deletionTimestamp !== undefined,
    }));
  };
  const liveNodesOf = (pods: readonly AgentPod[]) => pods.filter((pod) => !pod.isTerminating).map((pod) => pod.node).sort();
  const condition = (object: Havip | undefined, type: string) => object?.status?.conditions?.find((item) => item.type === type);
  const apply = async (manifest: string) => {
    const result = await kubectl(["apply", "-f", "-"], manifest);
    expect(result.code, result.stderr).toBe(0);
  };
  const writeEntries = async (name: string, entries: readonly { node: string; state: string }[]) => {
    const nodes = entries.map(({ node, state }) => ({ node, state, healthy: true, priority: 100 }));
    const written = await kubectl(["patch", "havip", name, "-n", ns, "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { nodes } })]);
    expect(written.code, written.stderr).toBe(0);
  };
  const canAgent = async (...args: string[]) => (await bed?.kubectl(["auth", "can-i", ...args], { kubeconfig: agentKubeconfig }))?.stdout.trim();

  async function startController(env: Readonly<Record<string, string>>, extraArgs: readonly string[] = [], image = agentImage): Promise<Controller> {
    const controller = spawnController({ scratch, logName: `controller-${controllers.length}.log`, env, agentImage: image, metricsPort: await freePort(), extraArgs });
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
    agentKubeconfig = await kubeconfigForServiceAccount(bed.cp, system, "ha-nginx-agent");
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

  it("examples/vip.yaml: the one agent DaemonSet appears in ha-nginx-system with the expected spec, VRID and peers in status, finalizer set, nothing per resource", async () => {
    for (const node of ["node-1", "node-2"]) {
      const label = await kubectl(["label", "node", node, `${edgeLabel}=true`, "--overwrite"]);
      expect(label.code, label.stderr).toBe(0);
    }
    const controller = await startController({ KUBECONFIG: saKubeconfig }, ["--leader-elect"]);
    const started = Date.now();
    const example = await kubectl(["apply", "-f", join(repo, "examples/vip.yaml")]);
    expect(example.code, example.stderr).toBe(0);
    const daemonSet = await waitFor("the agent DaemonSet", 60_000, agentDaemonSet);
    measured.applyToDaemonSetMs = Date.now() - started;
    expect(daemonSet.metadata.labels).toMatchObject({ "ha-nginx.io/agent": agentSet, "app.kubernetes.io/name": agentSet, "app.kubernetes.io/managed-by": "ha-nginx-controller" });
    // It serves every resource, so no one resource owns it: the garbage collector must not take it with the first.
    expect(daemonSet.metadata.ownerReferences).toBeUndefined();
    // OnDelete: the controller replaces agents itself, so a placement edit restarts none.
    expect(daemonSet.spec.updateStrategy).toEqual({ type: "OnDelete" });
    expect(revisionOf(daemonSet)).toMatch(/^[0-9a-f]{16}$/);
    expect(daemonSet.spec.template.spec).toMatchObject({
      hostNetwork: true,
      dnsPolicy: "ClusterFirstWithHostNet",
      tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }],
      serviceAccountName: "ha-nginx-agent",
      terminationGracePeriodSeconds: 10,
    });
    expect(daemonSet.spec.template.spec.nodeSelector).toBeUndefined();
    expect(termsOf(daemonSet)).toEqual([{ matchExpressions: [{ key: edgeLabel, operator: "In", values: ["true"] }] }]);
    expect(daemonSet.spec.template.spec.containers[0]).toMatchObject({
      image: agentImage,
      // No resource on the command line: every agent serves whatever is placed on its node, on one port.
      args: ["agent", "--http-port", "9750", "--log-level", "info"],
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
    // Nothing of the agents in the resource's namespace: no DaemonSet, ServiceAccount or RoleBinding of its own.
    const perResource = await kubectl(["get", "daemonset,serviceaccount,rolebinding,role", "-n", ns, "-o", "name"]);
    expect(perResource.code, perResource.stderr).toBe(0);
    expect(perResource.stdout.split("\n").filter((line) => line.includes("ha-nginx"))).toEqual([]);
    // The agents' RBAC, with their ServiceAccount's own token: the chart's ClusterRole, cluster-wide, nothing it does not use.
    expect(await canAgent("watch", "highavailabilityvips.ha-nginx.io", "--all-namespaces")).toBe("yes");
    expect(await canAgent("patch", "highavailabilityvips.ha-nginx.io", "--subresource=status", "-n", ns)).toBe("yes");
    expect(await canAgent("list", "pods", "--all-namespaces")).toBe("yes");
    expect(await canAgent("watch", "nodes")).toBe("yes");
    expect(await canAgent("patch", "highavailabilityvips.ha-nginx.io", "-n", ns)).toBe("no");
    expect(await canAgent("get", "highavailabilityvips.ha-nginx.io", "-n", ns)).toBe("no");
    expect(await canAgent("delete", "pods", "-n", system)).toBe("no");
    // Without authentication an agent may read no Secret at all; the next test covers the password Role.
    expect(await canAgent("get", "secrets", "-n", ns)).toBe("no");
    expect(await canAgent("list", "secrets", "-n", ns)).toBe("no");
    const canController = async (...args: string[]) => (await bed?.kubectl(["auth", "can-i", ...args], { kubeconfig: saKubeconfig }))?.stdout.trim();
    // get, never list: held so that the API server lets it grant the agents get on a password Secret.
    expect(await canController("get", "secrets", "-n", ns)).toBe("yes");
    expect(await canController("list", "secrets", "-n", ns)).toBe("no");
    expect(await canController("bind", "clusterrole/cluster-admin")).toBe("no");
    expect(await canController("create", "serviceaccounts", "-n", ns)).toBe("no");
    // DaemonSets and pods in its own namespace only: it can restart agents, never a user's workload.
    expect(await canController("patch", "daemonsets", "-n", system)).toBe("yes");
    expect(await canController("delete", "pods", "-n", system)).toBe("yes");
    expect(await canController("patch", "daemonsets", "-n", ns)).toBe("no");
    expect(await canController("delete", "pods", "-n", ns)).toBe("no");
    expect(await canController("patch", "leases/ha-nginx-controller", "-n", system)).toBe("yes");
    expect(await canController("patch", "leases/other", "-n", system)).toBe("no");
    const metrics = await fetch(`http://127.0.0.1:${controller.metricsPort}/metrics`).then((response) => response.text());
    expect(metrics).toMatch(/ha_nginx_controller_reconciles_total\{result="success"\} [1-9]/);
    expect(metrics).toContain("ha_nginx_controller_queue_depth");
    expect((await fetch(`http://127.0.0.1:${controller.metricsPort}/readyz`)).status).toBe(200);
  }, 120_000);

  it("a VRRPv2 password: a Role for that one Secret in the resource's namespace, bound to ha-nginx-agent in ha-nginx-system, gone with the resource", async () => {
    await apply(`
apiVersion: v1
kind: Secret
metadata: { name: vrrp-auth, namespace: ${ns} }
stringData: { password: s3cretpw }
---
apiVersion: v1
kind: Secret
metadata: { name: unrelated, namespace: ${ns} }
stringData: { password: elsewhere }
---
apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata: { name: auth, namespace: ${ns} }
spec:
  addresses: [10.77.0.205/24]
  vrrpVersion: 2
  authentication: { passwordSecretRef: { name: vrrp-auth, key: password } }
  nodes: { selector: { matchLabels: { ${edgeLabel}: "true" } } }
`);
    const access = passwordAccessName("auth");
    const role = await waitFor("the password Role", 30_000, () => getJson<{ rules: Json[] }>(["get", "role", access, "-n", ns]));
    expect(role.rules).toEqual([{ apiGroups: [""], resources: ["secrets"], resourceNames: ["vrrp-auth"], verbs: ["get"] }]);
    const binding = await waitFor("the password RoleBinding", 30_000, () => getJson<{ roleRef: Json; subjects: Json[] }>(["get", "rolebinding", access, "-n", ns]));
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: access });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "ha-nginx-agent", namespace: system }]);
    // The API server's RBAC cache follows the binding a moment later.
    await waitFor("the agents to get the password Secret", 30_000, async () => ((await canAgent("get", "secrets/vrrp-auth", "-n", ns)) === "yes" ? true : undefined));
    expect(await canAgent("get", "secrets/unrelated", "-n", ns)).toBe("no");
    expect(await canAgent("list", "secrets", "-n", ns)).toBe("no");

    // No agent runs here, so no status.nodes entry holds the finalizer: it deletes the access and goes at once.
    const removed = await kubectl(["delete", "havip", "auth", "-n", ns, "--wait=true", "--timeout=60s"]);
    expect(removed.code, removed.stderr).toBe(0);
    const left = await kubectl(["get", `role/${access}`, `rolebinding/${access}`, "-n", ns, "--ignore-not-found", "-o", "name"]);
    expect(left.code, left.stderr).toBe(0);
    expect(left.stdout.trim()).toBe("");
    await waitFor("the agents to lose the password Secret", 30_000, async () => ((await canAgent("get", "secrets/vrrp-auth", "-n", ns)) === "no" ? true : undefined));
    const secrets = await kubectl(["delete", "secret", "vrrp-auth", "unrelated", "-n", ns]);
    expect(secrets.code, secrets.stderr).toBe(0);
  }, 120_000);

  it("placement is the union: one node affinity term per distinct selector, none once a resource selects every node, tolerations merged; the agent revision never moves", async () => {
    const before = await waitFor("the agent DaemonSet", 30_000, agentDaemonSet);
    const revision = revisionOf(before);
    const pods = await waitFor("agent pods on node-1 and node-2", 60_000, async () => {
      const current = await agentPods();
      return current !== undefined && liveNodesOf(current).join() === "node-1,node-2" ? current : undefined;
    });
    const edgeTerm = { matchExpressions: [{ key: edgeLabel, operator: "In", values: ["true"] }] };
    const otherTerm = { matchExpressions: [{ key: "ha-nginx.io/other", operator: "In", values: ["true"] }] };
    const edgeToleration = { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" };
    const otherToleration = { key: "dedicated", operator: "Equal", value: "other", effect: "NoSchedule" };
    // The default 1 s interval keeps the 10 s grace: a slower resource would lengthen it, which replaces the agents
    // (unit-tested in test/controller/agent-objects.test.ts).
    await apply(`
apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata: { name: other, namespace: ${ns} }
spec:
  addresses: [10.77.0.230/24]
  nodes:
    selector: { matchLabels: { ha-nginx.io/other: "true" } }
    tolerations: [{ key: dedicated, operator: Equal, value: other, effect: NoSchedule }]
`);
    const union = await waitFor("two node affinity terms", 30_000, async () => {
      const current = await agentDaemonSet();
      return current !== undefined && termsOf(current)?.length === 2 ? current : undefined;
    });
    expect(termsOf(union)).toEqual(expect.arrayContaining([edgeTerm, otherTerm]));
    expect(union.spec.template.spec.tolerations).toHaveLength(2);
    expect(union.spec.template.spec.tolerations).toEqual(expect.arrayContaining([edgeToleration, otherToleration]));
    expect(union.spec.template.spec.terminationGracePeriodSeconds).toBe(10);
    expect(revisionOf(union)).toBe(revision);

    await apply(`
apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata: { name: everywhere, namespace: ${ns} }
spec:
  addresses: [10.77.0.231/24]
`);
    const everywhere = await waitFor("the node affinity to go", 30_000, async () => {
      const current = await agentDaemonSet();
      return current !== undefined && current.spec.template.spec.affinity === undefined ? current : undefined;
    });
    expect(revisionOf(everywhere)).toBe(revision);
    await waitFor("an agent pod on node-3 as well", 60_000, async () => ((await agentPods())?.some((pod) => pod.node === "node-3" && !pod.isTerminating) === true ? true : undefined));

    const removed = await kubectl(["delete", "havip", "everywhere", "other", "-n", ns, "--wait=true", "--timeout=60s"]);
    expect(removed.code, removed.stderr).toBe(0);
    const back = await waitFor("the DaemonSet back to edge's placement", 30_000, async () => {
      const current = await agentDaemonSet();
      return current !== undefined && termsOf(current)?.length === 1 ? current : undefined;
    });
    expect(termsOf(back)).toEqual([edgeTerm]);
    expect(back.spec.template.spec.tolerations).toEqual([edgeToleration]);
    expect(revisionOf(back)).toBe(revision);
    // Placement never restarts an agent: node-1's and node-2's pods are the ones from before, only node-3's went.
    await waitFor("node-3's agent pod to go", 60_000, async () => ((await agentPods())?.some((pod) => pod.node === "node-3") === false ? true : undefined));
    const after = await agentPods();
    expect(after?.filter((pod) => !pod.isTerminating).map((pod) => pod.uid).sort()).toEqual(pods.filter((pod) => !pod.isTerminating).map((pod) => pod.uid).sort());
  }, 180_000);

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

  it("a toleration change updates the DaemonSet's placement but not its agent revision; a priority change does not touch it", async () => {
    const before = await agentDaemonSet();
    const priority = await kubectl(["patch", "havip", "edge", "-n", ns, "--type=merge", "-p", '{"spec":{"nodes":{"priorities":[{"node":"node-1","priority":200}]}}}']);
    expect(priority.code, priority.stderr).toBe(0);
    await waitFor("the priority change to be observed", 30_000, async () => {
      const current = await havip("edge");
      return current?.status?.observedGeneration === current?.metadata.generation ? true : undefined;
    });
    const unchanged = await agentDaemonSet();
    expect(unchanged?.metadata.generation).toBe(before?.metadata.generation);

    const tolerations = await kubectl(["patch", "havip", "edge", "-n", ns, "--type=merge", "-p", '{"spec":{"nodes":{"tolerations":[{"key":"dedicated","operator":"Equal","value":"edge","effect":"NoSchedule"}]}}}']);
    expect(tolerations.code, tolerations.stderr).toBe(0);
    const updated = await waitFor("the DaemonSet to carry the new toleration", 30_000, async () => {
      const current = await agentDaemonSet();
      return current?.spec.template.spec.tolerations?.some((toleration) => toleration.key === "dedicated") === true ? current : undefined;
    });
    expect(updated.spec.template.spec.tolerations).toEqual([{ key: "dedicated", operator: "Equal", value: "edge", effect: "NoSchedule" }]);
    expect(before === undefined ? undefined : revisionOf(before)).toBe(revisionOf(updated));
  }, 90_000);

  it("a node label change adds an agent pod and a peer, and removing it takes them away", async () => {
    if (bed === undefined) throw new Error("no test bed");
    const podNodes = async () => liveNodesOf((await agentPods()) ?? []);
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
      const current = await agentDaemonSet();
      return current?.spec.template.spec.tolerations?.some((toleration) => toleration.key === "after-restart") === true ? true : undefined;
    });
    const metrics = await fetch(`http://127.0.0.1:${leader.metricsPort}/metrics`).then((response) => response.text());
    expect(metrics).toMatch(/ha_nginx_controller_watch_errors_total\{resource="[a-z]+"\} [1-9]/);
    expect(leader.child.exitCode).toBeNull();
  }, 120_000);

  it("delete: the finalizer holds a resource while a node with an agent pod says MASTER or BACKUP, 60 s at most, and the DaemonSet goes with the last resource", async () => {
    // stuck's node-1 entry stays MASTER, as an agent that cannot release would leave it: only the bound lets it go.
    await apply(`
apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata: { name: stuck, namespace: ${ns} }
spec:
  addresses: [10.77.0.240/24]
  nodes: { selector: { matchLabels: { ${edgeLabel}: "true" } } }
`);
    await waitFor("stuck's finalizer and VRID", 30_000, async () => {
      const current = await havip("stuck");
      return current?.metadata.finalizers?.includes("ha-nginx.io/release") === true && current.status?.virtualRouterID !== undefined ? true : undefined;
    });
    await writeEntries("stuck", [{ node: "node-1", state: "MASTER" }]);
    await writeEntries("edge", [{ node: "node-1", state: "MASTER" }, { node: "node-2", state: "BACKUP" }]);
    const deletedAt = Date.now();
    const deleted = await kubectl(["delete", "havip", "edge", "stuck", "-n", ns, "--wait=false"]);
    expect(deleted.code, deleted.stderr).toBe(0);

    // The agents on node-1 and node-2 have not released edge's VIP yet: the finalizer waits for them.
    await sleep(5_000);
    const held = await havip("edge");
    expect(held?.metadata.deletionTimestamp).toBeDefined();
    expect(held?.metadata.finalizers).toContain("ha-nginx.io/release");
    // node-1's agent stops its router and says INIT; node-2's BACKUP still holds the resource.
    await writeEntries("edge", [{ node: "node-1", state: "INIT" }, { node: "node-2", state: "BACKUP" }]);
    await sleep(3_000);
    expect((await havip("edge"))?.metadata.finalizers).toContain("ha-nginx.io/release");
    const releasedAt = Date.now();
    await writeEntries("edge", [{ node: "node-1", state: "INIT" }, { node: "node-2", state: "INIT" }]);
    await waitFor("edge to go once every agent said INIT", 30_000, async () => ((await havip("edge")) === undefined ? true : undefined));
    measured.deleteAfterLastInitMs = Date.now() - releasedAt;
    if (Date.now() - deletedAt < 50_000) expect((await havip("stuck"))?.metadata.finalizers).toContain("ha-nginx.io/release");

    await waitFor("stuck to go after the 60 s bound", 120_000, async () => ((await havip("stuck")) === undefined ? true : undefined), 500);
    measured.stuckDeleteMs = Date.now() - deletedAt;
    // deletionTimestamp has whole seconds, so the bound may end up to a second before 60 s after the request.
    expect(measured.stuckDeleteMs).toBeGreaterThanOrEqual(58_000);
    const events = await getJson<{ items: { type: string; reason: string; note?: string; regarding?: { name?: string } }[] }>(["get", "events.v1.events.k8s.io", "-n", ns]);
    const timedOut = events?.items.filter((event) => event.reason === "ReleaseTimedOut" && event.regarding?.name === "stuck") ?? [];
    expect(timedOut.map((event) => event.type)).toEqual(["Warning"]);
    expect(timedOut[0]?.note).toContain("node-1 (MASTER)");
    expect(events?.items.some((event) => event.reason === "ReleaseTimedOut" && event.regarding?.name === "edge")).toBe(false);

    // No HighAvailabilityVIP left: the controller deletes the agent DaemonSet, and its pods go with it.
    await waitFor("the agent DaemonSet to go with the last resource", 30_000, async () => ((await kubectl(["get", "daemonset", agentSet, "-n", system])).code === 0 ? undefined : true));
    await waitFor("the agent pods to go", 60_000, async () => ((await agentPods())?.length === 0 ? true : undefined));
    const left = await kubectl(["get", "daemonset,serviceaccount,rolebinding,role", "-n", ns, "-o", "name"]);
    expect(left.code, left.stderr).toBe(0);
    expect(left.stdout.split("\n").filter((line) => line.includes("ha-nginx"))).toEqual([]);
    // The chart's own objects stay: the ServiceAccount the agents of the next resource will run as.
    expect((await kubectl(["get", "serviceaccount", "ha-nginx-agent", "-n", system])).code).toBe(0);
  }, 180_000);

  it("a new --agent-image: agents that are not Ready are replaced at once, Ready ones one node at a time; a selector edit afterwards restarts none", async () => {
    if (bed === undefined) throw new Error("no test bed");
    // Real agents serve this resource once the stub pods are gone: a VIP of the lab's own network on eth0.
    const vip = bed.lab.vip(5).address;
    await apply(`
apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata: { name: rollout, namespace: ${ns} }
spec:
  addresses: [${vip}/24]
  interface: eth0
  nodes: { selector: { matchLabels: { ${edgeLabel}: "true" } } }
`);
    const stubs = await waitFor("stub agent pods on node-1 and node-2", 60_000, async () => {
      const current = await agentPods();
      return current !== undefined && liveNodesOf(current).join() === "node-1,node-2" ? current : undefined;
    });
    const stubRevision = revisionOf(await waitFor("the agent DaemonSet", 30_000, agentDaemonSet));

    // The test bed runs any image whose repository ends in ha-nginx as dist/cli.js of this worktree.
    await killControllers(controllers);
    await startController({ KUBECONFIG: saKubeconfig }, [], "ha-nginx:dev");
    const dev = await waitFor("the DaemonSet to carry ha-nginx:dev", 60_000, async () => {
      const current = await agentDaemonSet();
      return current?.spec.template.spec.containers[0]?.image === "ha-nginx:dev" ? current : undefined;
    });
    const devRevision = revisionOf(dev);
    expect(devRevision).not.toBe(stubRevision);
    // The stubs never turn Ready: an outdated agent that serves nothing is replaced at once, so a fixed image
    // replaces a broken one without anyone deleting pods by hand.
    const devPods = await waitFor("Ready ha-nginx:dev agents on node-1 and node-2, replaced by the controller", 120_000, async () => {
      const current = await agentPods();
      const live = current?.filter((pod) => !pod.isTerminating) ?? [];
      return current?.length === 2 && liveNodesOf(live).join() === "node-1,node-2" && live.every((pod) => pod.isReady && pod.revision === devRevision) ? live : undefined;
    });
    expect(devPods.filter((pod) => stubs.some((stub) => stub.uid === pod.uid))).toEqual([]);

    await killControllers(controllers);
    const rolloutStarted = Date.now();
    await startController({ KUBECONFIG: saKubeconfig }, [], "ha-nginx:rollout");
    // Sampled until the rollout ends: at no moment may both edge nodes lack a Ready agent.
    let newRevision: string | undefined;
    let worst = 0;
    const samples: string[] = [];
    const rolled = await waitFor("every agent replaced by a Ready ha-nginx:rollout one", 180_000, async () => {
      newRevision ??= await agentDaemonSet().then((current) => (current?.spec.template.spec.containers[0]?.image === "ha-nginx:rollout" ? revisionOf(current) : undefined));
      const current = (await agentPods()) ?? [];
      const serving = new Set(current.filter((pod) => pod.isReady && !pod.isTerminating).map((pod) => pod.node));
      const down = ["node-1", "node-2"].filter((node) => !serving.has(node));
      worst = Math.max(worst, down.length);
      samples.push(current.map((pod) => `${pod.node}:${pod.image}:${pod.isReady ? "ready" : "unready"}${pod.isTerminating ? ":terminating" : ""}`).join(" "));
      return newRevision !== undefined && current.length === 2 && current.every((pod) => pod.revision === newRevision && pod.isReady && !pod.isTerminating) ? current : undefined;
    }, 200);
    measured.rolloutMs = Date.now() - rolloutStarted;
    // Soft: the rest of the test still shows what the rollout did to the agents and to the finalizer.
    expect.soft(worst, `both edge nodes without a Ready agent at once:\n${samples.join("\n")}`).toBeLessThanOrEqual(1);
    expect(newRevision).not.toBe(devRevision);
    expect(liveNodesOf(rolled)).toEqual(["node-1", "node-2"]);
    expect(rolled.map((pod) => pod.image)).toEqual(["ha-nginx:rollout", "ha-nginx:rollout"]);
    // Replaced by the controller, not by the test: no pod of before is left.
    expect(rolled.filter((pod) => devPods.some((old) => old.uid === pod.uid))).toEqual([]);

    // Same nodes, another selector: placement changes, what the agents run does not, so every agent stays.
    const edited = await kubectl(["patch", "havip", "rollout", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { nodes: { selector: { matchLabels: null, matchExpressions: [{ key: edgeLabel, operator: "Exists" }] } } } })]);
    expect(edited.code, edited.stderr).toBe(0);
    const placed = await waitFor("the DaemonSet to take the new selector", 30_000, async () => {
      const current = await agentDaemonSet();
      return current !== undefined && JSON.stringify(termsOf(current)).includes('"Exists"') ? current : undefined;
    });
    expect(termsOf(placed)).toEqual([{ matchExpressions: [{ key: edgeLabel, operator: "Exists" }] }]);
    expect(revisionOf(placed)).toBe(newRevision);
    for (let second = 0; second < 10; second += 1) {
      const current = (await agentPods()) ?? [];
      expect(current.map((pod) => `${pod.uid}${pod.isTerminating ? " terminating" : ""}`).sort()).toEqual(rolled.map((pod) => pod.uid).sort());
      await sleep(1_000);
    }

    // Real agents release the VIP and say INIT, so the finalizer goes without the 60 s bound.
    const removedAt = Date.now();
    const removed = await kubectl(["delete", "havip", "rollout", "-n", ns, "--wait=true", "--timeout=90s"]);
    expect(removed.code, removed.stderr).toBe(0);
    measured.deleteWithRealAgentsMs = Date.now() - removedAt;
    expect(measured.deleteWithRealAgentsMs).toBeLessThan(55_000);
    await waitFor("the agent DaemonSet to go with the last resource", 30_000, async () => ((await kubectl(["get", "daemonset", agentSet, "-n", system])).code === 0 ? undefined : true));
  }, 420_000);
});

// The controller's identity is "<hostname>-<pid>".
function leaseHolderOf(identity: string): number | undefined {
  const pid = Number(identity.split("-").pop());
  return Number.isInteger(pid) ? pid : undefined;
}
