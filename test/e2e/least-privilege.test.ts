// Least privilege on the test bed, with real ServiceAccount tokens against the real API server: the controller and the
// agents may do exactly what the chart and the controller grant them, and representative other things are denied. The
// agents run as the chart's one ServiceAccount ha-nginx-agent in the controller's namespace, bound cluster-wide to the
// ClusterRole ha-nginx-agent; the only Secret they may read is the password one resource names, through the Role and
// RoleBinding the controller writes for that resource. The containers carry the securityContext the API server holds
// for them; and with a VRRPv2 password the agents still elect a master while the password shows up in no log, Event,
// status or workload object.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION } from "../../src/api/v1alpha1/index.js";
import { AGENT_LABEL, AGENT_NAME } from "../../src/controller/agent-objects.js";
import { passwordAccessName } from "../../src/controller/names.js";
import { waitFor } from "../../testing/lab/wait.js";
import { locateBinaries } from "../../testing/testbed/binaries.js";
import { kubeconfigForServiceAccount } from "../../testing/testbed/control-plane.js";
import { haVipManifest, havipName, havipNamespace, havipSystemNamespace, startHaVipBed, type HaVipBed } from "../../testing/testbed/havip-bed.js";

const repo = resolve(import.meta.dirname, "../..");
const edge = havipNamespace;
const system = havipSystemNamespace;
// The chart's agent ServiceAccount (charts/ha-nginx/templates/rbac-agent.yaml), which is also the DaemonSet's name.
const agentAccount = AGENT_NAME;
const passwordSecret = "web-vip-password";
// Twelve bytes, of which RFC 3768 sends the first eight (keepalived's auth_pass rule); unlikely to occur by chance
// in a log or an object, whole or cut.
const password = "Qz7wX2pKr9Lm";
const sentPassword = password.slice(0, 8);
const passwordBase64 = Buffer.from(password).toString("base64");

const secretsManifest = `
apiVersion: v1
kind: Secret
metadata: { name: ${passwordSecret}, namespace: ${edge} }
stringData: { password: ${password} }
---
apiVersion: v1
kind: Secret
metadata: { name: unrelated, namespace: ${edge} }
stringData: { token: not-for-agents }
---
apiVersion: v1
kind: Secret
metadata: { name: ${passwordSecret}, namespace: ${system} }
stringData: { password: elsewhere }
`;

const authentication = `  vrrpVersion: 2
  authentication:
    passwordSecretRef: { name: ${passwordSecret}, key: password }
`;

function withPassword(vip: string): string {
  const manifest = haVipManifest(vip);
  if (!manifest.includes("  interface: eth0\n")) throw new Error("haVipManifest changed shape: no interface line to anchor on");
  return manifest.replace("  interface: eth0\n", `  interface: eth0\n${authentication}`);
}

type Json = Record<string, unknown>;

/** `kubectl auth can-i --list` as resource|name|verb and url|verb strings, one per allowed action. */
function parseCanIList(table: string): Set<string> {
  const allowed = new Set<string>();
  for (const line of table.split("\n").slice(1)) {
    const row = /^(\S+)?\s+\[([^\]]*)\]\s+\[([^\]]*)\]\s+\[([^\]]*)\]\s*$/.exec(line);
    if (row === null) continue;
    const [, resource, urls = "", names = "", verbs = ""] = row;
    const split = (text: string) => text.split(" ").filter((word) => word !== "");
    for (const verb of split(verbs)) {
      if (resource === undefined) for (const url of split(urls)) allowed.add(`url ${url}|${verb}`);
      else for (const name of split(names).length === 0 ? [""] : split(names)) allowed.add(`${resource}|${name}|${verb}`);
    }
  }
  return allowed;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    const stat = statSync(path);
    if (stat.isDirectory()) return filesUnder(path);
    return stat.isFile() ? [path] : [];
  });
}

describe("e2e: least privilege", () => {
  let havipBed: HaVipBed | undefined;
  let controllerKubeconfig = "";
  let agentKubeconfig = "";
  const helmHome = mkdtempSync(join(tmpdir(), "ha-nginx-least-privilege-"));
  const measured: Record<string, number> = {};

  const bed = (): HaVipBed => {
    if (havipBed === undefined) throw new Error("no test bed");
    return havipBed;
  };
  const kubectl = async (args: readonly string[], options: { kubeconfig?: string; input?: string } = {}) => bed().testbed.kubectl(args, options);
  const getJson = async (args: readonly string[]): Promise<Json> => {
    const result = await kubectl([...args, "-o", "json"]);
    if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
    return JSON.parse(result.stdout) as Json;
  };
  const isGone = async (args: readonly string[]): Promise<boolean> => {
    const result = await kubectl(["get", ...args]);
    if (result.code === 0) return false;
    if (!result.stderr.includes("NotFound")) throw new Error(`kubectl get ${args.join(" ")}: ${result.stderr}`);
    return true;
  };
  const canI = async (kubeconfig: string, ...args: string[]): Promise<string> => (await kubectl(["auth", "can-i", ...args], { kubeconfig })).stdout.trim();
  /** What `kubeconfig` may do in `namespace` beyond what a ServiceAccount with no binding at all may do there. */
  const grantedIn = async (kubeconfig: string, namespace: string): Promise<string[]> => {
    const list = async (config: string): Promise<Set<string>> => {
      const result = await kubectl(["auth", "can-i", "--list", "-n", namespace], { kubeconfig: config });
      if (result.code !== 0) throw new Error(`auth can-i --list: ${result.stderr}`);
      return parseCanIList(result.stdout);
    };
    const baseline = await list(await kubeconfigForServiceAccount(bed().testbed.cp, namespace, "default"));
    return [...(await list(kubeconfig))].filter((action) => !baseline.has(action)).sort();
  };

  beforeAll(async () => {
    const startedAt = Date.now();
    havipBed = await startHaVipBed({ havipManifest: withPassword, extraManifest: secretsManifest });
    controllerKubeconfig = await kubeconfigForServiceAccount(bed().testbed.cp, system, "ha-nginx-controller");
    agentKubeconfig = await kubeconfigForServiceAccount(bed().testbed.cp, system, agentAccount);
    measured.bedUpMs = Date.now() - startedAt;
  });

  afterAll(async () => {
    await havipBed?.stop();
    rmSync(helmHome, { recursive: true, force: true });
    console.log(`least-privilege measurements: ${JSON.stringify(measured)}`);
  });

  it("with a VRRPv2 password the agents, as the chart's ServiceAccount, elect one MASTER, having read it through a Role for that one Secret", async () => {
    const { master } = await bed().settled();
    measured.applyToSettledMs = Date.now() - bed().appliedAt;
    expect(bed().testbed.nodeNames).toContain(master);
    const daemonSet = await getJson(["get", "daemonset", AGENT_NAME, "-n", system]);
    expect((daemonSet.spec as { template: { spec: Json } }).template.spec.serviceAccountName).toBe(agentAccount);
    const role = await getJson(["get", "role", passwordAccessName(havipName), "-n", edge]);
    expect(role.rules).toEqual([{ apiGroups: [""], resources: ["secrets"], resourceNames: [passwordSecret], verbs: ["get"] }]);
    const binding = await getJson(["get", "rolebinding", passwordAccessName(havipName), "-n", edge]);
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: passwordAccessName(havipName) });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: agentAccount, namespace: system }]);
  });

  it("an agent's token may do exactly the ClusterRole's set in every namespace, get only the Secret a resource names, and is denied the rest", async () => {
    // One agent per node serves every resource in every namespace, so the ClusterRole's rights hold everywhere.
    const clusterWide = [
      "events||create",
      "highavailabilityvips.ha-nginx.io/status||patch",
      "highavailabilityvips.ha-nginx.io||list",
      "highavailabilityvips.ha-nginx.io||watch",
      "nodes||list",
      "nodes||watch",
      "pods||list",
      "pods||watch",
    ];
    expect(await grantedIn(agentKubeconfig, edge)).toEqual([...clusterWide, `secrets|${passwordSecret}|get`].sort());
    // Its own namespace holds a Secret of the same name, which no resource there names: not readable.
    expect(await grantedIn(agentKubeconfig, system)).toEqual(clusterWide);
    expect(await grantedIn(agentKubeconfig, "default")).toEqual(clusterWide);
    const denied: readonly (readonly string[])[] = [
      ["get", "secrets/unrelated", "-n", edge],
      ["list", "secrets", "-n", edge],
      ["watch", `secrets/${passwordSecret}`, "-n", edge],
      ["get", `secrets/${passwordSecret}`, "-n", system],
      ["list", "secrets", "-A"],
      ["get", `highavailabilityvips.ha-nginx.io/${havipName}`, "-n", edge],
      ["patch", `highavailabilityvips.ha-nginx.io/${havipName}`, "-n", edge],
      ["update", "highavailabilityvips.ha-nginx.io", "--subresource=status", "-n", edge],
      ["delete", "highavailabilityvips.ha-nginx.io", "-n", edge],
      ["create", "pods", "--subresource=exec", "-n", edge],
      ["delete", "pods", "-n", system],
      ["get", "nodes"],
      ["patch", "nodes"],
      ["patch", "nodes", "--subresource=status"],
      ["create", "rolebindings", "-n", edge],
      ["get", "configmaps", "-n", edge],
      ["patch", "daemonsets.apps", "-n", system],
      ["create", "serviceaccounts", "--subresource=token", "-n", system],
    ];
    for (const args of denied) expect({ args, answer: await canI(agentKubeconfig, ...args) }).toEqual({ args, answer: "no" });
    // The same through real requests, not only SelfSubjectAccessReviews.
    const own = await kubectl(["get", "secret", passwordSecret, "-n", edge, "-o", "name"], { kubeconfig: agentKubeconfig });
    expect(own.code).toBe(0);
    const other = await kubectl(["get", "secret", "unrelated", "-n", edge, "-o", "name"], { kubeconfig: agentKubeconfig });
    expect(other.stderr).toContain("Forbidden");
    const sameNameElsewhere = await kubectl(["get", "secret", passwordSecret, "-n", system, "-o", "name"], { kubeconfig: agentKubeconfig });
    expect(sameNameElsewhere.stderr).toContain("Forbidden");
  });

  it("the controller's token may do exactly the chart's set, DaemonSets and pods in its own namespace only, and cannot widen it through the RBAC it writes", async () => {
    const clusterWide = [
      "events.events.k8s.io||create",
      "highavailabilityvips.ha-nginx.io/status||patch",
      "highavailabilityvips.ha-nginx.io||get",
      "highavailabilityvips.ha-nginx.io||list",
      "highavailabilityvips.ha-nginx.io||patch",
      "highavailabilityvips.ha-nginx.io||watch",
      "nodes||list",
      "nodes||watch",
      "rolebindings.rbac.authorization.k8s.io||create",
      "rolebindings.rbac.authorization.k8s.io||delete",
      "rolebindings.rbac.authorization.k8s.io||patch",
      "roles.rbac.authorization.k8s.io||create",
      "roles.rbac.authorization.k8s.io||delete",
      "roles.rbac.authorization.k8s.io||patch",
      "secrets||get",
      "vipaddresspools.ha-nginx.io||list",
      "vipaddresspools.ha-nginx.io||watch",
    ];
    expect(await grantedIn(controllerKubeconfig, edge)).toEqual(clusterWide);
    // Its own namespace adds the Role ha-nginx-controller: the one agent DaemonSet and its pods (list and watch for the
    // caches, delete to replace an outdated agent), and the leader-election Lease (create, and get and patch on that
    // one name).
    const ownNamespace = [
      "daemonsets.apps||create",
      "daemonsets.apps||delete",
      "daemonsets.apps||list",
      "daemonsets.apps||patch",
      "daemonsets.apps||watch",
      "pods||delete",
      "pods||list",
      "pods||watch",
      "leases.coordination.k8s.io|ha-nginx-controller|get",
      "leases.coordination.k8s.io|ha-nginx-controller|patch",
      "leases.coordination.k8s.io||create",
    ];
    expect(await grantedIn(controllerKubeconfig, system)).toEqual([...clusterWide, ...ownNamespace].sort());
    const denied: readonly (readonly string[])[] = [
      ["list", "secrets", "-A"],
      ["watch", "secrets", "-n", edge],
      ["create", "daemonsets.apps", "-n", edge],
      ["list", "pods", "-n", edge],
      ["delete", "pods", "-n", edge],
      ["create", "pods", "-n", system],
      ["create", "pods", "--subresource=exec", "-n", system],
      ["create", "serviceaccounts", "-n", edge],
      ["create", "serviceaccounts", "-n", system],
      ["create", "serviceaccounts", "--subresource=token", "-n", system],
      ["patch", "nodes"],
      ["delete", "nodes"],
      ["delete", "highavailabilityvips.ha-nginx.io", "-n", edge],
      ["update", "highavailabilityvips.ha-nginx.io", "-n", edge],
      ["escalate", "roles", "-n", edge],
      ["bind", "roles", "-n", edge],
      ["bind", "clusterroles/ha-nginx-agent"],
      ["bind", "clusterroles/cluster-admin"],
      ["create", "clusterroles"],
      ["create", "clusterrolebindings"],
      ["get", "configmaps", "-n", "kube-system"],
      ["patch", "leases/other", "-n", system],
      ["create", "leases", "-n", edge],
    ];
    for (const args of denied) expect({ args, answer: await canI(controllerKubeconfig, ...args) }).toEqual({ args, answer: "no" });
    // create roles and rolebindings are granted, but the API server's escalation check holds them to what the
    // controller has: a Role with list on Secrets, or a binding of a role it may not bind, is refused.
    const widerRole = await kubectl(["create", "-f", "-"], {
      kubeconfig: controllerKubeconfig,
      input: JSON.stringify({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "wider", namespace: edge }, rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["list"] }] }),
    });
    expect(widerRole.stderr).toMatch(/forbidden.*attempting to grant RBAC permissions not currently held/is);
    /** The controller binds `clusterRole` in edge: the escalation check refuses it, and no binding is left. */
    const expectBindingRefused = async (name: string, clusterRole: string, subject: { name: string; namespace: string }): Promise<void> => {
      const binding = await kubectl(["create", "-f", "-"], {
        kubeconfig: controllerKubeconfig,
        input: JSON.stringify({
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { name, namespace: edge },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole },
          subjects: [{ kind: "ServiceAccount", ...subject }],
        }),
      });
      expect(binding.stderr).toMatch(/forbidden.*attempting to grant RBAC permissions not currently held/is);
      expect(await isGone(["rolebinding", name, "-n", edge])).toBe(true);
    };
    await expectBindingRefused("admin-for-me", "admin", { name: "ha-nginx-controller", namespace: system });
    // Nor can it hand the agents' rights to another identity: it may not bind ClusterRole ha-nginx-agent, and does not
    // hold all of it (pods outside its namespace, core Events).
    await expectBindingRefused("agent-for-default", "ha-nginx-agent", { name: "default", namespace: edge });
  });

  it("securityContext as the API server holds it: agent NET_ADMIN and NET_RAW only; controller non-root, no capabilities", async () => {
    const daemonSet = await getJson(["get", "daemonset", AGENT_NAME, "-n", system]);
    const podSpec = (daemonSet.spec as { template: { spec: Json } }).template.spec;
    const [agent] = podSpec.containers as Json[];
    expect(agent?.securityContext).toEqual({
      capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
    });
    expect(podSpec.hostPID).toBeUndefined();
    expect(podSpec.hostIPC).toBeUndefined();

    const helmBin = locateBinaries().helm;
    const rendered = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolveRun) => {
      const child = spawn(helmBin, ["template", "ha-nginx", join(repo, "charts/ha-nginx"), "-n", "lp-chart", "--show-only", "templates/controller-deployment.yaml"], {
        env: { PATH: process.env.PATH ?? "", HOME: helmHome, HELM_CACHE_HOME: join(helmHome, "cache"), HELM_CONFIG_HOME: join(helmHome, "config"), HELM_DATA_HOME: join(helmHome, "data") },
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      child.on("close", (code) => resolveRun({ code, stdout, stderr }));
    });
    expect({ code: rendered.code, stderr: rendered.stderr }).toEqual({ code: 0, stderr: "" });
    // The chart's schema wants at least one replica; zero here keeps this Deployment's pods off the bed's nodes.
    const asJson = await kubectl(["create", "--dry-run=client", "-o", "json", "-f", "-"], { input: rendered.stdout });
    expect(asJson.code).toBe(0);
    const deployment = JSON.parse(asJson.stdout) as { metadata: { name: string }; spec: Json };
    await bed().testbed.createNamespace("lp-chart");
    const created = await kubectl(["create", "-f", "-"], { input: JSON.stringify({ ...deployment, spec: { ...deployment.spec, replicas: 0 } }) });
    expect({ code: created.code, stderr: created.stderr }).toEqual({ code: 0, stderr: "" });
    const held = await getJson(["get", "deployment", deployment.metadata.name, "-n", "lp-chart"]);
    const controllerPod = (held.spec as { template: { spec: Json } }).template.spec;
    expect(controllerPod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    const [controller] = controllerPod.containers as Json[];
    expect(controller?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
    });
  });

  it("the password is in no log, Event, HAVIP or DaemonSet", async () => {
    // Let the agents run a while past settling, so their steady-state logging is in the files too.
    await new Promise((resolveWait) => setTimeout(resolveWait, 3_000));
    const pods = (await getJson(["get", "pods", "-n", system, "-l", `${AGENT_LABEL}=${AGENT_NAME}`])).items as { metadata: { name: string } }[];
    expect(pods).toHaveLength(bed().testbed.nodeNames.length);
    const files = pods.flatMap((pod) => {
      const dir = bed().testbed.runner.podDir(system, pod.metadata.name);
      if (dir === undefined) throw new Error(`no pod folder for ${pod.metadata.name}`);
      const podFiles = filesUnder(dir);
      // Each agent got past reading the password: it logs "router starting" only once it has its configuration.
      const podLogs = podFiles.filter((file) => file.endsWith(".log")).map((file) => readFileSync(file, "utf8")).join("");
      expect({ pod: pod.metadata.name, hasStarted: podLogs.includes("router starting") }).toEqual({ pod: pod.metadata.name, hasStarted: true });
      return podFiles;
    });
    const haystacks: { where: string; text: string }[] = [
      ...files.map((file) => ({ where: file, text: readFileSync(file, "latin1") })),
      { where: "controller log", text: readFileSync(bed().controllerLog, "utf8") },
      { where: "core/v1 Events", text: JSON.stringify(await getJson(["get", "events", "-A"])) },
      { where: "events.k8s.io Events", text: JSON.stringify(await getJson(["get", "events.events.k8s.io", "-A"])) },
      { where: "HAVIP", text: JSON.stringify(await bed().custom.getNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, namespace: edge, plural: HAVIP_PLURAL, name: havipName })) },
      { where: "DaemonSet", text: JSON.stringify(await getJson(["get", "daemonset", AGENT_NAME, "-n", system])) },
      { where: "agent pods", text: JSON.stringify(pods) },
    ];
    // The searches must have something to search: the agents' Events are there, and the Secret itself, read the same
    // way, does hold the base64 form searched for.
    const coreEvents = haystacks.find((haystack) => haystack.where === "core/v1 Events")?.text;
    expect(coreEvents).toContain("ha-nginx.io/agent");
    // The cut is said where a user looks, without the password: a Warning Event from each agent, naming the Secret.
    expect(coreEvents).toContain("PasswordTruncated");
    expect(coreEvents).toContain(`Secret ${passwordSecret}, key password`);
    expect(JSON.stringify(await getJson(["get", "secret", passwordSecret, "-n", edge]))).toContain(passwordBase64);
    measured.bytesSearched = haystacks.reduce((sum, haystack) => sum + haystack.text.length, 0);
    measured.filesSearched = files.length + 1;
    for (const { where, text } of haystacks) {
      expect({ where, hasPassword: text.includes(sentPassword) || text.includes(passwordBase64) }).toEqual({ where, hasPassword: false });
    }
  });

  it("removing authentication removes the Role; deleting the resource removes it before the resource is gone, then the agents go", async () => {
    const accessName = passwordAccessName(havipName);
    const patch = JSON.stringify({ spec: { authentication: null } });
    expect((await kubectl(["patch", "highavailabilityvip", havipName, "-n", edge, "--type=merge", "-p", patch])).code).toBe(0);
    await waitFor(async () => (await isGone(["role", accessName, "-n", edge])) && (await isGone(["rolebinding", accessName, "-n", edge])), {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: "the password Role and RoleBinding deleted after authentication was removed",
    });
    expect(await canI(agentKubeconfig, "get", `secrets/${passwordSecret}`, "-n", edge)).toBe("no");
    await bed().settled();

    expect((await kubectl(["apply", "-f", "-"], { input: withPassword(bed().vip) })).code).toBe(0);
    await waitFor(async () => (await canI(agentKubeconfig, "get", `secrets/${passwordSecret}`, "-n", edge)) === "yes", {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: "the password Role back after authentication was restored",
    });
    await bed().settled();

    const deletedAt = Date.now();
    expect((await kubectl(["delete", "highavailabilityvip", havipName, "-n", edge, "--wait=false"])).code).toBe(0);
    await waitFor(() => isGone(["highavailabilityvip", havipName, "-n", edge]), { timeoutMs: 90_000, intervalMs: 100, what: "the HAVIP released and gone" });
    measured.releaseMs = Date.now() - deletedAt;
    // The garbage collector would remove them only after the resource is gone; the finalizer does it before.
    expect(await isGone(["role", accessName, "-n", edge])).toBe(true);
    expect(await isGone(["rolebinding", accessName, "-n", edge])).toBe(true);
    expect(await canI(agentKubeconfig, "get", `secrets/${passwordSecret}`, "-n", edge)).toBe("no");
    // With no resource left the controller deletes the agent DaemonSet; the agents' ServiceAccount and its cluster-wide
    // binding are the chart's, and stay for the next resource.
    await waitFor(() => isGone(["daemonset", AGENT_NAME, "-n", system]), { timeoutMs: 30_000, intervalMs: 250, what: "the agent DaemonSet deleted with the last resource" });
    expect(await isGone(["serviceaccount", agentAccount, "-n", system])).toBe(false);
    expect(await isGone(["clusterrolebinding", "ha-nginx-agent"])).toBe(false);
  });
});
