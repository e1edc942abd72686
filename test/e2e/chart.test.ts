// The Helm chart: lint, render, server-side dry run on the real API server, then a real `helm install` into the test
// bed (the stand-in kubelet maps the chart's `…/ha-nginx` image to dist/cli.js and `nginx` to Debian's nginx), the
// failover scenario through the bundled nginx, and a plain `helm uninstall` with the VIP still present (the chart's
// pre-delete hook runs `ha-nginx uninstall`) that must leave nothing behind.
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION, type NodeStatusEntry } from "../../src/api/v1alpha1/index.js";
import { vipHolders } from "../../testing/lab/agent.js";
import { waitFor } from "../../testing/lab/wait.js";
import { locateBinaries } from "../../testing/testbed/binaries.js";
import { startTestbed, type Testbed } from "../../testing/testbed/testbed.js";

const repo = resolve(import.meta.dirname, "../..");
const chart = join(repo, "charts/ha-nginx");
const generatedCrd = join(repo, "crds/ha-nginx.io_highavailabilityvips.yaml");
const crdName = "highavailabilityvips.ha-nginx.io";
// The chart's own VIP comes with a VIPAddressPool that admits it, so the dry run needs that CRD too.
const generatedPoolCrd = join(repo, "crds/ha-nginx.io_vipaddresspools.yaml");
const poolCrdName = "vipaddresspools.ha-nginx.io";
const release = "edge";
const namespace = "ha-nginx-system";
const havipName = "edge-ha-nginx";
const nginxSelector = "app.kubernetes.io/name=ha-nginx-nginx";
const edgeLabel = { "ha-nginx.io/edge": "true" };
const helmBin = locateBinaries().helm;
const helmHome = mkdtempSync(join(tmpdir(), "ha-nginx-chart-e2e-"));

interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function helm(args: readonly string[], timeoutMs = 240_000): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(helmBin, args, {
      env: { PATH: process.env.PATH ?? "", HOME: helmHome, HELM_CACHE_HOME: join(helmHome, "cache"), HELM_CONFIG_HOME: join(helmHome, "config"), HELM_DATA_HOME: join(helmHome, "data") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

const fullValues = (vip: string): string[] => [
  "--set", "nginx.enabled=true",
  "--set", "vip.enabled=true",
  "--set", `vip.address=${vip}`,
  "--set", "vip.interface=eth0",
];

function kindsOf(manifests: string): string[] {
  return [...manifests.matchAll(/^kind: (\S+)$/gm)].map((match) => match[1] ?? "").sort();
}

function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") === true;
}

describe("chart: lint and render", () => {
  it("the chart's crds/ is a byte-for-byte copy of the generated CRD", () => {
    expect(readFileSync(join(chart, "crds/ha-nginx.io_highavailabilityvips.yaml"), "utf8")).toBe(readFileSync(generatedCrd, "utf8"));
  });

  it("helm lint is clean with the defaults and with nginx and the VIP enabled (only the icon INFO)", async () => {
    for (const extra of [[], fullValues("192.0.2.10/24")]) {
      const result = await helm(["lint", "--strict", chart, ...extra]);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      const findings = result.stdout.split("\n").filter((line) => /^\[(INFO|WARNING|ERROR)\]/.test(line));
      expect(findings).toEqual(["[INFO] Chart.yaml: icon is recommended"]);
    }
  });

  it("helm template renders the controller by default, and nginx plus the HighAvailabilityVIP when enabled", async () => {
    const defaults = await helm(["template", release, chart, "-n", namespace]);
    expect(defaults.code, defaults.stderr).toBe(0);
    expect(kindsOf(defaults.stdout)).toEqual([
      "ClusterRole", "ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "ClusterRoleBinding", "Deployment", "Job", "PodDisruptionBudget",
      "Role", "Role", "RoleBinding", "RoleBinding", "ServiceAccount", "ServiceAccount", "ServiceAccount",
    ]);
    expect(defaults.stdout).toContain("- --leader-elect");
    expect(defaults.stdout).not.toContain("--agent-http-address");
    const exposed = await helm(["template", release, chart, "-n", namespace, "--set", "agent.httpAddress=0.0.0.0"]);
    expect(exposed.stdout).toContain('- --agent-http-address\n            - "0.0.0.0"');
    const full = await helm(["template", release, chart, "-n", namespace, ...fullValues("192.0.2.10/24"), "--set", "nginx.upstream.servers[0]=192.0.2.42:80 max_fails=2 fail_timeout=3s"]);
    expect(full.code, full.stderr).toBe(0);
    expect(kindsOf(full.stdout)).toEqual(expect.arrayContaining(["ConfigMap", "DaemonSet", "HighAvailabilityVIP"]));
    expect(full.stdout).toContain("server 192.0.2.42:80 max_fails=2 fail_timeout=3s;");
    expect(full.stdout).toContain("proxy_pass http://web;");
  });

  it("the pre-delete hook: RBAC before the Job, all deleted on success, a locked-down pod running `ha-nginx uninstall`", async () => {
    const rendered = await helm(["template", release, chart, "-n", namespace, "--set", "uninstall.timeoutSeconds=100"]);
    expect(rendered.code, rendered.stderr).toBe(0);
    interface Manifest {
      kind: string;
      metadata: { name: string; annotations?: Record<string, string> };
      spec?: { activeDeadlineSeconds?: number; backoffLimit?: number; template?: { spec?: Record<string, unknown> & { containers?: Record<string, unknown>[] } } };
    }
    const hooks = parseAllDocuments(rendered.stdout)
      .map((document) => document.toJS() as Manifest | null)
      .filter((manifest): manifest is Manifest => manifest?.metadata.annotations?.["helm.sh/hook"] !== undefined);
    expect(hooks.map((hook) => `${hook.kind} ${hook.metadata.name}`).sort()).toEqual(
      ["ClusterRole", "ClusterRoleBinding", "Job", "Role", "RoleBinding", "ServiceAccount"].map((kind) => `${kind} edge-ha-nginx-uninstall`),
    );
    for (const hook of hooks) {
      expect(hook.metadata.annotations?.["helm.sh/hook"]).toBe("pre-delete");
      expect(hook.metadata.annotations?.["helm.sh/hook-delete-policy"]).toBe("before-hook-creation,hook-succeeded");
      expect(Number(hook.metadata.annotations?.["helm.sh/hook-weight"])).toBe(hook.kind === "Job" ? 0 : -10);
    }
    const job = hooks.find((hook) => hook.kind === "Job");
    expect(job?.spec?.backoffLimit).toBe(0);
    expect(job?.spec?.activeDeadlineSeconds).toBe(130);
    const pod = job?.spec?.template?.spec;
    expect(pod?.serviceAccountName).toBe("edge-ha-nginx-uninstall");
    expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(pod?.containers?.[0]?.args).toEqual([
      "uninstall", "--namespace", namespace, "--controller-deployment", "edge-ha-nginx-controller",
      "--controller-selector", "app.kubernetes.io/instance=edge,app.kubernetes.io/name=ha-nginx-controller", "--timeout", "100",
    ]);
    expect(pod?.containers?.[0]?.securityContext).toEqual({
      allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] },
    });
  });

  it("values.schema.json refuses a VIP without an address and a zero replica count", async () => {
    const noAddress = await helm(["template", release, chart, "--set", "vip.enabled=true"]);
    expect(noAddress.code).not.toBe(0);
    expect(noAddress.stderr).toContain("/vip/address");
    const noReplicas = await helm(["template", release, chart, "--set", "controller.replicas=0"]);
    expect(noReplicas.code).not.toBe(0);
    expect(noReplicas.stderr).toContain("/controller/replicas");
  });

  it("the RBAC templates the controller and agent e2e tests render by plain substitution hold no other directive", () => {
    for (const file of ["rbac-controller.yaml", "rbac-agent.yaml"]) {
      const text = readFileSync(join(chart, "templates", file), "utf8")
        .replaceAll("{{ .Release.Namespace }}", namespace)
        .replaceAll("{{ .Values.controller.serviceAccount.name }}", "ha-nginx-controller");
      expect(text).not.toContain("{{");
    }
  });
});

describe("chart e2e on the test bed", () => {
  let testbed: Testbed | undefined;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let isInstalled = false;
  const measured: Record<string, number | string> = {};

  const bed = (): Testbed => {
    if (testbed === undefined) throw new Error("no test bed");
    return testbed;
  };
  const vip = (): string => bed().lab.vip(0).address;

  async function statusNodes(): Promise<readonly NodeStatusEntry[]> {
    const object = (await custom.getNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, namespace, plural: HAVIP_PLURAL, name: havipName })) as {
      status?: { nodes?: NodeStatusEntry[] };
    };
    return object.status?.nodes ?? [];
  }

  async function settled(): Promise<string> {
    let master = "";
    await waitFor(
      async () => {
        const nodes = await statusNodes();
        const masters = nodes.filter((entry) => entry.state === "MASTER");
        if (masters.length !== 1 || nodes.filter((entry) => entry.state === "BACKUP").length !== 2) return false;
        const holders = await vipHolders(bed().lab, vip());
        master = masters[0]?.node ?? "";
        return holders.length === 1 && holders[0] === bed().hostOf(master).name;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: "one MASTER holding the VIP and two BACKUP" },
    );
    return master;
  }

  beforeAll(async () => {
    testbed = await startTestbed({ nodes: 3, nodeLabels: edgeLabel });
    await testbed.createNamespace(namespace);
    const kc = new KubeConfig();
    kc.loadFromFile(testbed.kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
  }, 240_000);

  afterAll(async () => {
    if (isInstalled) {
      await bed().kubectl(["delete", "havip", "--all", "-n", namespace, "--wait", "--timeout=90s"]).catch(() => undefined);
      // --no-hooks: a cleanup after a failure must not depend on the hook under test.
      await helm(["uninstall", release, "-n", namespace, "--kubeconfig", bed().kubeconfig, "--wait", "--no-hooks"]).catch(() => undefined);
    }
    await testbed?.stop();
    rmSync(helmHome, { recursive: true, force: true });
    process.stdout.write(`[chart e2e] measurements: ${JSON.stringify(measured)}\n`);
  }, 180_000);

  it("kubectl apply --dry-run=server accepts the rendered manifests (defaults, and nginx plus VIP)", async () => {
    const crd = await bed().kubectl(["apply", "--server-side", "-f", generatedCrd, "-f", generatedPoolCrd]);
    expect(crd.code, crd.stderr).toBe(0);
    const established = await bed().kubectl(["wait", "--for=condition=Established", `crd/${crdName}`, `crd/${poolCrdName}`, "--timeout=60s"]);
    expect(established.code, established.stderr).toBe(0);
    for (const extra of [[], fullValues(`${vip()}/24`)]) {
      const rendered = await helm(["template", release, chart, "-n", namespace, ...extra]);
      expect(rendered.code, rendered.stderr).toBe(0);
      const dryRun = await bed().kubectl(["apply", "--dry-run=server", "-f", "-"], { input: rendered.stdout });
      expect(dryRun.code, dryRun.stderr).toBe(0);
      expect(dryRun.stdout).toContain("(server dry run)");
    }
    // helm install must create the CRD from the chart's crds/ itself.
    const deleted = await bed().kubectl(["delete", "crd", crdName, poolCrdName, "--wait", "--timeout=60s"]);
    expect(deleted.code, deleted.stderr).toBe(0);
  }, 120_000);

  it("helm install on 3 edge nodes: controller, nginx and agents come up, one MASTER holds the VIP and it answers", async () => {
    const startedAt = Date.now();
    const install = await helm([
      "install", release, chart, "-n", namespace, "--kubeconfig", bed().kubeconfig,
      "--set", "image.repository=ha-nginx", "--set", "image.tag=dev",
      ...fullValues(`${vip()}/24`),
      "--wait", "--timeout", "4m",
    ], 300_000);
    expect(install.code, install.stdout + install.stderr).toBe(0);
    isInstalled = true;
    measured.helmInstallMs = Date.now() - startedAt;
    const master = await settled();
    measured.installToSettledMs = Date.now() - startedAt;
    const controllers = await core.listNamespacedPod({ namespace, labelSelector: "app.kubernetes.io/name=ha-nginx-controller" });
    expect(controllers.items).toHaveLength(2);
    expect(new Set(controllers.items.map((pod) => pod.spec?.nodeName)).size).toBe(2);
    const answer = await bed().lab.httpGet(bed().lab.client, `http://${vip()}/`);
    expect(answer.status).toBe(200);
    expect(answer.body).toContain("ha-nginx on");
    measured.firstMaster = master;
  }, 360_000);

  it("the master's nginx pod deleted: the client probing every 10 ms sees no hole (at most the in-flight request) and the VIP moves", async () => {
    const before = await settled();
    const pods = await core.listNamespacedPod({ namespace, labelSelector: nginxSelector, fieldSelector: `spec.nodeName=${before}` });
    const pod = pods.items.find(isPodReady);
    if (pod?.metadata?.name === undefined) throw new Error(`no Ready nginx pod on ${before}`);
    const probe = await bed().lab.startProbe(`http://${vip()}/`, { intervalMs: 10, timeoutMs: 500 });
    let after = "";
    try {
      const deleteAt = Date.now();
      const deleted = await bed().kubectl(["delete", "pod", pod.metadata.name, "-n", namespace, "--wait=false"]);
      expect(deleted.code, deleted.stderr).toBe(0);
      await waitFor(
        async () => {
          const holders = await vipHolders(bed().lab, vip());
          if (holders.length !== 1 || holders[0] === bed().hostOf(before).name) return false;
          after = bed().nodeNames.find((node) => bed().hostOf(node).name === holders[0]) ?? "";
          return true;
        },
        { timeoutMs: 20_000, intervalMs: 20, what: `the VIP to leave ${before}` },
      );
      measured.podDeleteToVipMovedMs = Date.now() - deleteAt;
      measured.masters = `${before} -> ${after}`;
      await waitFor(
        async () => {
          const list = await core.listNamespacedPod({ namespace, labelSelector: nginxSelector, fieldSelector: `spec.nodeName=${before}` });
          return list.items.length === 1 && list.items[0]?.metadata?.name !== pod.metadata?.name && isPodReady(list.items[0] ?? {});
        },
        { timeoutMs: 60_000, intervalMs: 250, what: `a new nginx pod Ready on ${before}` },
      );
    } finally {
      const report = await probe.stop();
      measured.podDeleteProbe = `${report.ok}/${report.sent} ok, ${report.failed} failed, max outage ${report.maxOutageMs} ms`;
      expect(report.sent).toBeGreaterThan(100);
      // No hole (that shows as 100 ms timeouts); at most the one request whose connection opened on the old master
      // just before the client's ARP entry flipped, reset by the new master (see test/ns/agent/failover.test.ts).
      expect(report.failed).toBeLessThanOrEqual(1);
      expect(report.maxOutageMs).toBeLessThan(100);
    }
    expect(after).not.toBe("");
    expect(after).not.toBe(before);
    expect(await settled()).toBe(after);
  }, 180_000);

  it("plain helm uninstall with the VIP still present, then delete the CRD: no VIP on any node, no agent or nginx process, no orphan object", async () => {
    const havips = await custom.listClusterCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL }) as { items: unknown[] };
    expect(havips.items).toHaveLength(1);
    expect(await vipHolders(bed().lab, vip())).toHaveLength(1);
    const startedAt = Date.now();
    const uninstall = await helm(["uninstall", release, "-n", namespace, "--kubeconfig", bed().kubeconfig, "--wait", "--timeout", "5m"], 360_000);
    expect(uninstall.code, uninstall.stdout + uninstall.stderr).toBe(0);
    isInstalled = false;
    measured.helmUninstallMs = Date.now() - startedAt;
    // The hook's own account of what it did, from its pod's log (the stand-in kubelet keeps the folder until it stops).
    const pods = join(bed().runner.dir, "pods");
    const hookPod = readdirSync(pods).find((entry) => entry.startsWith(`${namespace}_edge-ha-nginx-uninstall-`));
    if (hookPod === undefined) throw new Error(`no uninstall hook pod ran (${readdirSync(pods).join(", ")})`);
    const report = readFileSync(join(pods, hookPod, "uninstall.log"), "utf8").split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { msg?: string; vipsDeleted?: number; vipsGoneMs?: number; controllerStoppedMs?: number; totalMs?: number; isLeaseDeleted?: boolean })
      .find((entry) => entry.msg?.startsWith("uninstalled") === true);
    expect(report).toMatchObject({ vipsDeleted: 1, isLeaseDeleted: true });
    measured.hook = `total ${report?.totalMs} ms: VIPs gone ${report?.vipsGoneMs} ms, controller stopped ${report?.controllerStoppedMs} ms`;
    // Nothing was left for the CRD's own deletion to wait on.
    const crd = await bed().kubectl(["delete", "crd", crdName, poolCrdName, "--wait", "--timeout=60s"]);
    expect(crd.code, crd.stderr).toBe(0);
    measured.crdDeletedMs = Date.now() - startedAt;
    await waitFor(async () => bed().runner.processes().every((item) => item.namespace !== namespace), {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: `no process of namespace ${namespace} left on the nodes`,
    });
    measured.processesGoneMs = Date.now() - startedAt;
    expect(await vipHolders(bed().lab, vip())).toEqual([]);
    const kinds = "all,configmaps,secrets,serviceaccounts,roles,rolebindings,leases,poddisruptionbudgets,controllerrevisions";
    // Never read stays in it if every kubectl get failed, so the check below cannot pass by default.
    let left: string[] = ["<never read>"];
    // helm deletes the hook's Job in the background; its finished pod goes with the garbage collector shortly after.
    await waitFor(
      async () => {
        const namespaced = await bed().kubectl(["get", kinds, "-n", namespace, "-o", "name"]);
        expect(namespaced.code, namespaced.stderr).toBe(0);
        left = namespaced.stdout.split("\n").filter((line) => line !== "" && line !== "serviceaccount/default" && line !== "configmap/kube-root-ca.crt");
        if (measured.lingering === undefined && left.length > 0) measured.lingering = left.join(" ");
        return left.length === 0;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: `no object left in ${namespace}` },
    ).catch(() => undefined);
    expect(left).toEqual([]);
    measured.objectsGoneMs = Date.now() - startedAt;
    const cluster = await bed().kubectl(["get", "clusterroles,clusterrolebindings,crds", "-o", "name"]);
    expect(cluster.code, cluster.stderr).toBe(0);
    expect(cluster.stdout.split("\n").filter((line) => line.includes("ha-nginx"))).toEqual([]);
  }, 420_000);
});
