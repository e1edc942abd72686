// One HighAvailabilityVIP served by the node's agent: its router, its local probe, its nginx readiness, its password
// and its status entry. The node agent (agent.ts) feeds it the resource and the node's pods from watches it shares
// with every other resource, so a fault here (a missing Secret, a bad spec, a hanging probe) stays this resource's.

import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { matchesSelector } from "../../api/v1alpha1/selector.js";
import type { HaVipSpec, LabelSelector } from "../../api/v1alpha1/index.js";
import type { RouterConfig } from "../../vrrp/config.js";
import { MonotonicClock } from "../adapters/clock.js";
import type { HealthMonitor } from "../health-monitor.js";
import { createRuntime, isSameConfig, findVrrpInterface, startProbe, type SharedAdapters, type VrrpInterface } from "../wiring.js";
import type { RouterMetrics } from "../metrics.js";
import { passwordLengthWarning, routerConfigFromSpec } from "../router-config.js";
import type { AgentRuntime, Transition } from "../runtime.js";
import type { AgentApi } from "./client.js";
import { combineHealth, cordonReadiness, nodeReadiness, type Readiness } from "./readiness.js";
import { observedStatusEntry, resolveHaVip, type HaVipResolution } from "./resolve.js";
import { buildStatusEntry, describeReason } from "./status-entry.js";
import { EventBudget } from "../../k8s/event-budget.js";
import { StatusPublisher } from "./status-publisher.js";

/** The final status write on SIGTERM is best effort: the pod's grace period belongs to the hand-over. */
const FINAL_WRITE_BOUND_MS = 1000;
const RETRY_MS = 5000;

const eventReasons = { Initialize: "Initializing", Backup: "BecameBackup", Master: "BecameMaster", Fault: "EnteredFault" } as const;
const stateNames = { Initialize: "INIT", Backup: "BACKUP", Master: "MASTER", Fault: "FAULT" } as const;

/** Logs a message only when it differs from the last one of its kind, so a resync does not repeat it. */
class OnChangeLogger {
  readonly #last = new Map<string, string>();
  constructor(private readonly logger: Logger) {}
  /** Whether it logged: false when it repeats the last message of its kind. */
  log(kind: string, level: "info" | "warn" | "error", fields: object, message: string): boolean {
    const key = `${message} ${JSON.stringify(fields)}`;
    if (this.#last.get(kind) === key) return false;
    this.#last.set(kind, key);
    this.logger[level](fields, message);
    return true;
  }
  clear(kind: string): void {
    this.#last.delete(kind);
  }
}

export interface ResourceAgentContext {
  readonly node: string;
  /** The node's own address (the pod's status.hostIP): its interface is the default VRRP interface. */
  readonly nodeAddress: string | undefined;
  readonly shared: SharedAdapters;
  readonly api: AgentApi;
  readonly logger: Logger;
  readonly startedAt: Date;
  /** Resolves once an earlier router of the same resource has stopped (it was deleted or unplaced and came back). */
  readonly previousStopped: Promise<void>;
  /** The pods on this node as the node agent's watch sees them, in every namespace it watches; undefined until listed. */
  readonly podsOnNode: () => readonly V1Pod[] | undefined;
}

export class ResourceAgent {
  readonly #onChangeLogger: OnChangeLogger;
  readonly #publisher: StatusPublisher;
  #object: KubernetesObject | undefined;
  #podSelector: LabelSelector | undefined;
  #podReadiness: Readiness | undefined;
  #probeReadiness: Readiness | undefined;
  #cordonReadiness: Readiness | undefined;
  #probe: HealthMonitor | undefined;
  #runtime: AgentRuntime | undefined;
  #metrics: RouterMetrics | undefined;
  #vrrpInterface: VrrpInterface | undefined;
  #vrid: number | undefined;
  #password: { readonly ref: string; readonly value: string } | undefined;
  #problem: string | undefined = "waiting for configuration";
  /** Its router has left INIT, or the resource has said why it does not run: a rollout may move on. */
  #isSettled = false;
  readonly #eventBudget = new EventBudget();
  #isReconciling = false;
  #isReconcileAgain = false;
  #retry: NodeJS.Timeout | undefined;
  #isStopping = false;
  /** Until the router first reaches BACKUP or MASTER it is starting (nginx not Ready yet is no news), and records no Event. */
  #isStarting = true;

  constructor(
    readonly namespace: string,
    readonly name: string,
    private readonly context: ResourceAgentContext,
  ) {
    this.#onChangeLogger = new OnChangeLogger(context.logger);
    this.#publisher = new StatusPublisher(new MonotonicClock(), (entry, signal) => context.api.applyStatus(entry, signal), undefined, (detail, failures, retryIn) => {
      if (failures === 1 || failures % 10 === 0) context.logger.warn({ error: detail, failures, retryInMs: retryIn }, "cannot write the status entry; retrying with backoff");
    });
  }

  get key(): string {
    return `${this.namespace}/${this.name}`;
  }

  get runtime(): AgentRuntime | undefined {
    return this.#runtime;
  }

  get isSettled(): boolean {
    return this.#isSettled;
  }

  /** This resource's part of /state: its router once it runs, else why it does not. */
  state(): { readonly router?: unknown; readonly problem?: string } {
    const runtime = this.#runtime;
    if (runtime === undefined) return { problem: this.#problem ?? "starting" };
    return {
      router: {
        havip: this.key,
        vrid: this.#vrid,
        interface: this.#vrrpInterface?.ifname,
        health: this.#health(),
        cordonReadiness: this.#cordonReadiness,
        podReadiness: this.#podReadiness,
        probeReadiness: this.#probeReadiness,
        statusWriteFailures: this.#publisher.failures,
        ...runtime.snapshot(),
      },
    };
  }

  /** The resource as the watch now holds it. */
  update(object: KubernetesObject): void {
    this.#object = object;
    this.#reconcile();
  }

  /** The node's pods changed: this resource's nginx readiness may have. */
  podsChanged(): void {
    if (this.#podSelector === undefined) return;
    this.#podReadiness = this.#readPods(this.#podSelector);
    this.#applyHealth();
  }

  /** Hands the VIP over and writes the last status entry, within a bound. */
  async stop(): Promise<void> {
    this.#isStopping = true;
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#probe?.stop();
    const runtime = this.#runtime;
    if (runtime === undefined) return this.#publisher.stop();
    await runtime.shutdown();
    this.#publish();
    const bound = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), FINAL_WRITE_BOUND_MS).unref());
    const outcome = await Promise.race([this.#publisher.flush().then(() => "written" as const), bound]);
    if (outcome === "timeout") this.context.logger.warn("final status entry not written within 1 s; the controller will mark this node");
    this.#publisher.stop();
    this.#metrics?.remove();
  }

  #scheduleRetry(): void {
    if (this.#retry !== undefined || this.#isStopping) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#reconcile();
    }, RETRY_MS);
  }

  // Serialised: the password read and the interface lookup are async, and two overlapping passes would race.
  #reconcile(): void {
    if (this.#isStopping) return;
    if (this.#isReconciling) {
      this.#isReconcileAgain = true;
      return;
    }
    this.#isReconciling = true;
    void (async () => {
      try {
        do {
          this.#isReconcileAgain = false;
          await this.#reconcileOnce();
        } while (this.#isReconcileAgain && !this.#isStopping);
      } catch (error) {
        this.context.logger.error({ error: error instanceof Error ? error.message : String(error) }, "configuration pass failed; retrying");
        this.#scheduleRetry();
      } finally {
        this.#isReconciling = false;
      }
    })();
  }

  #refuse(problem: string): void {
    this.#problem = problem;
    this.#isSettled = true;
  }

  async #reconcileOnce(): Promise<void> {
    // Its VRID's socket and VIPs are still the old router's until that has handed over.
    await this.context.previousStopped;
    const object = this.#object;
    if (object === undefined) return;
    this.#publisher.observed(observedStatusEntry(object, this.context.node));
    const resolution = resolveHaVip(object);
    if (resolution.kind === "refused") {
      if (this.#runtime !== undefined) {
        this.context.logger.warn({ problem: resolution.message }, "no VIPAddressPool admits this HighAvailabilityVIP any more; releasing its VIP");
        await this.#stopRouter();
        this.#vrid = undefined;
      }
      this.#onChangeLogger.log("config", "warn", { problem: resolution.message }, "not serving: no VIPAddressPool admits it");
      return this.#refuse(resolution.message);
    }
    if (resolution.kind !== "ready") {
      const isRunning = this.#runtime !== undefined;
      const level = resolution.kind === "invalid" ? "error" : "info";
      const suffix = isRunning ? "; keeping the running configuration" : "";
      this.#onChangeLogger.log("config", level, { problem: resolution.message }, resolution.kind === "invalid" ? `the HighAvailabilityVIP is invalid${suffix}` : `not starting yet${suffix}`);
      return this.#refuse(resolution.message);
    }
    const password = await this.#passwordFor(resolution);
    if (password === "missing") return this.#scheduleRetry();
    const vrrpInterface = this.#vrrpInterface ?? (await this.#findVrrpInterface(resolution.spec));
    if (vrrpInterface === undefined) return this.#scheduleRetry();
    if (resolution.spec.interface !== undefined && resolution.spec.interface !== vrrpInterface.ifname) {
      this.#onChangeLogger.log("interface", "warn", { running: vrrpInterface.ifname, wanted: resolution.spec.interface }, "spec.interface changed; the agent keeps the running interface until it restarts");
    }
    const result = routerConfigFromSpec(resolution.spec, {
      node: this.context.node,
      primaryAddress: vrrpInterface.primary,
      ownAddresses: vrrpInterface.ownAddresses,
      vrid: resolution.vrid,
      publishedPeers: resolution.publishedPeers,
      password,
    });
    if (!result.ok) {
      this.#onChangeLogger.log("config", "error", { problems: result.problems }, "the configuration cannot run");
      return this.#refuse(`the configuration cannot run: ${result.problems.join(", ")}`);
    }
    this.#onChangeLogger.clear("config");
    this.#problem = undefined;
    const cordon = cordonReadiness(resolution.cordonedNodes, this.context.node);
    if (cordon?.detail !== this.#cordonReadiness?.detail) {
      this.#cordonReadiness = cordon;
      this.#applyHealth();
    }
    this.#selectPods(resolution.spec);
    if (this.#runtime === undefined) await this.#startRouter(resolution, vrrpInterface, result.config);
    else if (result.config.vrid !== this.#runtime.config.vrid) {
      // The socket hands datagrams to routers by VRID: another VRID is another virtual router.
      this.context.logger.warn({ from: this.#runtime.config.vrid, to: result.config.vrid }, "VRID changed; restarting the router");
      await this.#stopRouter();
      await this.#startRouter(resolution, vrrpInterface, result.config);
    } else if (!isSameConfig(this.#runtime.config, result.config)) {
      this.#runtime.applyConfig(result.config);
      this.context.logger.info({ priority: result.config.priority, peers: result.config.peers, interval: result.config.advertisementInterval, vrid: result.config.vrid }, "configuration applied");
      this.#publish();
    }
    this.#vrid = result.config.vrid;
  }

  async #passwordFor(resolution: Extract<HaVipResolution, { kind: "ready" }>): Promise<string | undefined | "missing"> {
    const ref = resolution.passwordRef;
    if (ref === undefined) return undefined;
    // A new resourceVersion from the controller means the Secret changed: every agent reads it again at once.
    const key = `${ref.name}/${ref.key}@${resolution.passwordSecretVersion ?? ""}`;
    if (this.#password?.ref === key) return this.#password.value;
    const read = await this.context.api.readPassword(ref);
    if (!read.ok) {
      // The detail names the Secret and the HTTP status, never the value.
      this.#onChangeLogger.log("password", "error", { error: read.detail }, "cannot read the VRRPv2 password from spec.authentication.passwordSecretRef; retrying");
      this.#refuse(`cannot read the VRRPv2 password: ${read.detail}`);
      return "missing";
    }
    this.#onChangeLogger.clear("password");
    const warning = passwordLengthWarning(read.value);
    if (warning !== undefined && this.#onChangeLogger.log("password-length", "warn", { secret: ref.name, key: ref.key }, warning)) {
      this.#recordEvent("Warning", "PasswordTruncated", `${this.context.node}: ${warning} (Secret ${ref.name}, key ${ref.key}); shorten it to 8 bytes`);
    }
    this.#password = { ref: key, value: read.value };
    return read.value;
  }

  async #findVrrpInterface(spec: HaVipSpec): Promise<VrrpInterface | undefined> {
    try {
      this.#vrrpInterface = await findVrrpInterface(spec, this.context.nodeAddress);
      return this.#vrrpInterface;
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      this.#onChangeLogger.log("vrrp-interface", "error", { error: detail }, "cannot find the VRRP interface; retrying");
      this.#refuse(detail);
      return undefined;
    }
  }

  async #startRouter(resolution: Extract<HaVipResolution, { kind: "ready" }>, vrrpInterface: VrrpInterface, config: RouterConfig): Promise<void> {
    const { shared, logger } = this.context;
    const metrics = shared.metrics.router(this.key, config.vrid);
    this.#metrics = metrics;
    const runtime = createRuntime(shared, vrrpInterface, config, logger, metrics, resolution.spec.transport.mode === "Multicast");
    runtime.onTransition((transition) => this.#onTransition(transition));
    const probeConfigured = resolution.spec.healthCheck?.probe !== undefined;
    // A configured probe starts failing, as a readiness probe starts "not ready".
    this.#probeReadiness = probeConfigured ? { isHealthy: false, detail: "local probe has not answered yet" } : undefined;
    const health = this.#health();
    metrics.healthy(health.isHealthy);
    logger.info({ vrid: config.vrid, interface: vrrpInterface.ifname, primaryAddress: vrrpInterface.primary, peers: config.peers, priority: config.priority, isHealthy: health.isHealthy }, "router starting");
    // Set before the awaits: a verdict arriving meanwhile goes through #applyHealth to the runtime, which starts with it.
    runtime.setHealthy(health.isHealthy);
    this.#runtime = runtime;
    try {
      await shared.prepare(vrrpInterface, logger);
      await runtime.start();
    } catch (error) {
      this.#runtime = undefined;
      metrics.remove();
      throw error;
    }
    this.#probe = startProbe(resolution.spec, logger, (isHealthy) => {
      this.#probeReadiness = { isHealthy, detail: isHealthy ? "local probe passes" : "local probe fails" };
      this.#applyHealth();
    });
    this.#publish();
  }

  async #stopRouter(): Promise<void> {
    this.#probe?.stop();
    this.#probe = undefined;
    await this.#runtime?.shutdown();
    this.#runtime = undefined;
    this.#metrics?.remove();
    this.#metrics = undefined;
  }

  #readPods(selector: LabelSelector): Readiness {
    const pods = this.context.podsOnNode();
    if (pods === undefined) return { isHealthy: false, detail: "nginx pods not listed yet" };
    return nodeReadiness(pods.filter((pod) => pod.metadata?.namespace === this.namespace && matchesSelector(selector, pod.metadata.labels ?? {})));
  }

  #selectPods(spec: HaVipSpec): void {
    const selector = spec.healthCheck?.nginxPodSelector;
    if (isSameConfig(selector, this.#podSelector)) return;
    this.#podSelector = selector;
    this.#podReadiness = selector === undefined ? undefined : this.#readPods(selector);
    this.#applyHealth();
  }

  #health(): Readiness {
    return combineHealth(this.#cordonReadiness, this.#podReadiness, this.#probeReadiness);
  }

  #applyHealth(): void {
    const runtime = this.#runtime;
    if (runtime === undefined) return;
    const health = this.#health();
    this.#metrics?.healthy(health.isHealthy);
    if (health.isHealthy !== runtime.snapshot().isHealthy) {
      this.context.logger.info({ isHealthy: health.isHealthy, detail: health.detail }, health.isHealthy ? "node healthy" : "node unhealthy");
      runtime.setHealthy(health.isHealthy);
    }
    this.#publish();
  }

  #publish(): void {
    const runtime = this.#runtime;
    const vrrpInterface = this.#vrrpInterface;
    if (runtime === undefined || vrrpInterface === undefined) return;
    const health = this.#health();
    this.#publisher.update(buildStatusEntry(runtime.snapshot(), { node: this.context.node, address: vrrpInterface.primary, healthDetail: health.detail, startedAt: this.context.startedAt }));
  }

  #onTransition(transition: Transition): void {
    this.#isSettled ||= transition.to !== "Initialize";
    this.#publish();
    if (this.#isStarting) {
      this.#isStarting = transition.to !== "Backup" && transition.to !== "Master";
      return;
    }
    const { isAdmitted, suppressedBefore } = this.#eventBudget.admit(Date.now());
    if (!isAdmitted) return;
    const heldBack = suppressedBefore === 0 ? "" : `; ${suppressedBefore} earlier transitions not recorded as Events (flapping: see the agent's log and metrics)`;
    const message = `${this.context.node}: ${stateNames[transition.from]} -> ${stateNames[transition.to]}: ${describeReason(transition.reason)} (priority ${transition.priority})${heldBack}`;
    this.#recordEvent(transition.to === "Fault" ? "Warning" : "Normal", eventReasons[transition.to], message);
  }

  #recordEvent(type: "Normal" | "Warning", reason: string, message: string): void {
    const uid = this.#object?.metadata?.uid;
    void this.context.api.recordEvent({ uid, node: this.context.node, type, reason, message }).then((outcome) => {
      if (!outcome.ok) this.#onChangeLogger.log("event", "warn", { error: outcome.detail }, "cannot record an Event");
    });
  }
}
