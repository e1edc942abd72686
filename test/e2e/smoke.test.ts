// The test bed end to end: real control plane, three namespace nodes kept Ready by the stand-in kubelet, a Deployment's
// nginx pod running as real nginx in its node's namespace, a pod's service account reaching the API through the
// relay, and a teardown that leaves no namespace or process behind.
import { CoreV1Api, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestbed, type Testbed } from "../../testing/testbed/testbed.js";

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
    measured.controlPlaneAndLabMs = testbed.timings.controlPlaneAndLabMs;
    measured.nodesReadyMs = testbed.timings.nodesReadyMs;
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

    const nodeName = pod.spec?.nodeName ?? "";
    const version = async (): Promise<string> => {
      const result = await bed.lab.exec(host, "curl", ["-s", "-m", "3", "--cacert", bed.cp.caFile, "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:6443/version"]);
      return result.stdout.trim();
    };
    await bed.runner.cutApi(nodeName);
    expect(await version()).toBe("000");
    await bed.runner.restoreApi(nodeName);
    expect(await version()).toBe("200");
    for (const pid of bed.runner.relayPids()) seenPids.add(pid);
    await bed.kubectl(["delete", "pod", "cli", "-n", namespace, "--wait=false"]);
  });

  it("runs init containers and a sidecar, resolves env, maps mounts, follows ConfigMap updates, honours preStop", async () => {
    const bed = testbed;
    if (bed === undefined) throw new Error("no test bed");
    const manifest = `
apiVersion: v1
kind: Secret
metadata: { name: creds, namespace: ${namespace} }
stringData: { password: s3cret }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: settings, namespace: ${namespace} }
data: { mode: edge }
---
apiVersion: v1
kind: Pod
metadata: { name: envpod, namespace: ${namespace} }
spec:
  terminationGracePeriodSeconds: 10
  initContainers:
    - name: init
      image: ${bed.imageForOurs}
      command: ["sh", "-c", "echo done > /data/init.txt"]
      volumeMounts: [{ name: data, mountPath: /data }]
    - { name: sidecar, image: "${bed.imageForOurs}", restartPolicy: Always, command: ["sleep", "3600"] }
  containers:
    - name: main
      image: ${bed.imageForOurs}
      command: ["sh", "-c", "env > /data/env.txt; exec sleep 3600"]
      env:
        - { name: LITERAL, value: hello }
        - { name: GREETING, value: "$(LITERAL)-$(MY_NODE)" }
        - { name: MY_NODE, valueFrom: { fieldRef: { fieldPath: spec.nodeName } } }
        - { name: MY_IP, valueFrom: { fieldRef: { fieldPath: status.podIP } } }
        - { name: PASSWORD, valueFrom: { secretKeyRef: { name: creds, key: password } } }
        - { name: MODE, valueFrom: { configMapKeyRef: { name: settings, key: mode } } }
      readinessProbe:
        exec: { command: ["test", "-s", "/data/env.txt"] }
        periodSeconds: 1
      lifecycle:
        preStop: { exec: { command: ["sleep", "2"] } }
      volumeMounts: [{ name: data, mountPath: /data }, { name: settings, mountPath: /settings }]
  volumes: [{ name: data, emptyDir: {} }, { name: settings, configMap: { name: settings } }]
`;
    const apply = await bed.kubectl(["apply", "-f", "-"], { input: manifest });
    expect(apply.code, apply.stderr).toBe(0);
    const pod = await waitFor("envpod to be Ready", 60_000, async () => {
      const current = await core.readNamespacedPod({ name: "envpod", namespace });
      return isPodReady(current) ? current : undefined;
    });
    const nodeName = pod.spec?.nodeName ?? "";
    const dir = bed.runner.podDir(namespace, "envpod");
    if (dir === undefined) throw new Error("the runner has no folder for envpod");
    const env = readFileSync(`${dir}/volumes/data/env.txt`, "utf8");
    expect(env).toContain("LITERAL=hello\n");
    // $(MY_NODE) is defined after GREETING, so, as in the kubelet, it stays unexpanded.
    expect(env).toContain("GREETING=hello-$(MY_NODE)\n");
    expect(env).toContain(`MY_NODE=${nodeName}\n`);
    expect(env).toContain(`MY_IP=${bed.hostOf(nodeName).address}\n`);
    expect(env).toContain("PASSWORD=s3cret\n");
    expect(env).toContain("MODE=edge\n");
    expect(env).toMatch(/^KUBECONFIG=\/.+\/kubeconfig$/m);
    expect(readFileSync(`${dir}/volumes/data/init.txt`, "utf8")).toBe("done\n");
    expect(pod.status?.initContainerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    expect(pod.status?.initContainerStatuses?.[1]?.state?.running).toBeDefined();
    const modeFile = `${dir}/volumes/settings/mode`;
    expect(readFileSync(modeFile, "utf8")).toBe("edge");
    const patch = await bed.kubectl(["patch", "configmap", "settings", "-n", namespace, "--type=merge", "-p", '{"data":{"mode":"core"}}']);
    expect(patch.code, patch.stderr).toBe(0);
    await waitFor("the mounted ConfigMap to follow the update", 30_000, async () => (readFileSync(modeFile, "utf8") === "core" ? true : undefined));
    const main = bed.runner.processes().find((process) => process.pod === "envpod");
    if (main === undefined) throw new Error("no process for envpod");
    seenPids.add(main.pid);

    const deleting = Date.now();
    await bed.kubectl(["delete", "pod", "envpod", "-n", namespace, "--wait=false"]);
    await waitFor("envpod to disappear", 30_000, async () =>
      core.readNamespacedPod({ name: "envpod", namespace }).then(() => undefined, (error: unknown) => ((error as { code?: number }).code === 404 ? true : undefined)));
    measured.preStopDeleteMs = Date.now() - deleting;
    expect(measured.preStopDeleteMs).toBeGreaterThanOrEqual(2_000);
    expect(measured.preStopDeleteMs).toBeLessThan(10_000);
    expect(isProcessAlive(main.pid)).toBe(false);
  });

  it("restarts a crashing container with back-off, kills one that fails its liveness probe, and refuses images it cannot run", async () => {
    const bed = testbed;
    if (bed === undefined) throw new Error("no test bed");
    const manifest = `
apiVersion: v1
kind: Pod
metadata: { name: crasher, namespace: ${namespace} }
spec:
  terminationGracePeriodSeconds: 1
  containers: [{ name: main, image: ${bed.imageForOurs}, args: ["no-such-command"] }]
---
apiVersion: v1
kind: Pod
metadata: { name: unhealthy, namespace: ${namespace} }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: nginx
      image: nginx
      livenessProbe: { httpGet: { path: /, port: 81 }, periodSeconds: 1, failureThreshold: 2 }
---
apiVersion: v1
kind: Pod
metadata: { name: busybox, namespace: ${namespace} }
spec:
  containers: [{ name: main, image: busybox:1.36, command: ["sleep", "3600"] }]
`;
    const apply = await bed.kubectl(["apply", "-f", "-"], { input: manifest });
    expect(apply.code, apply.stderr).toBe(0);
    const crashed = await waitFor("crasher to restart twice", 60_000, async () => {
      const current = await core.readNamespacedPod({ name: "crasher", namespace });
      return (current.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2 ? current : undefined;
    });
    const status = crashed.status?.containerStatuses?.[0];
    expect(status?.lastState?.terminated?.exitCode).not.toBe(0);
    expect(status?.ready).toBe(false);
    const unhealthy = await waitFor("unhealthy to be restarted by its liveness probe", 60_000, async () => {
      const current = await core.readNamespacedPod({ name: "unhealthy", namespace });
      return (current.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? current : undefined;
    });
    expect(unhealthy.status?.containerStatuses?.[0]?.lastState?.terminated).toBeDefined();
    const refused = await waitFor("busybox to fail", 30_000, async () => {
      const current = await core.readNamespacedPod({ name: "busybox", namespace });
      return current.status?.phase === "Failed" ? current : undefined;
    });
    expect(refused.status?.reason).toBe("ImageNotSupportedByTestbed");
    expect(refused.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe("ImageNotSupportedByTestbed");
    await bed.kubectl(["delete", "pod", "crasher", "unhealthy", "busybox", "-n", namespace, "--wait=false"]);
  });

  it("keeps nodes and pods working across an API server restart", async () => {
    const bed = testbed;
    if (bed === undefined) throw new Error("no test bed");
    await bed.cp.stopApiServer();
    await new Promise((resolveWait) => setTimeout(resolveWait, 2_000));
    await bed.cp.startApiServer();
    const manifest = `
apiVersion: v1
kind: Pod
metadata: { name: plain-nginx, namespace: ${namespace} }
spec:
  containers:
    - name: nginx
      image: docker.io/library/nginx:1.27
      readinessProbe: { httpGet: { path: /healthz, port: 80 }, periodSeconds: 1 }
`;
    const apply = await bed.kubectl(["apply", "-f", "-"], { input: manifest });
    expect(apply.code, apply.stderr).toBe(0);
    const pod = await waitFor("plain-nginx to be Ready after the restart", 60_000, async () => {
      const current = await core.readNamespacedPod({ name: "plain-nginx", namespace });
      return isPodReady(current) ? current : undefined;
    });
    const nodeName = pod.spec?.nodeName ?? "";
    const answer = await bed.lab.httpGet(bed.lab.client, `http://${bed.hostOf(nodeName).address}/`);
    expect(answer.status).toBe(200);
    expect(answer.body.trim()).toBe(nodeName);
    const nodes = await bed.kubectl(["get", "nodes", "--no-headers"]);
    expect(nodes.stdout.trim().split("\n").every((line) => line.split(/\s+/)[1] === "Ready")).toBe(true);
    for (const process of bed.runner.processes()) seenPids.add(process.pid);
    // Every pod shares its node's namespace: free port 80 for the tests that follow.
    const removal = await bed.kubectl(["delete", "pod", "plain-nginx", "-n", namespace, "--timeout=30s"]);
    expect(removal.code, removal.stderr).toBe(0);
  });

  it("runs a hostNetwork DaemonSet's pod on every node, each answering with its node's name", async () => {
    const bed = testbed;
    if (bed === undefined) throw new Error("no test bed");
    const manifest = `
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: edge, namespace: ${namespace} }
spec:
  selector: { matchLabels: { app: edge } }
  template:
    metadata: { labels: { app: edge } }
    spec:
      hostNetwork: true
      terminationGracePeriodSeconds: 5
      containers:
        - name: nginx
          image: nginx:1.27
          ports: [{ containerPort: 8080, name: http }]
          readinessProbe: { tcpSocket: { port: http }, periodSeconds: 1 }
          volumeMounts: [{ name: conf, mountPath: /etc/nginx/conf.d/edge.conf, subPath: edge.conf }]
      volumes: [{ name: conf, configMap: { name: edge-conf } }]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: edge-conf, namespace: ${namespace} }
data:
  edge.conf: |
    server { listen 8080; location / { default_type text/plain; return 200 "edge $server_addr\\n"; } }
`;
    const applied = Date.now();
    const apply = await bed.kubectl(["apply", "-f", "-"], { input: manifest });
    expect(apply.code, apply.stderr).toBe(0);
    const pods = await waitFor("three Ready edge pods", 60_000, async () => {
      const list = await core.listNamespacedPod({ namespace, labelSelector: "app=edge" });
      return list.items.length === 3 && list.items.every(isPodReady) ? list.items : undefined;
    });
    measured.daemonSetReadyMs = Date.now() - applied;
    expect(pods.map((pod) => pod.spec?.nodeName).sort()).toEqual(["node-1", "node-2", "node-3"]);
    for (const name of bed.nodeNames) {
      const address = bed.hostOf(name).address;
      const answer = await bed.lab.httpGet(bed.lab.client, `http://${address}:8080/`);
      expect(answer.status).toBe(200);
      expect(answer.body.trim()).toBe(`edge ${address}`);
    }
    for (const process of bed.runner.processes()) seenPids.add(process.pid);
    const removal = await bed.kubectl(["delete", "daemonset", "edge", "-n", namespace, "--wait=false"]);
    expect(removal.code, removal.stderr).toBe(0);
  });

  it("stops a node's pods with the node, restarts them with it, and stops them when the Node is deleted", async () => {
    const bed = testbed;
    if (bed === undefined) throw new Error("no test bed");
    const manifest = `
apiVersion: v1
kind: Pod
metadata: { name: pinned, namespace: ${namespace} }
spec:
  nodeName: node-3
  terminationGracePeriodSeconds: 2
  containers: [{ name: nginx, image: nginx, readinessProbe: { httpGet: { path: /healthz, port: 80 }, periodSeconds: 1 } }]
`;
    const apply = await bed.kubectl(["apply", "-f", "-"], { input: manifest });
    expect(apply.code, apply.stderr).toBe(0);
    const pinnedPid = (): Promise<number | undefined> =>
      Promise.resolve(bed.runner.processes().find((process) => process.pod === "pinned")?.pid);
    const first = await waitFor("pinned to run", 30_000, pinnedPid);
    seenPids.add(first);
    await bed.runner.stopNode("node-3");
    expect(isProcessAlive(first)).toBe(false);
    await bed.runner.startNode("node-3");
    const second = await waitFor("pinned to run again", 30_000, pinnedPid);
    seenPids.add(second);
    expect(second).not.toBe(first);
    const answer = await waitFor("node-3 to serve again", 30_000, async () => {
      const got = await bed.lab.httpGet(bed.lab.client, `http://${bed.hostOf("node-3").address}/`);
      return got.status === 200 ? got : undefined;
    });
    expect(answer.body.trim()).toBe("node-3");

    const removal = await bed.kubectl(["delete", "node", "node-3", "--wait=false"]);
    expect(removal.code, removal.stderr).toBe(0);
    await waitFor("pinned's process to stop with its Node", 30_000, async () => (isProcessAlive(second) ? undefined : true));
  });

  it("tears down every namespace and process it started", async () => {
    const bed = testbed;
    if (bed === undefined) throw new Error("no test bed");
    const runnerDir = bed.runner.dir;
    // By now the bed has run for longer than two heartbeat periods: a fresh renewTime means the leases are renewed.
    const lease = await bed.kubectl(["get", "lease", "-n", "kube-node-lease", "node-2", "-o", "jsonpath={.spec.renewTime}"]);
    expect(Date.now() - Date.parse(lease.stdout)).toBeLessThan(15_000);
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

// A second, smaller bed with a short node-monitor grace period: the node lifecycle controller must see a silent node
// as lost, and a node whose kubelet returns must bring its running pods back to Ready.
describe("e2e test bed node loss", () => {
  let testbed: Testbed | undefined;

  afterAll(async () => {
    await testbed?.stop();
  });

  it("a node that stops heartbeating turns Unknown, its pod not Ready, and both recover when it returns", async () => {
    const bed = await startTestbed({
      nodes: 2,
      heartbeatIntervalMs: 2_000,
      controlPlane: { controllerManagerArgs: ["--node-monitor-grace-period=10s"] },
    });
    testbed = bed;
    const kc = new KubeConfig();
    kc.loadFromFile(bed.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    const manifest = `
apiVersion: v1
kind: Pod
metadata: { name: survivor, namespace: default }
spec:
  nodeName: node-2
  containers: [{ name: nginx, image: nginx, readinessProbe: { httpGet: { path: /healthz, port: 80 }, periodSeconds: 1 } }]
`;
    const apply = await bed.kubectl(["apply", "-f", "-"], { input: manifest });
    expect(apply.code, apply.stderr).toBe(0);
    const podReady = async (want: string): Promise<true | undefined> => {
      const pod = await core.readNamespacedPod({ name: "survivor", namespace: "default" });
      return pod.status?.conditions?.find((condition) => condition.type === "Ready")?.status === want ? true : undefined;
    };
    const nodeReady = async (want: string): Promise<true | undefined> => {
      const node = await core.readNode({ name: "node-2" });
      return node.status?.conditions?.find((condition) => condition.type === "Ready")?.status === want ? true : undefined;
    };
    await waitFor("survivor to be Ready", 30_000, () => podReady("True"));
    const pid = bed.runner.processes().find((process) => process.pod === "survivor")?.pid;

    const silenced = Date.now();
    await bed.runner.stopNode("node-2", { keepPods: true });
    await waitFor("node-2 to turn Unknown", 60_000, () => nodeReady("Unknown"));
    const lostAfterMs = Date.now() - silenced;
    await waitFor("survivor to be marked not Ready", 30_000, () => podReady("False"));
    expect(lostAfterMs).toBeGreaterThanOrEqual(8_000);
    expect(pid !== undefined && isProcessAlive(pid)).toBe(true);

    await bed.runner.startNode("node-2");
    await waitFor("node-2 to be Ready again", 30_000, () => nodeReady("True"));
    await waitFor("survivor to be Ready again", 30_000, () => podReady("True"));
    expect(bed.runner.processes().find((process) => process.pod === "survivor")?.pid).toBe(pid);
    process.stdout.write(`[smoke] node loss noticed after ${lostAfterMs} ms\n`);
  });
});
