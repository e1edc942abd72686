// A real Kubernetes control plane for host tests: etcd, kube-apiserver, kube-controller-manager and kube-scheduler as
// plain processes on 127.0.0.1, with their own PKI, in one temp dir per run. Each component runs in its own process
// group with its log in the temp dir; the API server and etcd can be stopped and started again on the same ports and
// data, so tests can take the API away from a running cluster. Its parts are in control-plane/.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { locateBinaries, type TestBedBinaries } from "./binaries.js";
import { defineComponents, prepareLayout, type Components, type ControlPlaneLayout, type ExtraComponentArgs } from "./control-plane/components.js";
import { makeControlPlaneDir, trackComponents, type Component, type ComponentName, type ComponentProcesses, type StopOptions } from "./control-plane/processes.js";
import { adminTls, waitForDefaultServiceAccount, waitForEtcdHealth, waitForHealthz, waitForReadyz } from "./control-plane/readiness.js";
import { writeKubeconfig } from "./kubeconfig.js";
import { issueCertificate, type ControlPlanePki } from "./pki.js";

export type { ComponentName, StopOptions } from "./control-plane/processes.js";

export interface ControlPlaneOptions extends ExtraComponentArgs {
  readonly readyTimeoutMs?: number;
  // False for a test bed that must outlive this process (`testbed up`); it is then torn down with
  // destroyControlPlaneDir(). True kills everything when this process exits, crashes or is killed.
  readonly isTiedToProcess?: boolean;
}

export interface KubectlResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export interface KubectlOptions {
  readonly input?: string;
  readonly kubeconfig?: string;
  readonly timeoutMs?: number;
}

export interface ControlPlane {
  readonly dir: string;
  readonly server: string;
  readonly apiPort: number;
  readonly etcdUrl: string;
  readonly caFile: string;
  readonly adminKubeconfig: string;
  readonly pki: ControlPlanePki;
  readonly binaries: TestBedBinaries;
  readonly versions: { readonly kubernetes: string; readonly etcd: string };
  readonly logs: Readonly<Record<ComponentName, string>>;
  readonly startup: { readonly readyzMs: number; readonly totalMs: number };
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  pids(): readonly number[];
  rssBytes(): Promise<Readonly<Record<ComponentName, number>>>;
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  stopEtcd(): Promise<void>;
  startEtcd(): Promise<void>;
  // The logs die with the temp dir; a failing suite passes saveLogsTo to keep them for the post-mortem.
  stop(options?: StopOptions): Promise<void>;
}

const defaultReadyTimeoutMs = 120_000;

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binaries = locateBinaries();
  const started = Date.now();
  const readyTimeoutMs = options.readyTimeoutMs ?? defaultReadyTimeoutMs;
  const dir = await makeControlPlaneDir();
  const processes = trackComponents(dir, options.isTiedToProcess ?? true);
  try {
    const layout = await prepareLayout(dir);
    const components = defineComponents(processes, binaries, layout, dir, options);
    const tls = adminTls(layout.pki);
    const waitForEtcd = (): Promise<void> => waitForEtcdHealth(components.etcd, layout.etcdUrl, readyTimeoutMs);
    const waitForApiServer = (): Promise<void> => waitForReadyz(components.apiServer, layout.server, tls, readyTimeoutMs);

    await processes.start(components.etcd);
    await waitForEtcd();
    await processes.start(components.apiServer);
    await waitForApiServer();
    const readyzMs = Date.now() - started;
    await Promise.all([processes.start(components.controllerManager), processes.start(components.scheduler)]);
    await Promise.all([
      waitForHealthz(components.controllerManager, layout.controllerManagerPort, readyTimeoutMs),
      waitForHealthz(components.scheduler, layout.schedulerPort, readyTimeoutMs),
    ]);

    const kubectl = (args: readonly string[], kubectlOptions: KubectlOptions = {}): Promise<KubectlResult> =>
      runKubectl(binaries.kubectl, kubectlOptions.kubeconfig ?? layout.kubeconfigs.admin, args, kubectlOptions);
    await waitForDefaultServiceAccount(kubectl, components.controllerManager, readyTimeoutMs);
    const startup = { readyzMs, totalMs: Date.now() - started };
    return controlPlaneHandle({ dir, layout, binaries, components, processes, kubectl, startup, waitForEtcd, waitForApiServer });
  } catch (error) {
    await processes.stopAll();
    throw error;
  }
}

interface RunningControlPlane {
  readonly dir: string;
  readonly layout: ControlPlaneLayout;
  readonly binaries: TestBedBinaries;
  readonly components: Components;
  readonly processes: ComponentProcesses;
  readonly kubectl: ControlPlane["kubectl"];
  readonly startup: ControlPlane["startup"];
  readonly waitForEtcd: () => Promise<void>;
  readonly waitForApiServer: () => Promise<void>;
}

function controlPlaneHandle(running: RunningControlPlane): ControlPlane {
  const { layout, binaries, components, processes } = running;
  return {
    dir: running.dir,
    server: layout.server,
    apiPort: layout.apiPort,
    etcdUrl: layout.etcdUrl,
    caFile: layout.pki.ca.certFile,
    adminKubeconfig: layout.kubeconfigs.admin,
    pki: layout.pki,
    binaries,
    versions: { kubernetes: binaries.versions.kubernetes, etcd: binaries.versions.etcd },
    logs: layout.logs,
    startup: running.startup,
    kubectl: running.kubectl,
    pids: () => processes.pids(),
    async rssBytes() {
      return {
        etcd: rssOf(components.etcd),
        "kube-apiserver": rssOf(components.apiServer),
        "kube-controller-manager": rssOf(components.controllerManager),
        "kube-scheduler": rssOf(components.scheduler),
      };
    },
    stopApiServer: () => processes.stop(components.apiServer),
    async startApiServer() {
      await processes.start(components.apiServer);
      await running.waitForApiServer();
    },
    stopEtcd: () => processes.stop(components.etcd),
    async startEtcd() {
      await processes.start(components.etcd);
      await running.waitForEtcd();
    },
    stop: (stopOptions) => processes.stopAll(stopOptions),
  };
}

function rssOf(component: Component): number {
  const pid = component.child?.pid;
  if (pid === undefined) return 0;
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

function runKubectl(
  kubectl: string,
  kubeconfig: string,
  args: readonly string[],
  options: KubectlOptions,
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectl, [`--kubeconfig=${kubeconfig}`, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const note = signal === null ? "" : `\nkubectl killed by ${signal} (timeout ${timeoutMs} ms?)`;
      resolve({ stdout, stderr: stderr + note, code: code ?? 128 });
    });
    child.stdin.end(options.input ?? "");
  });
}

// --- credentials for other identities -------------------------------------------------------------------------------

export interface TokenOptions {
  readonly audiences?: readonly string[];
  readonly expirationSeconds?: number;
}

// A real TokenRequest, as a kubelet would make for a pod: bound, expiring, signed by the API server.
export async function mintToken(
  cp: ControlPlane,
  namespace: string,
  serviceAccount: string,
  audiences?: readonly string[],
  expirationSeconds = 3_600,
): Promise<string> {
  const args = ["create", "token", serviceAccount, "-n", namespace, `--duration=${expirationSeconds}s`];
  for (const audience of audiences ?? []) args.push(`--audience=${audience}`);
  const result = await cp.kubectl(args);
  if (result.code !== 0) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} failed: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

export interface ServiceAccountKubeconfigOptions extends TokenOptions {
  // Pods in a node's network namespace reach the API server through a relay at another address; the API server's
  // certificate names 127.0.0.1, so only the port differs.
  readonly server?: string;
}

let kubeconfigSerial = 0;

export async function kubeconfigForServiceAccount(
  cp: ControlPlane,
  namespace: string,
  serviceAccount: string,
  options: ServiceAccountKubeconfigOptions = {},
): Promise<string> {
  const token = await mintToken(cp, namespace, serviceAccount, options.audiences, options.expirationSeconds);
  kubeconfigSerial += 1;
  return writeKubeconfig(join(cp.dir, "kubeconfigs", `sa-${namespace}-${serviceAccount}-${kubeconfigSerial}.kubeconfig`), {
    server: options.server ?? cp.server,
    caFile: cp.caFile,
    userName: `system:serviceaccount:${namespace}:${serviceAccount}`,
    credentials: { kind: "token", token },
    namespace,
  });
}

export interface UserIdentity {
  readonly commonName: string;
  readonly organizations?: readonly string[];
}

// A client certificate from the test bed's CA, e.g. CN=system:node:<name>, O=system:nodes for a node's kubelet.
export async function kubeconfigForUser(
  cp: ControlPlane,
  identity: UserIdentity,
  options: { readonly server?: string } = {},
): Promise<string> {
  kubeconfigSerial += 1;
  const name = `user-${identity.commonName.replace(/[^a-zA-Z0-9-]/g, "-")}-${kubeconfigSerial}`;
  const pair = await issueCertificate(cp.pki.ca, cp.pki.dir, {
    name,
    commonName: identity.commonName,
    ...(identity.organizations === undefined ? {} : { organizations: identity.organizations }),
    usage: "client",
  });
  return writeKubeconfig(join(cp.dir, "kubeconfigs", `${name}.kubeconfig`), {
    server: options.server ?? cp.server,
    caFile: cp.caFile,
    userName: identity.commonName,
    credentials: { kind: "client-certificate", ...pair },
  });
}
