// The test bed end to end: real control plane, three namespace nodes kept Ready by the node runner, a Deployment's
// nginx pod running as real nginx in its node's namespace, a pod's service account reaching the API through the
// relay, and a teardown that leaves no namespace or process behind.
import { CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestbed, type Testbed } from "./support/testbed.js";

const execFileAsync = promisify(execFile);

const namespace = "smoke";

const nginxManifest = `
apiVersion: v1
kind: ConfigMap
metadata: { name: web-conf, namespace: ${namespace} }
data:
  default.conf: |
    server {
      listen 80;
      location = /healthz { return 200 "ok\\n"; }
      location / { default_type text/plain; return 200 "smoke-web\\n"; }
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: ${namespace} }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: nginx
          image: nginx:1.27
          ports: [{ containerPort: 80, name: http }]
          readinessProbe:
            httpGet: { path: /healthz, port: http }
            periodSeconds: 1
          volumeMounts: [{ name: conf, mountPath: /etc/nginx/conf.d }]
      volumes: [{ name: conf, configMap: { name: web-conf } }]
`;

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") === true;
}

describe("e2e test bed smoke", () => {
  let testbed: Testbed | undefined;
  let core: CoreV1Api;
  const seenPids = new Set<number>();
  const measured: Record<string, number> = {};

  beforeAll(async () => {
    const started = Date.now();
    testbed = await startTestbed({ nodes: 3 });
    measured.testbedStartMs = Date.now() - started;
    const kc = new KubeConfig();
    kc.loadFromFile(testbed.kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    await testbed.createNamespace(namespace);
    for (const pid of testbed.runner.relayPids()) seenPids.add(pid);
  });

  afterAll(async () => {
    await testbed?.stop();
    process.stdout.write(`[smoke] measurements: ${JSON.stringify(measured)}\n`);
  });

  it("registers three nodes that kubectl reports Ready", async () => {
    const bed = testbed;
    if (bed === undefined) throw new Error("no test bed");
    const result = await bed.kubectl(["get", "nodes", "--no-headers"]);
    expect(result.code).toBe(0);
    const rows = result.stdout.trim().split("\n").map((line) => line.split(/\s+/));
    expect(rows.map((row) => row[0]).sort()).toEqual(["node-1", "node-2", "node-3"]);
    expect(rows.every((row) => row[1] === "Ready")).toBe(true);
    const lease = await bed.kubectl(["get", "lease", "-n", "kube-node-lease", "node-1", "-o", "jsonpath={.spec.holderIdentity}"]);
    expect(lease.stdout).toBe("node-1");
  });

  it("runs a Deployment's nginx pod as real nginx that turns Ready and serves the client", async () => {
    const bed = testbed;
    if (bed === undefined) throw new Error("no test bed");
    const applied = Date.now();
    const apply = await bed.kubectl(["apply", "-f", "-"], { input: nginxManifest });
    expect(apply.code, apply.stderr).toBe(0);
    const pod = await waitFor("the nginx pod to be Ready", 60_000, async () => {
      const list = await core.listNamespacedPod({ namespace, labelSelector: "app=web" });
      return list.items.find(isPodReady);
    });
    measured.podCreateToReadyMs = Date.now() - applied;
    const nodeName = pod.spec?.nodeName ?? "";
    const host = bed.hostOf(nodeName);
    expect(pod.status?.podIP).toBe(host.address);
    expect(pod.status?.containerStatuses?.[0]?.state?.running).toBeDefined();

    const nginx = bed.runner.processes().find((process) => process.pod === pod.metadata?.name);
    if (nginx === undefined) throw new Error("no nginx process for the pod");
    seenPids.add(nginx.pid);
    expect(readFileSync(`/proc/${nginx.pid}/cmdline`, "utf8")).toContain("nginx");
    const netnsOfPid = await execFileAsync("ip", ["netns", "identify", String(nginx.pid)]);
    expect(netnsOfPid.stdout.trim()).toBe(host.netns);

    const answer = await bed.lab.httpGet(bed.lab.client, `http://${host.address}/`);
    expect(answer.status).toBe(200);
    expect(answer.body.trim()).toBe("smoke-web");

    const deleting = Date.now();
    const removal = await bed.kubectl(["delete", "deployment", "web", "-n", namespace, "--wait=false"]);
    expect(removal.code, removal.stderr).toBe(0);
    await waitFor("the nginx pod object to disappear", 60_000, async () => {
      const list = await core.listNamespacedPod({ namespace, labelSelector: "app=web" });
      return list.items.length === 0 ? true : undefined;
    });
    measured.podDeleteMs = Date.now() - deleting;
    expect(isProcessAlive(nginx.pid)).toBe(false);
  });

  it("gives a pod a service account kubeconfig that reaches the API through the node's relay", async () => {
    const bed = testbed;
    if (bed === undefined) throw new Error("no test bed");
    const manifest = `
apiVersion: v1
kind: Pod
metadata: { name: cli, namespace: ${namespace} }
spec:
  restartPolicy: Never
  containers:
    - name: cli
      image: ${bed.imageForOurs}
      args: ["--help"]
      env:
        - { name: MY_NODE, valueFrom: { fieldRef: { fieldPath: spec.nodeName } } }
`;
    const apply = await bed.kubectl(["apply", "-f", "-"], { input: manifest });
    expect(apply.code, apply.stderr).toBe(0);
    const pod = await waitFor("the CLI pod to succeed", 60_000, async () => {
      const current = await core.readNamespacedPod({ name: "cli", namespace });
      return current.status?.phase === "Succeeded" ? current : undefined;
    });
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    const dir = bed.runner.podDir(namespace, "cli");
    if (dir === undefined) throw new Error("the runner has no folder for the CLI pod");
    expect(readFileSync(`${dir}/cli.log`, "utf8")).toContain("Usage");

    const kubeconfig = JSON.parse(readFileSync(`${dir}/kubeconfig`, "utf8")) as {
      clusters: { cluster: { server: string } }[];
      users: { user: { token: string } }[];
    };
    expect(kubeconfig.clusters[0]?.cluster.server).toBe("https://127.0.0.1:6443");
    const token = kubeconfig.users[0]?.user.token ?? "";
    const host = bed.hostOf(pod.spec?.nodeName ?? "");
    const curl = await bed.lab.exec(host, "curl", [
      "-s", "--cacert", bed.cp.caFile, "-H", `Authorization: Bearer ${token}`, "-w", "\n%{http_code}",
      `https://127.0.0.1:6443/api/v1/namespaces/${namespace}/secrets`,
    ]);
    // 403 (not 401): the token authenticated as the pod's service account, which has no RBAC grants.
    expect(curl.stdout.trim().split("\n").pop()).toBe("403");
    expect(curl.stdout).toContain(`system:serviceaccount:${namespace}:default`);
    await bed.kubectl(["delete", "pod", "cli", "-n", namespace, "--wait=false"]);
  });

  it("tears down every namespace and process it started", async () => {
    const bed = testbed;
    if (bed === undefined) throw new Error("no test bed");
    const runnerDir = bed.runner.dir;
    const stopped = Date.now();
    await bed.stop();
    measured.teardownMs = Date.now() - stopped;
    const namespaces = await execFileAsync("ip", ["netns", "list"]);
    expect(namespaces.stdout).not.toContain(bed.lab.id);
    for (const pid of seenPids) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
    const leftovers = await execFileAsync("pgrep", ["-af", `socat|nginx`]).then((result) => result.stdout, () => "");
    const ours = leftovers.split("\n").filter((line) => line.includes(runnerDir) || line.includes(bed.lab.id));
    expect(ours).toEqual([]);
    expect(existsSync(runnerDir)).toBe(false);
  });
});
