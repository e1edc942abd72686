// The test bed's control plane is real Kubernetes: these tests prove the parts every other e2e test leans on (the
// version, CRDs, RBAC with real ServiceAccount tokens, the controller-manager and scheduler, restarts, cleanup).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { locateBinaries, MissingBinaryError } from "../../testing/testbed/binaries.js";
import {
  kubeconfigForServiceAccount,
  kubeconfigForUser,
  mintToken,
  startControlPlane,
  type ControlPlane,
} from "../../testing/testbed/control-plane.js";
import { destroyControlPlaneDir, processesReferencing } from "../../testing/testbed/control-plane/processes.js";

const namespace = `cp-test-${process.pid}`;

const crdYaml = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.e2e.ha-nginx.io
spec:
  group: e2e.ha-nginx.io
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: { type: object, properties: { size: { type: integer } } }
`;

const deploymentYaml = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: ${namespace} }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: web, image: nginx }]
`;

const podReaderYaml = `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: pod-reader, namespace: ${namespace} }
rules: [{ apiGroups: [""], resources: [pods], verbs: [get, list] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: reader-reads-pods, namespace: ${namespace} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader }
subjects: [{ kind: ServiceAccount, name: reader, namespace: ${namespace} }]
`;

async function eventually<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

interface OwnedObject {
  readonly metadata: { readonly name: string; readonly ownerReferences?: readonly { kind: string; name: string }[] };
}
interface PodObject extends OwnedObject {
  readonly spec: { readonly nodeName?: string };
  readonly status: {
    readonly phase?: string;
    readonly conditions?: readonly { type: string; status: string; reason?: string }[];
  };
}

function decodeJwtPayload(token: string): Record<string, unknown> {
  const payload = token.split(".")[1];
  if (payload === undefined) throw new Error("not a JWT");
  const decoded: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  if (typeof decoded !== "object" || decoded === null) throw new Error("JWT payload is not an object");
  return decoded as Record<string, unknown>;
}

describe("binaries", () => {
  it("a missing build fails with the command that fixes it, never a skip", () => {
    const emptyCache = mkdtempSync(join(tmpdir(), "ha-nginx-empty-cache-"));
    try {
      expect(() => locateBinaries({ HA_NGINX_CACHE: emptyCache })).toThrow(MissingBinaryError);
      expect(() => locateBinaries({ HA_NGINX_CACHE: emptyCache })).toThrow(/run npm run k8s-binaries/);
    } finally {
      rmSync(emptyCache, { recursive: true, force: true });
    }
  });
});

describe("start-up failures", () => {
  it("a component that dies at start fails with its log tail and leaves nothing behind", async () => {
    const failure = await startControlPlane({ apiServerArgs: ["--no-such-flag"] }).then(
      () => new Error("started anyway"),
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(Error);
    expect(String(failure)).toMatch(/kube-apiserver exited/);
    expect(String(failure)).toMatch(/unknown flag: --no-such-flag/);
    const dir = /(\/\S*ha-nginx-cp-[^/\s]+)\/kube-apiserver\.log/.exec(String(failure))?.[1];
    expect(dir).toBeDefined();
    expect(existsSync(dir ?? "")).toBe(false);
    expect(await processesReferencing(dir ?? "")).toEqual([]);
  });
});

describe("control plane", () => {
  let cp: ControlPlane;

  beforeAll(async () => {
    cp = await startControlPlane();
    const rss = await cp.rssBytes();
    const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
    console.info(
      `control plane: /readyz after ${cp.startup.readyzMs} ms, all components ready after ${cp.startup.totalMs} ms; ` +
        `RSS ${Object.entries(rss).map(([name, bytes]) => `${name} ${mib(bytes)}`).join(", ")}, ` +
        `total ${mib(Object.values(rss).reduce((sum, bytes) => sum + bytes, 0))}`,
    );
    const created = await cp.kubectl(["create", "namespace", namespace]);
    expect(created.code, created.stderr).toBe(0);
  });

  afterAll(async () => {
    await cp?.stop();
  });

  it("serves the pinned Kubernetes version from loopback only", async () => {
    const result = await cp.kubectl(["version", "-o", "json"]);
    expect(result.code).toBe(0);
    const version = JSON.parse(result.stdout) as { serverVersion?: { gitVersion?: string } };
    expect(version.serverVersion?.gitVersion).toBe("v1.37.2");
    expect(cp.versions).toEqual({ kubernetes: "v1.37.2", etcd: "v3.6.16" });
    expect(cp.server).toBe(`https://127.0.0.1:${cp.apiPort}`);
    const pids = cp.pids();
    expect(pids).toHaveLength(4);
    const listening = execFileSync("ss", ["-Hltnp"], { encoding: "utf8" })
      .split("\n")
      .filter((line) => pids.some((pid) => line.includes(`pid=${pid},`)))
      .map((line) => line.trim().split(/\s+/)[3] ?? "");
    // etcd's client and peer ports, and one secure port each for the API server, controller-manager and scheduler.
    expect(listening.length).toBeGreaterThanOrEqual(5);
    for (const address of listening) expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("establishes a CRD applied from YAML and stores its objects", async () => {
    const applied = await cp.kubectl(["apply", "-f", "-"], { input: crdYaml });
    expect(applied.code, applied.stderr).toBe(0);
    const established = await cp.kubectl([
      "wait", "--for=condition=Established", "crd/widgets.e2e.ha-nginx.io", "--timeout=60s",
    ]);
    expect(established.code, established.stderr).toBe(0);
    const widget = `{"apiVersion":"e2e.ha-nginx.io/v1","kind":"Widget","metadata":{"name":"w1","namespace":"${namespace}"},"spec":{"size":3}}`;
    expect((await cp.kubectl(["apply", "-f", "-"], { input: widget })).code).toBe(0);
    const size = await cp.kubectl(["get", "widget", "w1", "-n", namespace, "-o", "jsonpath={.spec.size}"]);
    expect(size.stdout).toBe("3");
  });

  it("issues bound ServiceAccount tokens through TokenRequest", async () => {
    expect((await cp.kubectl(["create", "serviceaccount", "minted", "-n", namespace])).code).toBe(0);
    const token = await mintToken(cp, namespace, "minted", undefined, 900);
    const claims = decodeJwtPayload(token);
    expect(claims.iss).toBe("https://kubernetes.default.svc.cluster.local");
    expect(claims.sub).toBe(`system:serviceaccount:${namespace}:minted`);
    expect(claims.aud).toEqual(["https://kubernetes.default.svc.cluster.local"]);
    expect(Number(claims.exp) - Number(claims.iat)).toBe(900);

    // A token for another audience is not accepted by the API server.
    const foreign = await kubeconfigForServiceAccount(cp, namespace, "minted", { audiences: ["not-the-api-server"] });
    const rejected = await cp.kubectl(["get", "--raw", "/api"], { kubeconfig: foreign });
    expect(rejected.code).not.toBe(0);
    expect(rejected.stderr).toMatch(/Unauthorized/);
  });

  it("enforces RBAC on a real ServiceAccount token: denied without a binding, allowed with one", async () => {
    expect((await cp.kubectl(["create", "serviceaccount", "reader", "-n", namespace])).code).toBe(0);
    const kubeconfig = await kubeconfigForServiceAccount(cp, namespace, "reader");
    const asReader = (args: readonly string[]) => cp.kubectl([...args, "-n", namespace], { kubeconfig });

    const before = await asReader(["auth", "can-i", "list", "pods"]);
    expect(before.stdout.trim()).toBe("no");
    const denied = await asReader(["get", "pods"]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain("Forbidden");
    expect(denied.stderr).toContain(`system:serviceaccount:${namespace}:reader`);

    const bound = await cp.kubectl(["apply", "-f", "-"], { input: podReaderYaml });
    expect(bound.code, bound.stderr).toBe(0);
    // The authorizer reads RBAC from an informer cache, so the binding takes effect a moment later.
    await eventually("can-i list pods = yes", 30_000, async () =>
      (await asReader(["auth", "can-i", "list", "pods"])).stdout.trim() === "yes" ? true : undefined,
    );
    const allowed = await asReader(["get", "pods"]);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect((await asReader(["auth", "can-i", "delete", "pods"])).stdout.trim()).toBe("no");
  });

  it("runs the controller-manager and scheduler: a Deployment gets a ReplicaSet and an unschedulable Pod", async () => {
    const applied = await cp.kubectl(["apply", "-f", "-"], { input: deploymentYaml });
    expect(applied.code, applied.stderr).toBe(0);
    const getList = async <T>(kind: string): Promise<readonly T[]> => {
      const result = await cp.kubectl(["get", kind, "-n", namespace, "-o", "json"]);
      return result.code === 0 ? (JSON.parse(result.stdout) as { items: T[] }).items : [];
    };
    const replicaSet = await eventually("ReplicaSet owned by the Deployment", 60_000, async () =>
      (await getList<OwnedObject>("replicasets")).find((rs) =>
        rs.metadata.ownerReferences?.some((o) => o.kind === "Deployment" && o.name === "web"),
      ),
    );
    // No nodes exist, so the scheduler's verdict is Unschedulable: proof that it runs and binds nothing.
    const pod = await eventually("Pod marked Unschedulable by the scheduler", 60_000, async () =>
      (await getList<PodObject>("pods")).find(
        (p) =>
          p.metadata.ownerReferences?.some((o) => o.kind === "ReplicaSet" && o.name === replicaSet.metadata.name) &&
          p.status.conditions?.some((c) => c.type === "PodScheduled" && c.reason === "Unschedulable"),
      ),
    );
    expect(pod.status.phase).toBe("Pending");
    expect(pod.spec.nodeName).toBeUndefined();
  });

  it("gives a node identity its own Node and nothing more (Node authorizer, NodeRestriction)", async () => {
    const kubeconfig = await kubeconfigForUser(cp, { commonName: "system:node:n1", organizations: ["system:nodes"] });
    // Tainted, so that the scheduler does not bind the Deployment's pod to it.
    const node = (name: string): string =>
      `{"apiVersion":"v1","kind":"Node","metadata":{"name":"${name}"},"spec":{"taints":[{"key":"e2e","effect":"NoSchedule"}]}}`;
    const own = await cp.kubectl(["create", "-f", "-"], { input: node("n1"), kubeconfig });
    expect(own.code, own.stderr).toBe(0);
    const other = await cp.kubectl(["create", "-f", "-"], { input: node("n2"), kubeconfig });
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain("Forbidden");
    const secrets = await cp.kubectl(["get", "secrets", "-n", namespace], { kubeconfig });
    expect(secrets.stderr).toContain("Forbidden");
  });

  it("stops and restarts the API server and etcd on the same ports, keeping the data", async () => {
    const apiPort = cp.apiPort;
    await cp.stopApiServer();
    const down = await cp.kubectl(["get", "namespace", namespace], { timeoutMs: 20_000 });
    expect(down.code).not.toBe(0);
    expect(down.stderr).toMatch(/refused/);
    await cp.startApiServer();
    expect(cp.apiPort).toBe(apiPort);
    expect((await cp.kubectl(["get", "namespace", namespace])).code).toBe(0);

    await cp.stopEtcd();
    const readyWithoutEtcd = await cp.kubectl(["get", "--raw", "/readyz"], { timeoutMs: 30_000 });
    expect(readyWithoutEtcd.code).not.toBe(0);
    await cp.startEtcd();
    const widget = await eventually("the Widget readable again", 60_000, async () => {
      const result = await cp.kubectl(["get", "widget", "w1", "-n", namespace, "-o", "jsonpath={.spec.size}"]);
      return result.code === 0 ? result.stdout : undefined;
    });
    expect(widget).toBe("3");
    expect(cp.pids()).toHaveLength(4);
  });

  it("stop() kills every component and removes the temp dir, and is idempotent", async () => {
    const pids = cp.pids();
    expect(pids).toHaveLength(4);
    const savedLogs = mkdtempSync(join(tmpdir(), "ha-nginx-cp-logs-"));
    try {
      await cp.stop({ saveLogsTo: savedLogs });
      await cp.stop();
      expect(existsSync(cp.dir)).toBe(false);
      for (const pid of pids) expect(existsSync(`/proc/${pid}`), `pid ${pid}`).toBe(false);
      expect(await processesReferencing(cp.dir)).toEqual([]);
      expect(readFileSync(join(savedLogs, "kube-apiserver.log"), "utf8")).toMatch(/kube-apiserver exited/);
    } finally {
      rmSync(savedLogs, { recursive: true, force: true });
    }
  });
});

// Another process starts a control plane, prints its dir and then dies or walks away, as a crashed test worker or
// `testbed up` would.
async function controlPlaneInChild(isTiedToProcess: boolean): Promise<{ dir: string; kill: () => void; exited: Promise<void> }> {
  const moduleUrl = new URL("../../testing/testbed/control-plane.ts", import.meta.url).href;
  const script = `
    const { startControlPlane } = await import(process.argv[1]);
    const cp = await startControlPlane({ isTiedToProcess: process.argv[2] === "true" });
    console.log("DIR " + cp.dir);
    if (process.argv[2] === "true") setInterval(() => undefined, 1000); else process.exit(0);
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, moduleUrl, String(isTiedToProcess)], {
    cwd: fileURLToPath(new URL("../..", import.meta.url)),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let output = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const dir = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      const match = /^DIR (\S+)$/m.exec(output);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`child exited (${String(code)}) before printing its dir:\n${output}`)));
  });
  return { dir, kill: () => child.kill("SIGKILL"), exited };
}

describe("cleanup beyond stop()", () => {
  it("a test process killed with SIGKILL leaves no component and no temp dir behind", async () => {
    const child = await controlPlaneInChild(true);
    try {
      // Four components and the watchdog.
      expect(await processesReferencing(child.dir)).toHaveLength(5);
      child.kill();
      await child.exited;
      // The watchdog polls every 2 s.
      await eventually("control plane gone", 20_000, async () =>
        !existsSync(child.dir) && (await processesReferencing(child.dir)).length === 0 ? true : undefined,
      );
    } finally {
      child.kill();
      await destroyControlPlaneDir(child.dir);
    }
  });

  it("an untied control plane outlives its process until destroyControlPlaneDir()", async () => {
    const child = await controlPlaneInChild(false);
    await child.exited;
    const survivors = await processesReferencing(child.dir);
    try {
      expect(survivors).toHaveLength(4);
      expect(existsSync(child.dir)).toBe(true);
    } finally {
      await destroyControlPlaneDir(child.dir);
    }
    expect(existsSync(child.dir)).toBe(false);
    await eventually("components gone", 10_000, async () =>
      (await processesReferencing(child.dir)).length === 0 ? true : undefined,
    );
  });
});
