// One container of a pod: its process in the node's namespace, restarts with back-off, startup, readiness and liveness
// probes, and the kubelet's stop sequence (preStop, stop signal, SIGKILL at the deadline).
import type { V1Container, V1HTTPGetAction, V1Probe } from "@kubernetes/client-node";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { killGroup, signalGroup } from "../api-relay.js";
import { commandFor, imageKind, nginxSignalFor, sleepSeconds } from "./image-commands.js";
import { runToCompletion, spawnInNetns, waitForExit, type CommandLine } from "./namespace-process.js";
import type { NodeState } from "./node-heartbeat.js";
import type { CheckResult } from "./probe-helper.js";
import { rfc3339, sleep } from "./time.js";

// The longest back-off between restarts of a crashing container.
export const maxBackoffMs = 10_000;
// The least time between a stop signal and SIGKILL, however much of the grace period a preStop hook used.
export const minStopAfterPreStopMs = 2_000;

export type ContainerState =
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

export interface LaunchSpec {
  readonly line: CommandLine;
  readonly env: Readonly<Record<string, string>>;
  readonly stopSignal: NodeJS.Signals;
  // Maps the container's mount paths to the pod folder, for exec probes and hooks as for the command.
  readonly translate: (text: string) => string;
}

type ProbeKind = "readiness" | "liveness" | "startup";

// What a container uses of its pod and of the kubelet.
export interface ContainerContext {
  readonly node: NodeState;
  // The pod folder: the container's working directory and where its log goes.
  readonly dir: string;
  readonly repoDir: string;
  readonly restartPolicy: string;
  readonly graceSeconds: () => number;
  readonly onChange: () => void;
  readonly log: (line: string) => void;
}

export class ContainerRunner {
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
    private readonly ctx: ContainerContext,
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
    child.on("error", (error) => this.ctx.log(`${this.spec.name}: spawn failed: ${error.message}`));
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
    this.ctx.log(`${this.spec.name} (${this.uid}) exited ${exitCode}; restart in ${delayMs} ms`);
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
        this.ctx.log(`${this.spec.name} (${this.uid}) readiness ${isReady ? "passed" : `failed: ${result.detail}`}`);
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
      this.ctx.log(`${this.spec.name} (${this.uid}) ${kind} probe failed ${failures} times (${result.detail}): killing it`);
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
      return this.ctx.node.probeHelper.check({ kind: "tcp", host: probe.tcpSocket.host ?? this.ctx.node.host.address, port: this.port(probe.tcpSocket.port), timeoutMs });
    }
    if (probe.exec?.command !== undefined && this.launch !== undefined) {
      const command = probe.exec.command.map(this.launch.translate);
      const ok = await runToCompletion(this.ctx.node.host.netns, commandFor(this.ctx.repoDir, this.spec, command, []), this.launch.env, this.logFile, this.ctx.dir, timeoutMs);
      return { ok, detail: ok ? "exit 0" : "non-zero exit or timeout" };
    }
    return { ok: false, detail: "probe type not supported by the test bed (grpc?)" };
  }

  httpCheck(action: V1HTTPGetAction, timeoutMs: number): Promise<CheckResult> {
    return this.ctx.node.probeHelper.check({
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
    await runToCompletion(this.ctx.node.host.netns, commandFor(this.ctx.repoDir, this.spec, translated, []), this.launch.env, this.logFile, this.ctx.dir, budgetMs);
  }
}

const signalNumbers: Readonly<Partial<Record<NodeJS.Signals, number>>> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15,
};
