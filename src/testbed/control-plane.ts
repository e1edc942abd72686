// A real Kubernetes control plane for host tests: etcd, kube-apiserver, kube-controller-manager and kube-scheduler as
// plain processes on 127.0.0.1, with their own PKI, in one temp dir per run. Each component runs in its own process
// group with its log in the temp dir; the API server and etcd can be stopped and started again on the same ports and
// data, so tests can take the API away from a running cluster.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { appendFile, copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { locateBinaries, type TestBedBinaries } from "./binaries.js";
import { writeKubeconfig } from "./kubeconfig.js";
import { createControlPlanePki, issueCertificate, serviceClusterIpRange, type ControlPlanePki } from "./pki.js";

export type ComponentName = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler";

export interface ControlPlaneOptions {
  // Appended to the defaults, so a later flag overrides an earlier one (e.g. a shorter --node-monitor-grace-period).
  readonly apiServerArgs?: readonly string[];
  readonly controllerManagerArgs?: readonly string[];
  readonly schedulerArgs?: readonly string[];
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

export interface StopOptions {
  readonly saveLogsTo?: string;
}

const defaultReadyTimeoutMs = 120_000;
// kube-apiserver closes its port at once on SIGTERM but then lingers (~10 s) over hijacked watch connections; the
// closed port is what tests want, so the rest is not worth waiting for.
const stopGraceMs = 3_000;
const pollIntervalMs = 250;
const logTailLines = 40;
const pgidFileName = "pgids";
const tempPrefix = "ha-nginx-cp-";

// Controllers for volumes, autoscaling and dynamic resources have nothing to do here and only cost CPU. Everything a
// Deployment, a DaemonSet, a lost node or a garbage-collected owner needs stays on.
const disabledControllers = [
  "persistentvolume-attach-detach-controller",
  "persistentvolume-binder-controller",
  "persistentvolume-expander-controller",
  "persistentvolume-protection-controller",
  "persistentvolumeclaim-protection-controller",
  "ephemeral-volume-controller",
  "volumeattributesclass-protection-controller",
  "horizontal-pod-autoscaler-controller",
  "resourceclaim-controller",
  "resourcepoolstatusrequest-controller",
  "device-taint-eviction-controller",
  "storage-version-migrator-controller",
  "node-ipam-controller",
];

interface Component {
  readonly name: ComponentName;
  readonly binary: string;
  readonly args: readonly string[];
  readonly logFile: string;
  child: ChildProcess | undefined;
  // Settles once the exit line is in the log, so that saved logs always say how each component ended.
  exitLogged: Promise<void>;
}

// --- process-wide cleanup -------------------------------------------------------------------------------------------

const liveCleanups = new Set<() => void>();
let areExitHooksInstalled = false;

function installExitHooks(): void {
  if (areExitHooksInstalled) return;
  areExitHooksInstalled = true;
  const runAll = (): void => {
    for (const cleanup of liveCleanups) cleanup();
    liveCleanups.clear();
  };
  process.on("exit", runAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      runAll();
      // Re-raise only when nobody else handles it, so the default action (termination) still happens.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

// A SIGKILLed test worker runs no exit hook, so a detached shell watches this process and, when it is gone, kills the
// recorded process groups and removes the dir. It kills a group only if its leader still names the dir, so a
// recycled pid is left alone.
const watchdogScript = `
while kill -0 "$1" 2>/dev/null; do sleep 2; done
for p in $(cat "$2/${pgidFileName}" 2>/dev/null); do
  if grep -qaF -- "$2" "/proc/$p/cmdline" 2>/dev/null; then kill -s KILL -- "-$p" 2>/dev/null; fi
done
rm -rf -- "$2"
`;

function startWatchdog(dir: string): ChildProcess {
  const watchdog = spawn("sh", ["-c", watchdogScript, "ha-nginx-cp-watchdog", String(process.pid), dir], {
    detached: true,
    stdio: "ignore",
  });
  watchdog.unref();
  return watchdog;
}

// Tears down a control plane left running by another process (`testbed down`).
export async function destroyControlPlaneDir(dir: string): Promise<void> {
  if (!dir.startsWith(join(tmpdir(), tempPrefix))) throw new Error(`${dir} is not a control-plane temp dir`);
  const pgids = await readFile(join(dir, pgidFileName), "utf8").catch(() => "");
  for (const pgid of pgids.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
    const cmdline = await readFile(`/proc/${pgid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(dir)) signalGroup(Number(pgid), "SIGKILL");
  }
  // Stragglers outside the recorded groups, e.g. a component whose start was cut short.
  for (const pid of await processesReferencing(dir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 5 });
}

// Pids of live processes whose command line mentions `text` (every component names its temp dir in its flags).
export async function processesReferencing(text: string): Promise<readonly number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

// --- small helpers --------------------------------------------------------------------------------------------------

// All ports are held open at once, so the kernel cannot hand out the same one twice.
async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      const server = createServer();
      return new Promise<typeof server>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve(server));
      });
    }),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

function logTail(path: string): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-logTailLines).join("\n");
  } catch {
    return "(no log)";
  }
}

interface ProbeResult {
  readonly status: number;
  readonly body: string;
}

interface TlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly rejectUnauthorized: boolean;
}

function probe(url: string, tls?: TlsMaterial): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const onResponse = (response: IncomingMessage): void => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      response.on("error", reject);
    };
    const req = url.startsWith("https:")
      ? httpsRequest(url, { ...tls, timeout: 5_000 }, onResponse)
      : httpRequest(url, { timeout: 5_000 }, onResponse);
    req.on("timeout", () => req.destroy(new Error("probe timed out")));
    req.on("error", reject);
    req.end();
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(
  what: string,
  component: Component,
  timeoutMs: number,
  check: () => Promise<string | true>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    const child = component.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${component.name} exited (${String(child?.exitCode ?? child?.signalCode)}) before ${what}; ` +
          `tail of ${component.logFile}:\n${logTail(component.logFile)}`,
      );
    }
    try {
      const outcome = await check();
      if (outcome === true) return;
      last = outcome;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await delay(pollIntervalMs);
  }
  throw new Error(
    `${what} not reached within ${timeoutMs} ms (last: ${last}); tail of ${component.logFile}:\n${logTail(component.logFile)}`,
  );
}

// --- the control plane ----------------------------------------------------------------------------------------------

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binaries = locateBinaries();
  const started = Date.now();
  const readyTimeoutMs = options.readyTimeoutMs ?? defaultReadyTimeoutMs;
  const isTiedToProcess = options.isTiedToProcess ?? true;
  const dir = await mkdtemp(join(tmpdir(), tempPrefix));
  const components = new Map<ComponentName, Component>();
  let watchdog: ChildProcess | undefined;
  let isStopped = false;

  const recordPgids = async (): Promise<void> => {
    const pgids = [...components.values()].flatMap((c) => (c.child?.pid === undefined ? [] : [c.child.pid]));
    await writeFile(join(dir, pgidFileName), `${pgids.join("\n")}\n`);
  };

  const killAllNow = (): void => {
    if (watchdog?.pid !== undefined) signalGroup(watchdog.pid, "SIGKILL");
    for (const component of components.values()) {
      if (component.child?.pid !== undefined) signalGroup(component.child.pid, "SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  };

  if (isTiedToProcess) {
    installExitHooks();
    liveCleanups.add(killAllNow);
    watchdog = startWatchdog(dir);
  }

  const stopComponent = async (component: Component): Promise<void> => {
    const child = component.child;
    if (child === undefined) return;
    await stopChild(child, stopGraceMs);
    await component.exitLogged;
    component.child = undefined;
    if (!isStopped) await recordPgids();
  };

  // The exit hook and the watchdog stay armed until the end, so a process that dies halfway through stop() still
  // leaves nothing behind.
  const stop = async (stopOptions: StopOptions = {}): Promise<void> => {
    if (isStopped) return;
    isStopped = true;
    // Reverse start order: clients before the API server, the API server before etcd.
    for (const name of ["kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"] as const) {
      const component = components.get(name);
      if (component !== undefined) await stopComponent(component);
    }
    if (stopOptions.saveLogsTo !== undefined) await saveLogs(components.values(), stopOptions.saveLogsTo);
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    if (watchdog !== undefined) await stopChild(watchdog, 0);
    liveCleanups.delete(killAllNow);
  };

  try {
    const pki = await createControlPlanePki(join(dir, "pki"));
    const [apiPort, etcdClientPort, etcdPeerPort, controllerManagerPort, schedulerPort] = await freeLoopbackPorts(5);
    if (
      apiPort === undefined ||
      etcdClientPort === undefined ||
      etcdPeerPort === undefined ||
      controllerManagerPort === undefined ||
      schedulerPort === undefined
    ) {
      throw new Error("could not reserve five loopback ports");
    }
    const server = `https://127.0.0.1:${apiPort}`;
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const kubeconfigDir = join(dir, "kubeconfigs");
    await mkdir(kubeconfigDir, { mode: 0o700 });
    const kubeconfigFor = (name: string, pair: { certFile: string; keyFile: string }): Promise<string> =>
      writeKubeconfig(join(kubeconfigDir, `${name}.kubeconfig`), {
        server,
        caFile: pki.ca.certFile,
        userName: name,
        credentials: { kind: "client-certificate", ...pair },
      });
    const [adminKubeconfig, controllerManagerKubeconfig, schedulerKubeconfig] = await Promise.all([
      kubeconfigFor("admin", pki.admin),
      kubeconfigFor("kube-controller-manager", pki.controllerManager),
      kubeconfigFor("kube-scheduler", pki.scheduler),
    ]);
    const logs: Record<ComponentName, string> = {
      etcd: join(dir, "etcd.log"),
      "kube-apiserver": join(dir, "kube-apiserver.log"),
      "kube-controller-manager": join(dir, "kube-controller-manager.log"),
      "kube-scheduler": join(dir, "kube-scheduler.log"),
    };
    const define = (name: ComponentName, binary: string, args: readonly string[]): Component => {
      const component: Component = { name, binary, args, logFile: logs[name], child: undefined, exitLogged: Promise.resolve() };
      components.set(name, component);
      return component;
    };

    const etcd = define("etcd", binaries.etcd, [
      "--name=test-bed",
      `--data-dir=${join(dir, "etcd-data")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${etcdPeerUrl}`,
      `--initial-advertise-peer-urls=${etcdPeerUrl}`,
      `--initial-cluster=test-bed=${etcdPeerUrl}`,
      // Durability is worthless in a temp dir that dies with the test; fsync stalls are not.
      "--unsafe-no-fsync=true",
      "--quota-backend-bytes=268435456",
      "--log-level=warn",
    ]);

    const apiServer = define("kube-apiserver", binaries.kubeApiserver, [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, "apiserver-certs")}`,
      `--tls-cert-file=${pki.apiServer.certFile}`,
      `--tls-private-key-file=${pki.apiServer.keyFile}`,
      `--client-ca-file=${pki.ca.certFile}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${pki.serviceAccount.publicKeyFile}`,
      `--service-account-signing-key-file=${pki.serviceAccount.privateKeyFile}`,
      `--service-cluster-ip-range=${serviceClusterIpRange}`,
      "--authorization-mode=Node,RBAC",
      // As kubeadm does: a node's credentials may only touch that node and its own pods.
      "--enable-admission-plugins=NodeRestriction",
      "--allow-privileged=true",
      // The priority-and-fairness machinery costs CPU and only matters under overload we never create.
      "--enable-priority-and-fairness=false",
      // Endpoints may not hold a loopback address, so the lease reconciler would only log errors.
      "--endpoint-reconciler-type=none",
      "--profiling=false",
      ...(options.apiServerArgs ?? []),
    ]);

    const delegated = (kubeconfig: string, port: number, certDir: string): string[] => [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      // The CA is given, so there is nothing to look up; the lookup would only log, every few seconds, that no
      // front-proxy CA exists (this test bed has no aggregated APIs).
      `--client-ca-file=${pki.ca.certFile}`,
      "--authentication-skip-lookup=true",
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      `--cert-dir=${certDir}`,
      "--leader-elect=false",
      "--profiling=false",
    ];
    const controllerManager = define("kube-controller-manager", binaries.kubeControllerManager, [
      ...delegated(controllerManagerKubeconfig, controllerManagerPort, join(dir, "kcm-certs")),
      `--controllers=*,${disabledControllers.map((c) => `-${c}`).join(",")}`,
      "--use-service-account-credentials=true",
      `--service-account-private-key-file=${pki.serviceAccount.privateKeyFile}`,
      `--root-ca-file=${pki.ca.certFile}`,
      `--cluster-signing-cert-file=${pki.ca.certFile}`,
      `--cluster-signing-key-file=${pki.ca.keyFile}`,
      `--service-cluster-ip-range=${serviceClusterIpRange}`,
      "--cluster-name=ha-nginx-test-bed",
      ...(options.controllerManagerArgs ?? []),
    ]);
    const scheduler = define("kube-scheduler", binaries.kubeScheduler, [
      ...delegated(schedulerKubeconfig, schedulerPort, join(dir, "scheduler-certs")),
      ...(options.schedulerArgs ?? []),
    ]);

    const startComponent = async (component: Component): Promise<void> => {
      if (isStopped) throw new Error("the control plane was stopped");
      const running = component.child;
      if (running !== undefined && running.exitCode === null && running.signalCode === null) {
        throw new Error(`${component.name} is already running (pid ${String(running.pid)})`);
      }
      await appendFile(component.logFile, `=== ${new Date().toISOString()} starting ${component.name}\n`);
      const fd = openSync(component.logFile, "a");
      try {
        const child = spawn(component.binary, component.args, { detached: true, stdio: ["ignore", fd, fd] });
        child.unref();
        child.on("error", () => undefined);
        component.exitLogged = new Promise((resolve) => {
          child.on("exit", (code, signal) => {
            const line = `=== ${new Date().toISOString()} ${component.name} exited code=${String(code)} signal=${String(signal)}\n`;
            void appendFile(component.logFile, line).catch(() => undefined).then(() => resolve());
          });
        });
        component.child = child;
      } finally {
        closeSync(fd);
      }
      await recordPgids();
    };

    const tls: TlsMaterial = {
      ca: readFileSync(pki.ca.certFile),
      cert: readFileSync(pki.admin.certFile),
      key: readFileSync(pki.admin.keyFile),
      rejectUnauthorized: true,
    };
    const expectOk = async (url: string, material?: TlsMaterial): Promise<string | true> => {
      const result = await probe(url, material);
      return result.status === 200 ? true : `HTTP ${result.status}: ${result.body.slice(0, 500)}`;
    };
    const waitForEtcd = (): Promise<void> =>
      waitUntil("etcd /health", etcd, readyTimeoutMs, async () => {
        const result = await probe(`${etcdUrl}/health`);
        return result.status === 200 && result.body.includes('"true"') ? true : `HTTP ${result.status}: ${result.body}`;
      });
    const waitForApiServer = (): Promise<void> =>
      waitUntil("kube-apiserver /readyz", apiServer, readyTimeoutMs, () => expectOk(`${server}/readyz`, tls));
    // Their serving certificates are self-signed at start-up; /healthz is open to anonymous callers by default.
    const waitForHealthz = (component: Component, port: number): Promise<void> =>
      waitUntil(`${component.name} /healthz`, component, readyTimeoutMs, () =>
        expectOk(`https://127.0.0.1:${port}/healthz`, { rejectUnauthorized: false }),
      );

    await startComponent(etcd);
    await waitForEtcd();
    await startComponent(apiServer);
    await waitForApiServer();
    const readyzMs = Date.now() - started;
    await Promise.all([startComponent(controllerManager), startComponent(scheduler)]);
    await Promise.all([
      waitForHealthz(controllerManager, controllerManagerPort),
      waitForHealthz(scheduler, schedulerPort),
    ]);

    const kubectl = (args: readonly string[], kubectlOptions: KubectlOptions = {}): Promise<KubectlResult> =>
      runKubectl(binaries.kubectl, kubectlOptions.kubeconfig ?? adminKubeconfig, args, kubectlOptions);

    // Pods cannot be created in a namespace before its `default` ServiceAccount exists; the first test should not
    // race the service-account controller.
    await waitUntil("ServiceAccount default/default", controllerManager, readyTimeoutMs, async () => {
      const result = await kubectl(["get", "serviceaccount", "default", "-n", "default", "-o", "name"]);
      return result.code === 0 ? true : result.stderr.trim();
    });

    const controlPlane: ControlPlane = {
      dir,
      server,
      apiPort,
      etcdUrl,
      caFile: pki.ca.certFile,
      adminKubeconfig,
      pki,
      binaries,
      versions: { kubernetes: binaries.versions.kubernetes, etcd: binaries.versions.etcd },
      logs,
      startup: { readyzMs, totalMs: Date.now() - started },
      kubectl,
      pids: () =>
        [...components.values()].flatMap((c) =>
          c.child?.pid !== undefined && c.child.exitCode === null && c.child.signalCode === null ? [c.child.pid] : [],
        ),
      async rssBytes() {
        const rss = (component: Component): number => {
          const pid = component.child?.pid;
          if (pid === undefined) return 0;
          try {
            const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
            return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
          } catch {
            return 0;
          }
        };
        return {
          etcd: rss(etcd),
          "kube-apiserver": rss(apiServer),
          "kube-controller-manager": rss(controllerManager),
          "kube-scheduler": rss(scheduler),
        };
      },
      stopApiServer: () => stopComponent(apiServer),
      async startApiServer() {
        await startComponent(apiServer);
        await waitForApiServer();
      },
      stopEtcd: () => stopComponent(etcd),
      async startEtcd() {
        await startComponent(etcd);
        await waitForEtcd();
      },
      stop,
    };
    return controlPlane;
  } catch (error) {
    await stop();
    throw error;
  }
}

async function saveLogs(components: Iterable<Component>, target: string): Promise<void> {
  await mkdir(target, { recursive: true });
  for (const component of components) {
    await copyFile(component.logFile, join(target, basename(component.logFile))).catch(() => undefined);
  }
}

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  if (child.exitCode !== null || child.signalCode !== null) {
    // The leader is gone, but anything it forked into its group may not be.
    signalGroup(pid, "SIGKILL");
    return;
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // Children are unref'd so that a script may end while they run; waiting for one must keep this process alive.
  child.ref();
  signalGroup(pid, graceMs > 0 ? "SIGTERM" : "SIGKILL");
  const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
  signalGroup(pid, "SIGKILL");
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
