// The test bed's node runner: a minimal kubelet for network-namespace "nodes". It runs in the test process (root
// network namespace) with the admin kubeconfig, registers one Node per lab host, keeps it Ready with Lease heartbeats,
// and runs the containers of the pods the scheduler binds to those nodes as processes inside the node's namespace.
//
// Simplifications, each chosen because the ha-nginx tests do not depend on the real behaviour:
// - Every pod shares its node's network namespace, whether or not it asks for hostNetwork. Two pods on one node that
//   listen on the same port collide, as two hostNetwork pods would.
// - Images are not pulled. A repository ending in `ha-nginx` runs the built CLI (`node <repo>/dist/cli.js`); `nginx`
//   runs Debian's /usr/sbin/nginx with the pod's configuration; any other image is refused with the reason
//   ImageNotSupportedByTestbed (a bare pod fails; a controller's pod stays Pending, like an image that cannot be pulled,
//   so a ReplicaSet does not spin creating replacements).
// - There is no container file system. configMap, secret, emptyDir, downwardAPI and projected volumes are written to a
//   per-pod folder, and every argument, environment value and nginx configuration file that names a mount path is
//   rewritten to that folder.
// - The service account token is not mounted at /var/run/secrets/kubernetes.io/serviceaccount (the host has one such
//   path for all pods). Instead each pod gets KUBECONFIG=<per-pod kubeconfig> holding a TokenRequest token bound to the
//   pod, for https://127.0.0.1:6443, which the API relay (api-relay.ts) forwards to the API server. Clients that call
//   loadFromDefault() read it first. The projected volume is still written into the pod folder.
// - The kubelet side (heartbeats, status, the relay's socket) lives outside the node's namespace, so lab.cutLink cuts
//   the data plane only. Use stopNode (a silent kubelet, with or without its pods) and cutApi (pods lose the API).
// - There is no kubelet API: `kubectl logs/exec` do not work. Container output goes to <dir>/pods/<pod>/<container>.log;
//   stop() removes <dir> unless HA_NGINX_KEEP_RUNNER_DIR is set.
import {
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  V1MicroTime,
  makeInformer,
  setHeaderOptions,
  type Informer,
  type ObjectCache,
  type V1Container,
  type V1EnvVar,
  type V1HTTPGetAction,
  type V1Pod,
  type V1PodCondition,
  type V1Probe,
  type V1Volume,
} from "@kubernetes/client-node";
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, openSync, closeSync, type WriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { arch, release, tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { killGroup, relayServer, signalGroup, startApiRelay, type ApiRelay } from "./api-relay.js";

export interface RunnerHost {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
}

export interface RunnerControlPlane {
  readonly adminKubeconfig: string;
  readonly caFile: string;
  readonly apiPort: number;
  readonly versions?: { readonly kubernetes?: string };
}

export interface NodeRunnerOptions {
  readonly cp: RunnerControlPlane;
  readonly hosts: readonly RunnerHost[];
  // Defaults to node-1 … node-N, in the order of `hosts`.
  readonly nodeNames?: readonly string[];
  readonly nodeLabels?: Readonly<Record<string, string>>;
  // Where dist/cli.js lives; defaults to this repository.
  readonly repoDir?: string;
  readonly dir?: string;
  // How often each node renews its Lease and posts its status; the kubelet's 10 s by default. Tests that shorten the
  // controller manager's --node-monitor-grace-period shorten this too, to stay well inside it.
  readonly heartbeatIntervalMs?: number;
  readonly log?: (line: string) => void;
}

export interface PodProcess {
  readonly namespace: string;
  readonly pod: string;
  readonly uid: string;
  readonly container: string;
  readonly node: string;
  readonly pid: number;
}

export interface NodeRunner {
  readonly dir: string;
  readonly nodeNames: readonly string[];
  hostOf(nodeName: string): RunnerHost;
  processes(): readonly PodProcess[];
  // The per-pod folder (logs, volumes, kubeconfig) of a pod this runner is running.
  podDir(namespace: string, name: string): string | undefined;
  relayPids(): readonly number[];
  // Like a powered-off machine: heartbeats stop and the node's pods die. With keepPods the processes keep running and
  // only the kubelet goes quiet, as in an API partition.
  stopNode(nodeName: string, options?: { readonly keepPods?: boolean }): Promise<void>;
  startNode(nodeName: string): Promise<void>;
  // The relay bridges namespaces through the file system, so lab.cutLink does not cut a node's pods off the API
  // server; these do, by stopping and restarting that node's relay.
  cutApi(nodeName: string): Promise<void>;
  restoreApi(nodeName: string): Promise<void>;
  stop(options?: { readonly deleteNodes?: boolean }): Promise<void>;
}

const leaseNamespace = "kube-node-lease";
const defaultHeartbeatMs = 10_000;
const leaseDurationSeconds = 40;
const resyncMs = 5_000;
const informerRestartMs = 1_000;
const configRetryMs = 2_000;
const maxBackoffMs = 10_000;
const defaultGraceSeconds = 30;
const minStopAfterPreStopMs = 2_000;
const tokenExpirationSeconds = 48 * 3600;
const basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
export const imageNotSupportedReason = "ImageNotSupportedByTestbed";
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

const defaultRepoDir = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

function rfc3339(date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d+Z$/, "Z");
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise((resolveSleep) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolveSleep();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolveSleep();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const body = (error as { body?: unknown }).body;
    return body === undefined ? error.message : `${error.message} ${typeof body === "string" ? body : JSON.stringify(body)}`;
  }
  return String(error);
}

function apiCode(error: unknown): number | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === "number" ? code : undefined;
  }
  return undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function nodeArch(): string {
  const map: Readonly<Record<string, string>> = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x" };
  return map[arch()] ?? arch();
}

// ---------------------------------------------------------------------------------------------------------------
// Images and commands

export type ImageKind = "ours" | "nginx" | "unsupported";

export function imageKind(image: string | undefined): ImageKind {
  if (image === undefined) return "unsupported";
  const withoutDigest = image.split("@")[0] ?? image;
  const lastSlash = withoutDigest.lastIndexOf("/");
  const lastColon = withoutDigest.lastIndexOf(":");
  const repository = lastColon > lastSlash ? withoutDigest.slice(0, lastColon) : withoutDigest;
  if (repository === "ha-nginx" || repository.endsWith("/ha-nginx")) return "ours";
  if (repository === "nginx" || repository.endsWith("/nginx")) return "nginx";
  return "unsupported";
}

interface CommandLine {
  readonly cmd: string;
  readonly args: readonly string[];
}

// Our image's entrypoint is the CLI; a command that names it (ha-nginx …, node …/dist/cli.js …) maps to the build.
function oursCommand(repoDir: string, command: readonly string[] | undefined, args: readonly string[]): CommandLine {
  const cli = join(repoDir, "dist", "cli.js");
  const [first, second, ...rest] = command ?? [];
  if (first === undefined) return { cmd: process.execPath, args: [cli, ...args] };
  if (first.split("/").pop() === "ha-nginx") return { cmd: process.execPath, args: [cli, ...[second, ...rest].filter(isString), ...args] };
  if (first.split("/").pop() === "node" && second !== undefined && second.endsWith("dist/cli.js")) {
    return { cmd: process.execPath, args: [cli, ...rest, ...args] };
  }
  return { cmd: first, args: [...[second, ...rest].filter(isString), ...args] };
}

function isString(value: string | undefined): value is string {
  return value !== undefined;
}

// `sleep N`, `/bin/sleep N` or `sh -c "sleep N"`: waiting in the runner is cheaper than a process and needs no netns.
function sleepSeconds(command: readonly string[]): number | undefined {
  const words = command.length === 3 && /(^|\/)(ba)?sh$/.test(command[0] ?? "") && command[1] === "-c"
    ? (command[2] ?? "").trim().split(/\s+/)
    : [...command];
  if (words.length === 2 && /(^|\/)sleep$/.test(words[0] ?? "") && /^\d+(\.\d+)?$/.test(words[1] ?? "")) return Number(words[1]);
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes in a node's namespace

function spawnInNetns(netns: string, line: CommandLine, env: Readonly<Record<string, string>>, logFile: string, cwd: string): ChildProcess {
  const fd = openSync(logFile, "a");
  try {
    // detached: each container is a process group, so nginx's workers or a shell's children stop with it.
    return spawn("ip", ["netns", "exec", netns, line.cmd, ...line.args], { env, cwd, detached: true, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
}

function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolveExit) => child.once("exit", (code, signal) => resolveExit({ code, signal })));
}

async function runToCompletion(netns: string, line: CommandLine, env: Readonly<Record<string, string>>, logFile: string, cwd: string, timeoutMs: number): Promise<boolean> {
  const child = spawnInNetns(netns, line, env, logFile, cwd);
  child.on("error", () => undefined);
  const timer = setTimeout(() => signalGroup(child.pid ?? 0, "SIGKILL"), timeoutMs);
  const { code } = await waitForExit(child);
  clearTimeout(timer);
  return code === 0;
}

// One long-lived helper per node, inside its namespace, answers HTTP and TCP checks (probes, preStop httpGet):
// spawning curl through `ip netns exec` for every probe would cost more CPU than the pods themselves.
const probeHelperSource = `
const http = require("node:http"), https = require("node:https"), net = require("node:net");
const rl = require("node:readline").createInterface({ input: process.stdin });
const reply = (id, ok, detail) => process.stdout.write(JSON.stringify({ id, ok, detail }) + "\\n");
rl.on("close", () => process.exit(0));
rl.on("line", (line) => {
  let r; try { r = JSON.parse(line); } catch { return; }
  let settled = false;
  const done = (ok, detail) => { if (!settled) { settled = true; reply(r.id, ok, detail); } };
  if (r.kind === "tcp") {
    const s = net.connect({ host: r.host, port: r.port });
    s.setTimeout(r.timeoutMs, () => { s.destroy(); done(false, "timeout"); });
    s.on("connect", () => { s.destroy(); done(true, "connected"); });
    s.on("error", (e) => done(false, e.message));
    return;
  }
  const lib = r.scheme === "HTTPS" ? https : http;
  const headers = {}; for (const h of r.headers) headers[h.name] = h.value;
  const req = lib.request({ host: r.host, port: r.port, path: r.path, method: "GET", headers, timeout: r.timeoutMs, rejectUnauthorized: false }, (res) => {
    res.resume();
    const code = res.statusCode || 0;
    done(code >= 200 && code < 400, "HTTP " + code);
  });
  req.on("timeout", () => { req.destroy(); done(false, "timeout"); });
  req.on("error", (e) => done(false, e.message));
  req.end();
});
`;

interface CheckRequest {
  readonly kind: "http" | "tcp";
  readonly host: string;
  readonly port: number;
  readonly path?: string;
  readonly scheme?: string;
  readonly headers?: readonly { readonly name: string; readonly value: string }[];
  readonly timeoutMs: number;
}

interface CheckResult {
  readonly ok: boolean;
  readonly detail: string;
}

class NodeChecker {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, (result: CheckResult) => void>();
  private isStopped = false;

  constructor(private readonly netns: string) {}

  start(): void {
    const child = spawn("ip", ["netns", "exec", this.netns, process.execPath, "-e", probeHelperSource], { detached: true, stdio: ["pipe", "pipe", "ignore"] });
    this.child = child;
    child.on("error", () => undefined);
    child.stdin?.on("error", () => undefined);
    if (child.stdout !== null) {
      createInterface({ input: child.stdout }).on("line", (line) => {
        const parsed = parseJson(line);
        if (typeof parsed !== "object" || parsed === null) return;
        const { id, ok, detail } = parsed as { id?: unknown; ok?: unknown; detail?: unknown };
        if (typeof id !== "number") return;
        this.pending.get(id)?.({ ok: ok === true, detail: typeof detail === "string" ? detail : "" });
        this.pending.delete(id);
      });
    }
    child.on("exit", () => {
      for (const settle of this.pending.values()) settle({ ok: false, detail: "probe helper exited" });
      this.pending.clear();
      if (this.child === child) this.child = undefined;
      if (!this.isStopped) setTimeout(() => { if (!this.isStopped) this.start(); }, 500);
    });
  }

  check(request: CheckRequest): Promise<CheckResult> {
    const child = this.child;
    if (child?.stdin == null) return Promise.resolve({ ok: false, detail: "probe helper not running" });
    const id = this.nextId++;
    return new Promise((resolveCheck) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolveCheck({ ok: false, detail: "no answer from probe helper" });
      }, request.timeoutMs + 2_000);
      this.pending.set(id, (result) => {
        clearTimeout(timer);
        resolveCheck(result);
      });
      child.stdin?.write(`${JSON.stringify({ id, ...request })}\n`);
    });
  }

  async stop(): Promise<void> {
    this.isStopped = true;
    const child = this.child;
    if (child !== undefined) await killGroup(child, 1_000);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Node registration and heartbeats

interface NodeState {
  readonly name: string;
  readonly host: RunnerHost;
  readonly checker: NodeChecker;
  relay: ApiRelay | undefined;
  heartbeat: NodeJS.Timeout | undefined;
  isRunning: boolean;
  isRemoved: boolean;
  readyTransition: string;
  uid: string | undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Containers

type ContainerState =
  | { readonly waiting: { readonly reason: string; readonly message?: string } }
  | { readonly running: { readonly startedAt: string } }
  | {
      readonly terminated: {
        readonly exitCode: number;
        readonly signal?: number;
        readonly reason: string;
        readonly startedAt: string;
        readonly finishedAt: string;
        readonly containerID: string;
      };
    };

interface LaunchSpec {
  readonly line: CommandLine;
  readonly env: Readonly<Record<string, string>>;
  readonly stopSignal: NodeJS.Signals;
  // Maps the container's mount paths to the pod folder, for exec probes and hooks as for the command.
  readonly translate: (text: string) => string;
}

type ProbeKind = "readiness" | "liveness" | "startup";

interface PodContext {
  readonly runner: RunnerCore;
  readonly node: NodeState;
  readonly dir: string;
  readonly restartPolicy: string;
  readonly graceSeconds: () => number;
  readonly onChange: () => void;
}

class ContainerRunner {
  state: ContainerState = { waiting: { reason: "ContainerCreating" } };
  lastState: ContainerState | undefined;
  restartCount = 0;
  isReady = false;
  isStarted = false;
  private child: ChildProcess | undefined;
  private launch: LaunchSpec | undefined;
  private isStopping = false;
  private failures = 0;
  private startedAtMs = 0;
  private readonly probes: AbortController[] = [];
  private exitWaiters: (() => void)[] = [];

  constructor(
    readonly spec: V1Container,
    readonly uid: string,
    private readonly ctx: PodContext,
    readonly isInit: boolean,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get logFile(): string {
    return join(this.ctx.dir, `${this.spec.name}.log`);
  }

  setWaiting(reason: string, message?: string): void {
    this.state = { waiting: message === undefined ? { reason } : { reason, message } };
    this.ctx.onChange();
  }

  start(launch: LaunchSpec): void {
    this.launch = launch;
    this.spawnOnce();
  }

  // Resolves when the process has exited for good (init containers, or restartPolicy that does not restart).
  waitDone(): Promise<void> {
    if (this.child === undefined && !("waiting" in this.state)) return Promise.resolve();
    return new Promise((resolveDone) => this.exitWaiters.push(resolveDone));
  }

  get exitCode(): number | undefined {
    return "terminated" in this.state ? this.state.terminated.exitCode : undefined;
  }

  private spawnOnce(): void {
    const launch = this.launch;
    if (launch === undefined || this.isStopping) return;
    const { node } = this.ctx;
    const child = spawnInNetns(node.host.netns, launch.line, launch.env, this.logFile, this.ctx.dir);
    child.on("error", (error) => this.ctx.runner.log(`${this.spec.name}: spawn failed: ${error.message}`));
    this.child = child;
    this.startedAtMs = Date.now();
    const startedAt = rfc3339();
    this.state = { running: { startedAt } };
    this.isReady = false;
    const hasStartup = this.spec.startupProbe !== undefined && !this.isInit;
    this.isStarted = !hasStartup;
    if (!this.isInit) this.startProbes();
    this.ctx.onChange();
    child.once("exit", (code, signal) => this.onExit(child, startedAt, code, signal));
  }

  private onExit(child: ChildProcess, startedAt: string, code: number | null, signal: NodeJS.Signals | null): void {
    if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
    this.child = undefined;
    this.stopProbes();
    const signalNumber = signal === null ? undefined : signalNumbers[signal];
    const exitCode = code ?? 128 + (signalNumber ?? 0);
    this.state = {
      terminated: {
        exitCode,
        ...(signalNumber === undefined ? {} : { signal: signalNumber }),
        reason: exitCode === 0 ? "Completed" : "Error",
        startedAt,
        finishedAt: rfc3339(),
        containerID: this.containerId(),
      },
    };
    this.isReady = false;
    this.isStarted = false;
    const policy = this.spec.restartPolicy ?? this.ctx.restartPolicy;
    const shouldRestart = !this.isStopping && !this.isInit && (policy === "Always" || (policy === "OnFailure" && exitCode !== 0));
    if (!shouldRestart) {
      this.ctx.onChange();
      for (const waiter of this.exitWaiters.splice(0)) waiter();
      return;
    }
    this.failures = Date.now() - this.startedAtMs > maxBackoffMs ? 0 : this.failures + 1;
    const delayMs = Math.min(maxBackoffMs, 1_000 * 2 ** Math.max(0, this.failures - 1));
    this.lastState = this.state;
    this.restartCount += 1;
    this.state = { waiting: { reason: "CrashLoopBackOff", message: `back-off ${delayMs} ms restarting failed container ${this.spec.name}` } };
    this.ctx.onChange();
    this.ctx.runner.log(`${this.spec.name} (${this.uid}) exited ${exitCode}; restart in ${delayMs} ms`);
    setTimeout(() => this.spawnOnce(), delayMs);
  }

  containerId(): string {
    return `testbed://${this.uid}-${this.spec.name}-${this.restartCount}`;
  }

  private startProbes(): void {
    const probes: [ProbeKind, V1Probe | undefined][] = [
      ["startup", this.spec.startupProbe],
      ["readiness", this.spec.readinessProbe],
      ["liveness", this.spec.livenessProbe],
    ];
    for (const [kind, probe] of probes) {
      if (probe === undefined) {
        if (kind === "readiness") this.isReady = true;
        continue;
      }
      const controller = new AbortController();
      this.probes.push(controller);
      void this.probeLoop(kind, probe, controller.signal);
    }
  }

  private stopProbes(): void {
    for (const controller of this.probes.splice(0)) controller.abort();
  }

  private async probeLoop(kind: ProbeKind, probe: V1Probe, signal: AbortSignal): Promise<void> {
    const periodMs = (probe.periodSeconds ?? 10) * 1_000;
    const successThreshold = probe.successThreshold ?? 1;
    const failureThreshold = probe.failureThreshold ?? 3;
    let successes = 0;
    let failures = 0;
    await sleep((probe.initialDelaySeconds ?? 0) * 1_000, signal);
    while (!signal.aborted) {
      if (kind === "startup" || this.isStarted) {
        const result = await this.runProbe(probe);
        if (signal.aborted) return;
        if (result.ok) {
          successes += 1;
          failures = 0;
        } else {
          failures += 1;
          successes = 0;
        }
        if (this.applyProbe(kind, result, successes, successThreshold, failures, failureThreshold, probe)) return;
      }
      await sleep(periodMs, signal);
    }
  }

  // Returns true when this probe's loop has finished its job.
  private applyProbe(kind: ProbeKind, result: CheckResult, successes: number, successThreshold: number, failures: number, failureThreshold: number, probe: V1Probe): boolean {
    if (kind === "readiness") {
      const isReady = successes >= successThreshold ? true : failures >= failureThreshold ? false : this.isReady;
      if (isReady !== this.isReady) {
        this.isReady = isReady;
        this.ctx.runner.log(`${this.spec.name} (${this.uid}) readiness ${isReady ? "passed" : `failed: ${result.detail}`}`);
        this.ctx.onChange();
      }
      return false;
    }
    if (kind === "startup" && result.ok) {
      this.isStarted = true;
      this.ctx.onChange();
      return true;
    }
    if (failures >= failureThreshold) {
      this.ctx.runner.log(`${this.spec.name} (${this.uid}) ${kind} probe failed ${failures} times (${result.detail}): killing it`);
      const graceMs = (probe.terminationGracePeriodSeconds ?? this.ctx.graceSeconds()) * 1_000;
      const child = this.child;
      if (child !== undefined) void killGroup(child, graceMs, this.launch?.stopSignal ?? "SIGTERM");
      return true;
    }
    return false;
  }

  private async runProbe(probe: V1Probe): Promise<CheckResult> {
    const timeoutMs = (probe.timeoutSeconds ?? 1) * 1_000;
    if (probe.httpGet !== undefined) return this.httpCheck(probe.httpGet, timeoutMs);
    if (probe.tcpSocket !== undefined) {
      return this.ctx.node.checker.check({ kind: "tcp", host: probe.tcpSocket.host ?? this.ctx.node.host.address, port: this.port(probe.tcpSocket.port), timeoutMs });
    }
    if (probe.exec?.command !== undefined && this.launch !== undefined) {
      const command = probe.exec.command.map(this.launch.translate);
      const ok = await runToCompletion(this.ctx.node.host.netns, this.ctx.runner.commandFor(this.spec, command, []), this.launch.env, this.logFile, this.ctx.dir, timeoutMs);
      return { ok, detail: ok ? "exit 0" : "non-zero exit or timeout" };
    }
    return { ok: false, detail: "probe type not supported by the test bed (grpc?)" };
  }

  httpCheck(action: V1HTTPGetAction, timeoutMs: number): Promise<CheckResult> {
    return this.ctx.node.checker.check({
      kind: "http",
      host: action.host ?? this.ctx.node.host.address,
      port: this.port(action.port),
      path: action.path ?? "/",
      scheme: action.scheme ?? "HTTP",
      headers: (action.httpHeaders ?? []).map((header) => ({ name: header.name, value: header.value })),
      timeoutMs,
    });
  }

  private port(port: number | string): number {
    if (typeof port === "number") return port;
    const named = this.spec.ports?.find((candidate) => candidate.name === port)?.containerPort;
    return named ?? Number(port);
  }

  // preStop, then the stop signal, then SIGKILL at the deadline: the kubelet's order and budget.
  async stop(deadlineMs: number): Promise<void> {
    this.isStopping = true;
    this.stopProbes();
    const preStop = this.spec.lifecycle?.preStop;
    if (preStop !== undefined && this.child !== undefined) {
      const budgetMs = Math.max(0, deadlineMs - Date.now());
      const hook = this.runPreStop(preStop, budgetMs);
      await Promise.race([hook, sleep(budgetMs)]);
    }
    const child = this.child;
    if (child !== undefined) await killGroup(child, Math.max(minStopAfterPreStopMs, deadlineMs - Date.now()), this.launch?.stopSignal ?? "SIGTERM");
    this.releaseWaiters();
  }

  // A container stopped during its back-off has no process whose exit would wake those waiting for it.
  private releaseWaiters(): void {
    if (this.child === undefined) for (const waiter of this.exitWaiters.splice(0)) waiter();
  }

  async kill(): Promise<void> {
    this.isStopping = true;
    this.stopProbes();
    const child = this.child;
    if (child !== undefined) await killGroup(child, 0, "SIGKILL");
    this.releaseWaiters();
  }

  private async runPreStop(handler: NonNullable<NonNullable<V1Container["lifecycle"]>["preStop"]>, budgetMs: number): Promise<void> {
    if (handler.sleep !== undefined) {
      await sleep(handler.sleep.seconds * 1_000);
      return;
    }
    if (handler.httpGet !== undefined) {
      await this.httpCheck(handler.httpGet, budgetMs);
      return;
    }
    const command = handler.exec?.command;
    if (command === undefined || this.launch === undefined) return;
    const seconds = sleepSeconds(command);
    if (seconds !== undefined) {
      await sleep(seconds * 1_000);
      return;
    }
    const nginxSignal = imageKind(this.spec.image) === "nginx" ? nginxSignalFor(command) : undefined;
    if (nginxSignal !== undefined) {
      const child = this.child;
      if (child?.pid !== undefined) process.kill(child.pid, nginxSignal);
      if (child !== undefined) await Promise.race([waitForExit(child), sleep(budgetMs)]);
      return;
    }
    const translated = command.map(this.launch.translate);
    await runToCompletion(this.ctx.node.host.netns, this.ctx.runner.commandFor(this.spec, translated, []), this.launch.env, this.logFile, this.ctx.dir, budgetMs);
  }
}

// `nginx -s quit` in a preStop hook talks to the pid file of the image; here the runner knows the master's pid.
function nginxSignalFor(command: readonly string[]): NodeJS.Signals | undefined {
  const words = command.length === 3 && command[1] === "-c" ? (command[2] ?? "").split(/\s+/) : [...command];
  const index = words.indexOf("-s");
  if (index < 0 || !(words[0] ?? "").endsWith("nginx")) return undefined;
  const map: Readonly<Record<string, NodeJS.Signals>> = { quit: "SIGQUIT", stop: "SIGTERM", reload: "SIGHUP", reopen: "SIGUSR1" };
  return map[words[index + 1] ?? ""];
}

const signalNumbers: Readonly<Partial<Record<NodeJS.Signals, number>>> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15,
};

// ---------------------------------------------------------------------------------------------------------------
// Pods

class ConfigError extends Error {}

interface Mount {
  readonly containerPath: string;
  readonly hostPath: string;
}

class PodWorker {
  pod: V1Pod;
  readonly uid: string;
  readonly key: string;
  readonly dir: string;
  private readonly containers: ContainerRunner[] = [];
  private readonly initContainers: ContainerRunner[] = [];
  private phase = "Pending";
  private reason: string | undefined;
  private message: string | undefined;
  private isInitialized = false;
  private isTerminating = false;
  private isKilled = false;
  private readonly startTime = rfc3339();
  private readonly transitions = new Map<string, { status: string; time: string }>();
  private lastPushed = "";
  private statusChain: Promise<void> = Promise.resolve();
  private isStatusQueued = false;
  private readonly abort = new AbortController();
  private kubeconfigPath: string | undefined;
  private isPrepared = false;
  private readonly nginxVolumes = new Set<string>();
  private done: Promise<void> = Promise.resolve();

  constructor(pod: V1Pod, private readonly runner: RunnerCore, readonly node: NodeState) {
    this.pod = pod;
    this.uid = pod.metadata?.uid ?? "";
    this.key = `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
    this.dir = join(runner.dir, "pods", `${pod.metadata?.namespace ?? ""}_${pod.metadata?.name ?? ""}_${this.uid.slice(0, 8)}`);
    const ctx: PodContext = {
      runner,
      node,
      dir: this.dir,
      restartPolicy: pod.spec?.restartPolicy ?? "Always",
      graceSeconds: () => this.graceSeconds(),
      onChange: () => this.queueStatus(),
    };
    // A restartable init container is a sidecar: started in order, then kept running, restarted and probed.
    for (const spec of pod.spec?.initContainers ?? []) this.initContainers.push(new ContainerRunner(spec, this.uid, ctx, spec.restartPolicy !== "Always"));
    for (const spec of pod.spec?.containers ?? []) this.containers.push(new ContainerRunner(spec, this.uid, ctx, false));
    this.isInitialized = this.initContainers.length === 0;
  }

  get name(): string {
    return this.pod.metadata?.name ?? "";
  }

  get namespace(): string {
    return this.pod.metadata?.namespace ?? "";
  }

  processes(): PodProcess[] {
    return [...this.initContainers, ...this.containers].flatMap((container) =>
      container.pid === undefined
        ? []
        : [{ namespace: this.namespace, pod: this.name, uid: this.uid, container: container.spec.name, node: this.node.name, pid: container.pid }],
    );
  }

  start(): void {
    this.done = this.run().catch((error: unknown) => this.runner.log(`${this.key}: ${errorText(error)}`));
  }

  update(pod: V1Pod): void {
    this.pod = pod;
    // The node lifecycle controller marks pods of an unreachable node not Ready; once this node is back, its own view
    // must be written again even though it did not change here.
    const hasDrifted = (pod.status?.conditions ?? []).some((condition) => {
      const ours = this.transitions.get(condition.type);
      return ownedConditions.has(condition.type) && ours !== undefined && ours.status !== condition.status;
    });
    if (hasDrifted) this.lastPushed = "";
    // Readiness gates live in the pod's conditions, which others write.
    this.queueStatus();
    if (pod.metadata?.deletionTimestamp !== undefined && !this.isTerminating) void this.terminate();
  }

  private graceSeconds(): number {
    return this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? defaultGraceSeconds;
  }

  private async run(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.queueStatus();
    const all = [...this.initContainers, ...this.containers];
    const unsupported = all.filter((container) => imageKind(container.spec.image) === "unsupported");
    if (unsupported.length > 0) {
      const message = `${imageNotSupportedReason}: the test bed runs only images whose repository ends in ha-nginx or nginx; `
        + `container ${unsupported.map((container) => `${container.spec.name} (${container.spec.image ?? "no image"})`).join(", ")} cannot run`;
      this.runner.log(`${this.key}: ${message}`);
      for (const container of unsupported) container.setWaiting(imageNotSupportedReason, message);
      const hasController = (this.pod.metadata?.ownerReferences ?? []).some((owner) => owner.controller === true);
      if (!hasController) {
        this.phase = "Failed";
        this.reason = imageNotSupportedReason;
      }
      this.message = message;
      this.queueStatus();
      return;
    }
    let launches: Map<string, LaunchSpec> | undefined;
    while (launches === undefined && !this.abort.signal.aborted) {
      try {
        launches = await this.prepare();
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        for (const container of all) container.setWaiting("CreateContainerConfigError", error.message);
        await sleep(configRetryMs, this.abort.signal);
      }
    }
    if (launches === undefined) return;
    for (const init of this.initContainers) {
      if (this.abort.signal.aborted) return;
      const launch = launches.get(init.spec.name);
      if (launch === undefined) continue;
      if (!init.isInit) {
        init.start(launch);
        continue;
      }
      for (;;) {
        init.start(launch);
        await init.waitDone();
        if (this.abort.signal.aborted) return;
        if (init.exitCode === 0) break;
        if (this.pod.spec?.restartPolicy === "Never") {
          this.phase = "Failed";
          this.queueStatus();
          return;
        }
        init.restartCount += 1;
        await sleep(Math.min(maxBackoffMs, 1_000 * init.restartCount), this.abort.signal);
      }
    }
    this.isInitialized = true;
    for (const container of this.containers) {
      const launch = launches.get(container.spec.name);
      if (launch !== undefined && !this.abort.signal.aborted) container.start(launch);
    }
    this.phase = "Running";
    this.queueStatus();
    if (this.pod.spec?.restartPolicy === "Never" || this.pod.spec?.restartPolicy === "OnFailure") {
      await Promise.all(this.containers.map((container) => container.waitDone()));
      if (this.isTerminating || this.abort.signal.aborted) return;
      this.phase = this.containers.every((container) => container.exitCode === 0) ? "Succeeded" : "Failed";
      this.queueStatus();
    }
  }

  // Volumes, environment, the service account kubeconfig and each container's command line.
  // ConfigMap and Secret volumes follow updates, as the kubelet's periodic sync does. Those mounted into nginx's
  // configuration are rewritten for the pod folder and left alone: nginx would need a reload to notice anyway.
  async refreshVolumes(): Promise<void> {
    if (!this.isPrepared || this.isTerminating) return;
    for (const volume of this.pod.spec?.volumes ?? []) {
      if ((volume.configMap === undefined && volume.secret === undefined) || this.nginxVolumes.has(volume.name)) continue;
      try {
        await this.fillVolume(volume, join(this.dir, "volumes", volume.name));
      } catch (error) {
        this.runner.log(`${this.key}: refreshing volume ${volume.name}: ${errorText(error)}`);
      }
    }
  }

  private async prepare(): Promise<Map<string, LaunchSpec>> {
    for (const container of [...this.initContainers, ...this.containers]) {
      if (imageKind(container.spec.image) !== "nginx") continue;
      for (const mount of container.spec.volumeMounts ?? []) if (mount.mountPath.startsWith("/etc/nginx")) this.nginxVolumes.add(mount.name);
    }
    const volumeDirs = await this.materializeVolumes();
    if (this.pod.spec?.automountServiceAccountToken !== false) this.kubeconfigPath = await this.writeKubeconfig();
    const launches = new Map<string, LaunchSpec>();
    for (const container of [...this.initContainers, ...this.containers]) {
      const mounts = await this.mountsFor(container.spec, volumeDirs);
      const env = await this.envFor(container.spec, mounts);
      const translate = (text: string): string => translatePaths(text, mounts);
      const expand = (text: string): string => translate(expandVars(text, env));
      const kind = imageKind(container.spec.image);
      if (kind === "nginx") {
        const conf = await this.nginxConfig(mounts);
        launches.set(container.spec.name, {
          line: { cmd: "/usr/sbin/nginx", args: ["-e", "stderr", "-p", join(this.dir, "nginx"), "-c", conf] },
          env,
          stopSignal: "SIGQUIT",
          translate,
        });
        continue;
      }
      if (!existsSync(join(this.runner.repoDir, "dist", "cli.js"))) {
        throw new ConfigError(`${join(this.runner.repoDir, "dist", "cli.js")} is missing: run npm run build before the test bed`);
      }
      const line = oursCommand(this.runner.repoDir, container.spec.command?.map(expand), (container.spec.args ?? []).map(expand));
      launches.set(container.spec.name, { line, env, stopSignal: "SIGTERM", translate });
    }
    this.isPrepared = true;
    return launches;
  }

  private async materializeVolumes(): Promise<Map<string, string>> {
    const dirs = new Map<string, string>();
    for (const volume of this.pod.spec?.volumes ?? []) {
      if (volume.hostPath !== undefined) {
        // Every node shares the machine's file system: a hostPath is the real path.
        const { path, type } = volume.hostPath;
        dirs.set(volume.name, path);
        if (type === "DirectoryOrCreate") await mkdir(path, { recursive: true });
        if (type === "FileOrCreate" && !existsSync(path)) await writeFileAt(dirname(path), basename(path), "");
        continue;
      }
      const path = join(this.dir, "volumes", volume.name);
      dirs.set(volume.name, path);
      await mkdir(path, { recursive: true });
      await this.fillVolume(volume, path);
    }
    return dirs;
  }

  private async fillVolume(volume: V1Volume, path: string): Promise<void> {
    const namespace = this.namespace;
    if (volume.configMap !== undefined) {
      const data = await this.runner.configMapData(namespace, volume.configMap.name ?? "", volume.configMap.optional === true);
      await writeItems(path, data, volume.configMap.items);
    }
    if (volume.secret !== undefined) {
      const data = await this.runner.secretData(namespace, volume.secret.secretName ?? "", volume.secret.optional === true);
      await writeItems(path, data, volume.secret.items);
    }
    for (const item of volume.downwardAPI?.items ?? []) {
      if (item.fieldRef !== undefined) await writeFileAt(path, item.path, this.fieldValue(item.fieldRef.fieldPath));
    }
    for (const source of volume.projected?.sources ?? []) {
      if (source.serviceAccountToken !== undefined) {
        const token = await this.runner.mintToken(this.pod, source.serviceAccountToken.audience, source.serviceAccountToken.expirationSeconds);
        await writeFileAt(path, source.serviceAccountToken.path, token);
      }
      if (source.configMap !== undefined) {
        const data = await this.runner.configMapData(namespace, source.configMap.name ?? "", source.configMap.optional === true);
        await writeItems(path, data, source.configMap.items);
      }
      if (source.secret !== undefined) {
        const data = await this.runner.secretData(namespace, source.secret.name ?? "", source.secret.optional === true);
        await writeItems(path, data, source.secret.items);
      }
      for (const item of source.downwardAPI?.items ?? []) {
        if (item.fieldRef !== undefined) await writeFileAt(path, item.path, this.fieldValue(item.fieldRef.fieldPath));
      }
    }
  }

  private async mountsFor(container: V1Container, volumeDirs: ReadonlyMap<string, string>): Promise<Mount[]> {
    const mounts: Mount[] = [];
    for (const mount of container.volumeMounts ?? []) {
      const base = volumeDirs.get(mount.name);
      if (base === undefined) throw new ConfigError(`container ${container.name} mounts unknown volume ${mount.name}`);
      const hostPath = mount.subPath === undefined || mount.subPath === "" ? base : join(base, mount.subPath);
      mounts.push({ containerPath: mount.mountPath.replace(/\/+$/, ""), hostPath });
    }
    // The longest mount path wins, as the innermost mount does in a container.
    return mounts.sort((a, b) => b.containerPath.length - a.containerPath.length);
  }

  private fieldValue(path: string): string {
    const pod = this.pod;
    const labelMatch = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
    if (labelMatch !== null) {
      const source = labelMatch[1] === "labels" ? pod.metadata?.labels : pod.metadata?.annotations;
      return source?.[labelMatch[2] ?? ""] ?? "";
    }
    const address = this.node.host.address;
    const values: Readonly<Record<string, string>> = {
      "metadata.name": this.name,
      "metadata.namespace": this.namespace,
      "metadata.uid": this.uid,
      "spec.nodeName": this.node.name,
      "spec.serviceAccountName": pod.spec?.serviceAccountName ?? "default",
      "status.hostIP": address,
      "status.hostIPs": address,
      "status.podIP": address,
      "status.podIPs": address,
      "metadata.labels": Object.entries(pod.metadata?.labels ?? {}).map(([k, v]) => `${k}="${v}"`).join("\n"),
      "metadata.annotations": Object.entries(pod.metadata?.annotations ?? {}).map(([k, v]) => `${k}="${v}"`).join("\n"),
    };
    const value = values[path];
    if (value === undefined) throw new ConfigError(`fieldRef ${path} is not supported by the test bed`);
    return value;
  }

  private async envFor(container: V1Container, mounts: readonly Mount[]): Promise<Record<string, string>> {
    const env: Record<string, string> = {
      PATH: basePath,
      HOME: "/root",
      HOSTNAME: this.name,
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: "6443",
      ...(this.kubeconfigPath === undefined ? {} : { KUBECONFIG: this.kubeconfigPath }),
    };
    for (const source of container.envFrom ?? []) {
      const prefix = source.prefix ?? "";
      const data = source.configMapRef !== undefined
        ? await this.runner.configMapData(this.namespace, source.configMapRef.name ?? "", source.configMapRef.optional === true)
        : source.secretRef !== undefined
          ? await this.runner.secretData(this.namespace, source.secretRef.name ?? "", source.secretRef.optional === true)
          : new Map<string, Buffer>();
      for (const [key, value] of data) env[`${prefix}${key}`] = value.toString("utf8");
    }
    for (const variable of container.env ?? []) {
      const value = await this.envValue(container, variable, env);
      if (value !== undefined) env[variable.name] = translatePaths(value, mounts);
    }
    return env;
  }

  private async envValue(container: V1Container, variable: V1EnvVar, env: Readonly<Record<string, string>>): Promise<string | undefined> {
    if (variable.valueFrom === undefined) return expandVars(variable.value ?? "", env);
    const from = variable.valueFrom;
    if (from.fieldRef !== undefined) return this.fieldValue(from.fieldRef.fieldPath);
    if (from.resourceFieldRef !== undefined) return resourceValue(container, from.resourceFieldRef.resource);
    if (from.configMapKeyRef !== undefined) {
      const ref = from.configMapKeyRef;
      const data = await this.runner.configMapData(this.namespace, ref.name ?? "", ref.optional === true);
      return keyValue(data, ref.key, `configmap ${ref.name ?? ""}`, ref.optional === true);
    }
    if (from.secretKeyRef !== undefined) {
      const ref = from.secretKeyRef;
      const data = await this.runner.secretData(this.namespace, ref.name ?? "", ref.optional === true);
      return keyValue(data, ref.key, `secret ${ref.name ?? ""}`, ref.optional === true);
    }
    throw new ConfigError(`env ${variable.name}: valueFrom kind not supported by the test bed`);
  }

  private async writeKubeconfig(): Promise<string> {
    const token = await this.runner.mintToken(this.pod, undefined, tokenExpirationSeconds);
    const ca = await readFile(this.runner.cp.caFile);
    const path = join(this.dir, "kubeconfig");
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "testbed", cluster: { server: relayServer, "certificate-authority-data": ca.toString("base64") } }],
      users: [{ name: "pod", user: { token } }],
      contexts: [{ name: "pod", context: { cluster: "testbed", user: "pod", namespace: this.namespace } }],
      "current-context": "pod",
    };
    await writeFile(path, JSON.stringify(config, null, 2), { mode: 0o600 });
    return path;
  }

  // The image's /etc/nginx/nginx.conf (if mounted) or a generated main file that includes /etc/nginx/conf.d, with
  // every path the image would own (pid, logs, temp files) moved into the pod folder.
  private async nginxConfig(mounts: readonly Mount[]): Promise<string> {
    const root = join(this.dir, "nginx");
    await Promise.all(["logs", "tmp", "cache"].map((sub) => mkdir(join(root, sub), { recursive: true })));
    for (const mount of mounts) {
      if (mount.containerPath.startsWith("/etc/nginx")) await rewriteTree(mount.hostPath, mounts);
    }
    const globals = [
      `pid ${join(root, "nginx.pid")};`,
      "daemon off;",
      "error_log stderr notice;",
    ].join("\n");
    const temps = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((name) => `${name}_temp_path ${join(root, "tmp", name)};`).join("\n  ");
    const main = join(root, "nginx.conf");
    const ownMain = hostPathOf("/etc/nginx/nginx.conf", mounts);
    if (ownMain !== undefined && existsSync(ownMain) && (await stat(ownMain)).isFile()) {
      const text = (await readFile(ownMain, "utf8")).replace(/^\s*(pid|daemon|user|error_log)\s[^;]*;/gm, "");
      await writeFile(main, `${globals}\n${translatePaths(text, mounts).replaceAll("/var/log/nginx", join(root, "logs")).replaceAll("/var/cache/nginx", join(root, "cache"))}`);
      return main;
    }
    // As the image's main file does: include /etc/nginx/conf.d/*.conf, whether that folder or single files in it are mounted.
    const includes: string[] = [];
    const confD = hostPathOf("/etc/nginx/conf.d", mounts);
    if (confD !== undefined && (await stat(confD)).isDirectory()) includes.push(`include ${confD}/*.conf;`);
    for (const mount of mounts) {
      if (mount.containerPath.startsWith("/etc/nginx/conf.d/") && mount.containerPath.endsWith(".conf")) includes.push(`include ${mount.hostPath};`);
    }
    const servers = includes.length === 0 ? defaultServer(this.node.name) : includes.join("\n  ");
    await writeFile(main, `${globals}
worker_processes 1;
events { worker_connections 512; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  ${temps}
  ${servers}
}
`);
    return main;
  }

  queueStatus(): void {
    if (this.isStatusQueued || this.isKilled) return;
    this.isStatusQueued = true;
    this.statusChain = this.statusChain.then(async () => {
      this.isStatusQueued = false;
      await this.pushStatus();
    });
  }

  private transition(type: OwnedCondition, status: boolean): ConditionJson {
    const value = status ? "True" : "False";
    const previous = this.transitions.get(type);
    const time = previous?.status === value ? previous.time : rfc3339();
    this.transitions.set(type, { status: value, time });
    return { type, status: value, lastTransitionTime: time, lastProbeTime: null };
  }

  private buildStatus(): Record<string, unknown> {
    const address = this.node.host.address;
    const sidecars = this.initContainers.filter((container) => !container.isInit);
    const containersReady = this.containers.length > 0
      && [...sidecars, ...this.containers].every((container) => container.isReady && "running" in container.state);
    const gates = (this.pod.spec?.readinessGates ?? []).every((gate) =>
      (this.pod.status?.conditions ?? []).some((condition) => condition.type === gate.conditionType && condition.status === "True"));
    const hasSandbox = this.phase !== "Pending" || this.isInitialized || this.containers.some((container) => !("waiting" in container.state));
    // A merge patch replaces the whole list, so the conditions others own (PodScheduled, readiness gates,
    // DisruptionTarget) are carried over from the latest pod.
    const conditions = [
      this.transition("PodReadyToStartContainers", hasSandbox),
      this.transition("Initialized", this.isInitialized),
      this.transition("Ready", containersReady && gates && !this.isTerminating),
      this.transition("ContainersReady", containersReady),
      ...(this.pod.status?.conditions ?? []).filter((condition) => !ownedConditions.has(condition.type)).map(conditionJson),
    ];
    const status = (container: ContainerRunner): Record<string, unknown> => ({
      name: container.spec.name,
      image: container.spec.image,
      imageID: `testbed://${container.spec.image ?? ""}`,
      ...("waiting" in container.state ? {} : { containerID: container.containerId() }),
      ready: container.isReady && "running" in container.state,
      started: container.isStarted && "running" in container.state,
      restartCount: container.restartCount,
      state: container.state,
      lastState: container.lastState ?? {},
    });
    return {
      phase: this.phase,
      reason: this.reason ?? null,
      message: this.message ?? null,
      hostIP: address,
      hostIPs: [{ ip: address }],
      podIP: address,
      podIPs: [{ ip: address }],
      startTime: this.startTime,
      conditions,
      initContainerStatuses: this.initContainers.map(status),
      containerStatuses: this.containers.map(status),
    };
  }

  private async pushStatus(): Promise<void> {
    if (this.isKilled) return;
    const status = this.buildStatus();
    const text = JSON.stringify(status);
    if (text === this.lastPushed) return;
    try {
      await this.runner.core.patchNamespacedPodStatus({ name: this.name, namespace: this.namespace, body: { status } }, mergePatch);
      this.lastPushed = text;
    } catch (error) {
      if (apiCode(error) === 404) return;
      this.runner.log(`${this.key}: status patch failed: ${errorText(error)}`);
      await sleep(1_000, this.abort.signal);
      this.queueStatus();
    }
  }

  // The API asked for deletion: preStop, stop signal, grace, SIGKILL, then remove the object as the kubelet does.
  async terminate(): Promise<void> {
    if (this.isTerminating) return;
    this.isTerminating = true;
    const started = Date.now();
    const deadlineMs = started + this.graceSeconds() * 1_000;
    this.abort.abort();
    this.queueStatus();
    await Promise.all([...this.initContainers, ...this.containers].map((container) => container.stop(deadlineMs)));
    await this.done;
    this.runner.log(`${this.key}: containers stopped in ${Date.now() - started} ms`);
    this.isKilled = true;
    await this.statusChain;
    this.runner.forget(this);
    try {
      await this.runner.core.deleteNamespacedPod({ name: this.name, namespace: this.namespace, body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } } });
    } catch (error) {
      if (apiCode(error) !== 404) this.runner.log(`${this.key}: final delete failed: ${errorText(error)}`);
    }
  }

  // The object is gone (force-deleted, node removed, runner stopping): no hooks, no API writes.
  async kill(graceMs = 0): Promise<void> {
    this.isKilled = true;
    this.isTerminating = true;
    this.abort.abort();
    const deadline = Date.now() + graceMs;
    await Promise.all([...this.initContainers, ...this.containers].map((container) => (graceMs > 0 ? container.stop(deadline) : container.kill())));
    await this.done;
    this.runner.forget(this);
  }
}

type OwnedCondition = "PodReadyToStartContainers" | "Initialized" | "Ready" | "ContainersReady";

const ownedConditions: ReadonlySet<string> = new Set<OwnedCondition>(["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"]);

interface ConditionJson {
  readonly type: string;
  readonly status: string;
  readonly lastTransitionTime: string | null;
  readonly lastProbeTime: string | null;
  readonly reason?: string;
  readonly message?: string;
}

function conditionJson(condition: V1PodCondition): ConditionJson {
  const time = (date: Date | undefined): string | null => (date === undefined || date === null ? null : rfc3339(new Date(date)));
  return {
    type: condition.type,
    status: condition.status,
    lastTransitionTime: time(condition.lastTransitionTime),
    lastProbeTime: time(condition.lastProbeTime),
    ...(condition.reason === undefined ? {} : { reason: condition.reason }),
    ...(condition.message === undefined ? {} : { message: condition.message }),
  };
}

function hostPathOf(containerPath: string, mounts: readonly Mount[]): string | undefined {
  for (const mount of mounts) {
    if (containerPath === mount.containerPath) return mount.hostPath;
    if (containerPath.startsWith(`${mount.containerPath}/`)) return join(mount.hostPath, containerPath.slice(mount.containerPath.length + 1));
  }
  return undefined;
}

function translatePaths(text: string, mounts: readonly Mount[]): string {
  let result = text;
  for (const mount of mounts) {
    const pattern = new RegExp(`(^|[=\\s:,"'(])${escapeRegExp(mount.containerPath)}(?=$|[/\\s,;:"')])`, "g");
    result = result.replace(pattern, (_match, lead: string) => `${lead}${mount.hostPath}`);
  }
  return result;
}

async function rewriteTree(path: string, mounts: readonly Mount[]): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) return;
  if (info.isDirectory()) {
    for (const entry of await readdir(path)) await rewriteTree(join(path, entry), mounts);
    return;
  }
  if (!info.isFile() || info.size > 1_000_000) return;
  const text = await readFile(path, "utf8");
  const rewritten = translatePaths(text, mounts);
  if (rewritten !== text) await writeFile(path, rewritten);
}

function defaultServer(nodeName: string): string {
  return `server {
    listen 80 default_server;
    location = /healthz { default_type text/plain; return 200 "ok\\n"; }
    location / { default_type text/plain; return 200 "${nodeName}\\n"; }
  }`;
}

function expandVars(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) =>
    match === "$$" ? "$" : name !== undefined && env[name] !== undefined ? env[name] : match);
}

function resourceValue(container: V1Container, resource: string): string {
  const [kind, name] = resource.split(".");
  const declared = kind === "limits" ? container.resources?.limits : container.resources?.requests;
  const value = declared?.[name ?? ""];
  if (value !== undefined) return String(value);
  return name === "cpu" ? "4" : name === "memory" ? String(8 * 1024 ** 3) : "0";
}

function keyValue(data: ReadonlyMap<string, Buffer>, key: string, what: string, isOptional: boolean): string | undefined {
  const value = data.get(key);
  if (value !== undefined) return value.toString("utf8");
  if (isOptional) return undefined;
  throw new ConfigError(`couldn't find key ${key} in ${what}`);
}

// Unchanged content is left alone and new content replaces the file in one rename, as the kubelet's symlink swap
// does, so a process watching a mounted ConfigMap sees one change per real update.
async function writeFileAt(dir: string, relative: string, content: string | Buffer): Promise<void> {
  const path = join(dir, relative);
  const current = await readFile(path).catch(() => undefined);
  if (current !== undefined && current.equals(typeof content === "string" ? Buffer.from(content) : content)) return;
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, content);
  await rename(temporary, path);
}

async function writeItems(dir: string, data: ReadonlyMap<string, Buffer>, items: readonly { key: string; path: string }[] | undefined): Promise<void> {
  if (items === undefined) {
    for (const [key, value] of data) await writeFileAt(dir, key, value);
    return;
  }
  for (const item of items) {
    const value = data.get(item.key);
    if (value !== undefined) await writeFileAt(dir, item.path, value);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The runner

class RunnerCore implements NodeRunner {
  readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  readonly nodes = new Map<string, NodeState>();
  private readonly workers = new Map<string, PodWorker>();
  private informer: (Informer<V1Pod> & ObjectCache<V1Pod>) | undefined;
  private resync: NodeJS.Timeout | undefined;
  private isStopped = false;
  private isResyncing = false;
  private stopping: Promise<void> | undefined;
  private readonly logStream: WriteStream;
  private readonly kc: KubeConfig;
  readonly nodeNames: readonly string[];

  constructor(
    readonly cp: RunnerControlPlane,
    readonly dir: string,
    readonly repoDir: string,
    hosts: readonly RunnerHost[],
    names: readonly string[],
    private readonly labels: Readonly<Record<string, string>>,
    private readonly externalLog: ((line: string) => void) | undefined,
    private readonly heartbeatMs: number,
  ) {
    const kc = new KubeConfig();
    kc.loadFromFile(cp.adminKubeconfig);
    this.kc = kc;
    this.core = kc.makeApiClient(CoreV1Api);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
    this.logStream = createWriteStream(join(dir, "runner.log"), { flags: "a" });
    this.nodeNames = names;
    hosts.forEach((host, index) => {
      const name = names[index] ?? `node-${index + 1}`;
      this.nodes.set(name, {
        name, host, checker: new NodeChecker(host.netns), relay: undefined, heartbeat: undefined,
        isRunning: false, isRemoved: false, readyTransition: rfc3339(), uid: undefined,
      });
    });
  }

  log(line: string): void {
    const stamped = `${new Date().toISOString()} ${line}`;
    this.logStream.write(`${stamped}\n`);
    this.externalLog?.(stamped);
  }

  hostOf(nodeName: string): RunnerHost {
    return this.node(nodeName).host;
  }

  processes(): readonly PodProcess[] {
    return [...this.workers.values()].flatMap((worker) => worker.processes());
  }

  podDir(namespace: string, name: string): string | undefined {
    return [...this.workers.values()].find((worker) => worker.namespace === namespace && worker.name === name)?.dir;
  }

  relayPids(): readonly number[] {
    return [...this.nodes.values()].flatMap((node) => node.relay?.pids() ?? []);
  }

  commandFor(spec: V1Container, command: readonly string[], args: readonly string[]): CommandLine {
    return imageKind(spec.image) === "ours" ? oursCommand(this.repoDir, command, args) : { cmd: command[0] ?? "true", args: [...command.slice(1), ...args] };
  }

  async configMapData(namespace: string, name: string, isOptional: boolean): Promise<Map<string, Buffer>> {
    try {
      const configMap = await this.core.readNamespacedConfigMap({ name, namespace });
      const data = new Map<string, Buffer>();
      for (const [key, value] of Object.entries(configMap.data ?? {})) data.set(key, Buffer.from(value, "utf8"));
      for (const [key, value] of Object.entries(configMap.binaryData ?? {})) data.set(key, Buffer.from(value, "base64"));
      return data;
    } catch (error) {
      if (apiCode(error) === 404 && isOptional) return new Map();
      if (apiCode(error) === 404) throw new ConfigError(`configmap "${name}" not found`);
      throw new ConfigError(`reading configmap ${name}: ${errorText(error)}`);
    }
  }

  async secretData(namespace: string, name: string, isOptional: boolean): Promise<Map<string, Buffer>> {
    try {
      const secret = await this.core.readNamespacedSecret({ name, namespace });
      const data = new Map<string, Buffer>();
      for (const [key, value] of Object.entries(secret.data ?? {})) data.set(key, Buffer.from(value, "base64"));
      for (const [key, value] of Object.entries(secret.stringData ?? {})) data.set(key, Buffer.from(value, "utf8"));
      return data;
    } catch (error) {
      if (apiCode(error) === 404 && isOptional) return new Map();
      if (apiCode(error) === 404) throw new ConfigError(`secret "${name}" not found`);
      throw new ConfigError(`reading secret ${name}: ${errorText(error)}`);
    }
  }

  // Bound to the pod, as the kubelet's projected token is: deleting the pod revokes it.
  async mintToken(pod: V1Pod, audience: string | undefined, expirationSeconds: number | undefined): Promise<string> {
    const namespace = pod.metadata?.namespace ?? "";
    const serviceAccount = pod.spec?.serviceAccountName ?? "default";
    try {
      const request = await this.core.createNamespacedServiceAccountToken({
        name: serviceAccount,
        namespace,
        body: {
          spec: {
            audiences: audience === undefined ? [] : [audience],
            expirationSeconds: expirationSeconds ?? 3600,
            boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata?.name ?? "", uid: pod.metadata?.uid ?? "" },
          },
        },
      });
      const token = request.status?.token;
      if (token === undefined) throw new ConfigError(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
      return token;
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(`minting a token for service account ${namespace}/${serviceAccount}: ${errorText(error)}`);
    }
  }

  // --- nodes

  async startNodes(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((node) => this.startNodeState(node)));
  }

  private async startNodeState(node: NodeState): Promise<void> {
    node.isRunning = true;
    node.isRemoved = false;
    node.checker.start();
    node.relay = await this.startRelay(node);
    await this.registerNode(node);
    await this.beat(node);
    node.heartbeat = setInterval(() => void this.beat(node), this.heartbeatMs);
  }

  private async registerNode(node: NodeState): Promise<void> {
    const labels = {
      "kubernetes.io/hostname": node.name,
      "kubernetes.io/os": "linux",
      "kubernetes.io/arch": nodeArch(),
      "ha-nginx.dev/testbed-netns": node.host.netns,
      ...this.labels,
    };
    try {
      const created = await this.core.createNode({ body: { metadata: { name: node.name, labels }, spec: {} } });
      node.uid = created.metadata?.uid;
    } catch (error) {
      if (apiCode(error) !== 409) throw error;
      const patched = await this.core.patchNode({ name: node.name, body: { metadata: { labels } } }, mergePatch);
      node.uid = patched.metadata?.uid;
    }
  }

  private nodeStatus(node: NodeState): Record<string, unknown> {
    const now = rfc3339();
    const condition = (type: string, status: string, reason: string, message: string, transition: string): Record<string, string> =>
      ({ type, status, reason, message, lastHeartbeatTime: now, lastTransitionTime: transition });
    const resources = { cpu: "4", memory: "8Gi", pods: "110", "ephemeral-storage": "100Gi" };
    return {
      addresses: [{ type: "InternalIP", address: node.host.address }, { type: "Hostname", address: node.name }],
      capacity: resources,
      allocatable: resources,
      conditions: [
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", node.readyTransition),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", node.readyTransition),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", node.readyTransition),
        condition("Ready", "True", "KubeletReady", "test bed node runner is posting ready status", node.readyTransition),
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: node.host.netns,
        systemUUID: node.uid ?? node.name,
        bootID: node.uid ?? node.name,
        kernelVersion: release(),
        osImage: "ha-nginx test bed (network namespace node)",
        containerRuntimeVersion: "testbed://0.1.0",
        kubeletVersion: this.cp.versions?.kubernetes ?? "v1.37.2",
        kubeProxyVersion: "",
        operatingSystem: "linux",
        architecture: nodeArch(),
      },
    };
  }

  private async beat(node: NodeState): Promise<void> {
    if (!node.isRunning || this.isStopped) return;
    try {
      await this.core.patchNodeStatus({ name: node.name, body: { status: this.nodeStatus(node) } }, mergePatch);
    } catch (error) {
      if (apiCode(error) === 404) {
        this.log(`node ${node.name} was deleted from the API: stopping its pods`);
        node.isRemoved = true;
        await this.haltNode(node, false);
        return;
      }
      this.log(`node ${node.name}: status update failed: ${errorText(error)}`);
    }
    await this.renewLease(node);
  }

  private async renewLease(node: NodeState): Promise<void> {
    const renewTime = new V1MicroTime();
    try {
      await this.coordination.patchNamespacedLease({ name: node.name, namespace: leaseNamespace, body: { spec: { holderIdentity: node.name, renewTime: renewTime.toISOString() } } }, mergePatch);
    } catch (error) {
      if (apiCode(error) !== 404) {
        this.log(`node ${node.name}: lease renewal failed: ${errorText(error)}`);
        return;
      }
      try {
        await this.coordination.createNamespacedLease({
          namespace: leaseNamespace,
          body: {
            metadata: { name: node.name, ownerReferences: node.uid === undefined ? [] : [{ apiVersion: "v1", kind: "Node", name: node.name, uid: node.uid }] },
            spec: { holderIdentity: node.name, leaseDurationSeconds, renewTime },
          },
        });
      } catch (createError) {
        this.log(`node ${node.name}: lease creation failed: ${errorText(createError)}`);
      }
    }
  }

  private async haltNode(node: NodeState, keepPods: boolean): Promise<void> {
    node.isRunning = false;
    if (node.heartbeat !== undefined) clearInterval(node.heartbeat);
    node.heartbeat = undefined;
    if (keepPods) return;
    await Promise.all([...this.workers.values()].filter((worker) => worker.node === node).map((worker) => worker.kill()));
  }

  async stopNode(nodeName: string, options: { readonly keepPods?: boolean } = {}): Promise<void> {
    const node = this.node(nodeName);
    await this.haltNode(node, options.keepPods === true);
  }

  async cutApi(nodeName: string): Promise<void> {
    const node = this.node(nodeName);
    await node.relay?.stop();
    node.relay = undefined;
  }

  async restoreApi(nodeName: string): Promise<void> {
    const node = this.node(nodeName);
    node.relay ??= await this.startRelay(node);
  }

  private startRelay(node: NodeState): Promise<ApiRelay> {
    return startApiRelay({ netns: node.host.netns, socketPath: join(this.dir, `${node.name}-api.sock`), apiPort: this.cp.apiPort });
  }

  private node(nodeName: string): NodeState {
    const node = this.nodes.get(nodeName);
    if (node === undefined) throw new Error(`no test bed node named ${nodeName}`);
    return node;
  }

  async startNode(nodeName: string): Promise<void> {
    const node = this.node(nodeName);
    if (node.isRunning) return;
    node.isRunning = true;
    node.isRemoved = false;
    node.readyTransition = rfc3339();
    await this.registerNode(node);
    await this.beat(node);
    node.heartbeat = setInterval(() => void this.beat(node), this.heartbeatMs);
    for (const pod of this.informer?.list() ?? []) this.onPod(pod);
  }

  // --- pods

  async startPodWatch(): Promise<void> {
    const informer = makeInformer<V1Pod>(this.kc, "/api/v1/pods", () => this.core.listPodForAllNamespaces());
    this.informer = informer;
    informer.on("add", (pod) => this.onPod(pod));
    informer.on("update", (pod) => this.onPod(pod));
    informer.on("delete", (pod) => this.onPodGone(pod));
    // client-node informers stop on any error but 410; the kubelet's watch never gives up, so neither does this one.
    informer.on("error", (error) => {
      if (this.isStopped) return;
      this.log(`pod watch failed (${errorText(error)}); restarting`);
      setTimeout(() => {
        if (!this.isStopped) informer.start().catch((startError: unknown) => this.log(`pod watch restart failed: ${errorText(startError)}`));
      }, informerRestartMs);
    });
    await informer.start();
    this.resync = setInterval(() => void this.resyncPods(), resyncMs);
  }

  private onPod(pod: V1Pod): void {
    if (this.isStopped) return;
    const node = this.nodes.get(pod.spec?.nodeName ?? "");
    const uid = pod.metadata?.uid;
    if (node === undefined || uid === undefined || !node.isRunning) return;
    const existing = this.workers.get(uid);
    if (existing !== undefined) {
      existing.update(pod);
      return;
    }
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") return;
    if (pod.metadata?.deletionTimestamp !== undefined) {
      void this.core.deleteNamespacedPod({ name: pod.metadata.name ?? "", namespace: pod.metadata.namespace ?? "", body: { gracePeriodSeconds: 0, preconditions: { uid } } }).catch(() => undefined);
      return;
    }
    const worker = new PodWorker(pod, this, node);
    this.workers.set(uid, worker);
    this.log(`${worker.key}: starting on ${node.name} (${node.host.netns})`);
    worker.start();
  }

  private onPodGone(pod: V1Pod): void {
    const worker = this.workers.get(pod.metadata?.uid ?? "");
    if (worker === undefined || !worker.node.isRunning) return;
    this.log(`${worker.key}: deleted from the API; stopping its processes`);
    void worker.kill(minStopAfterPreStopMs);
  }

  // Catches what a watch gap missed: pods that vanished and bound pods without a worker.
  private async resyncPods(): Promise<void> {
    const informer = this.informer;
    if (informer === undefined || this.isStopped || this.isResyncing) return;
    this.isResyncing = true;
    try {
      await this.resyncOnce(informer);
    } finally {
      this.isResyncing = false;
    }
  }

  private async resyncOnce(informer: Informer<V1Pod> & ObjectCache<V1Pod>): Promise<void> {
    for (const pod of informer.list()) this.onPod(pod);
    await Promise.all([...this.workers.values()].map((worker) => worker.refreshVolumes()));
    for (const worker of [...this.workers.values()]) {
      if (informer.get(worker.name, worker.namespace) !== undefined || !worker.node.isRunning) continue;
      try {
        const pod = await this.core.readNamespacedPod({ name: worker.name, namespace: worker.namespace });
        if (pod.metadata?.uid !== worker.uid) void worker.kill(minStopAfterPreStopMs);
      } catch (error) {
        if (apiCode(error) === 404) void worker.kill(minStopAfterPreStopMs);
      }
    }
  }

  forget(worker: PodWorker): void {
    if (this.workers.get(worker.uid) === worker) this.workers.delete(worker.uid);
  }

  stop(options: { readonly deleteNodes?: boolean } = {}): Promise<void> {
    this.stopping ??= this.stopOnce(options.deleteNodes === true);
    return this.stopping;
  }

  private async stopOnce(deleteNodes: boolean): Promise<void> {
    this.isStopped = true;
    if (this.resync !== undefined) clearInterval(this.resync);
    await this.informer?.stop().catch(() => undefined);
    for (const node of this.nodes.values()) {
      node.isRunning = false;
      if (node.heartbeat !== undefined) clearInterval(node.heartbeat);
    }
    await Promise.all([...this.workers.values()].map((worker) => worker.kill(minStopAfterPreStopMs)));
    if (deleteNodes) {
      await Promise.all([...this.nodes.keys()].map((name) => this.core.deleteNode({ name }).catch(() => undefined)));
    }
    await Promise.all([...this.nodes.values()].map(async (node) => {
      await node.relay?.stop();
      node.relay = undefined;
      await node.checker.stop();
    }));
    await new Promise<void>((resolveEnd) => this.logStream.end(() => resolveEnd()));
    if (process.env.HA_NGINX_KEEP_RUNNER_DIR === undefined) await rm(this.dir, { recursive: true, force: true });
    else process.stderr.write(`node runner files kept in ${this.dir}\n`);
  }
}

export async function startNodeRunner(options: NodeRunnerOptions): Promise<NodeRunner> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "ha-nginx-nodes-")));
  await mkdir(join(dir, "pods"), { recursive: true });
  const names = options.nodeNames ?? options.hosts.map((_host, index) => `node-${index + 1}`);
  const runner = new RunnerCore(options.cp, dir, options.repoDir ?? defaultRepoDir, options.hosts, names, options.nodeLabels ?? {}, options.log, options.heartbeatIntervalMs ?? defaultHeartbeatMs);
  try {
    await runner.startNodes();
    await runner.startPodWatch();
  } catch (error) {
    await runner.stop();
    throw error;
  }
  return runner;
}
