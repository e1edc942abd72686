// `ha-nginx agent --namespace NS --name HAVIP`: the agent as the controller's DaemonSet runs it. The resource comes
// from a watch, the health verdict from the node's nginx pods plus the local probe, and the node's status entry goes
// back with server-side apply. The API server is never on the router's path: every call runs beside the loop, and a
// failed call keeps the last known state and retries.

import { KubeConfig, Watch, CoreV1Api, CustomObjectsApi, type KubernetesObject, type V1Pod } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { Registry } from "prom-client";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION, type HaVipSpec, type LabelSelector } from "../../api/v1alpha1/index.js";
import type { RouterConfig } from "../../vrrp/config.js";
import { MonotonicClock } from "../adapters/clock.js";
import type { VipBackend } from "../adapters/vips.js";
import type { HealthMonitor } from "../health-monitor.js";
import { createRuntime, createSharedAdapters, isSameConfig, locate, startProbe, untilSignalled, type SharedAdapters, type Site } from "../host.js";
import { AgentHttpServer } from "../http-server.js";
import type { RouterMetrics } from "../metrics.js";
import { passwordLengthWarning, routerConfigFromSpec } from "../router-config.js";
import type { AgentRuntime, Transition } from "../runtime.js";
import { makeBoundedApiClient } from "../../k8s/bounded-client.js";
import { Reflector, listedObjects } from "../../k8s/reflector.js";
import { AgentApi } from "./client.js";
import { combineHealth, cordonReadiness, nodeReadiness, type Readiness } from "./readiness.js";
import { observedStatusEntry, resolveHaVip, type HaVipResolution } from "./resolve.js";
import { formatSelector } from "../../api/v1alpha1/selector.js";
import { buildStatusEntry, describeReason } from "./status-entry.js";
import { StatusPublisher } from "./status-publisher.js";

export interface KubernetesAgentOptions {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  /** The node's own address (the pod's status.hostIP): its interface is the default VRRP interface. */
  readonly nodeAddress: string | undefined;
  readonly httpPort: number;
  readonly httpAddresses: readonly string[];
  readonly logLevel: string;
  readonly vipBackend: VipBackend;
}

/** The final status write on SIGTERM is best effort: the pod's grace period belongs to the hand-over. */
const FINAL_WRITE_BOUND_MS = 1000;
const RETRY_MS = 5000;

const eventReasons = { Initialize: "Initializing", Backup: "BecameBackup", Master: "BecameMaster", Fault: "EnteredFault" } as const;
const stateNames = { Initialize: "INIT", Backup: "BACKUP", Master: "MASTER", Fault: "FAULT" } as const;

/** Logs a message only when it differs from the last one of its kind, so a resync does not repeat it. */
class OnceLogger {
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

class KubernetesAgent {
  readonly #logger: Logger;
  readonly #once: OnceLogger;
  readonly #api: AgentApi;
  readonly #watch: Watch;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #startedAt = new Date();
  readonly #havips: Reflector<KubernetesObject>;
  #pods: { readonly selector: string; readonly reflector: Reflector<V1Pod> } | undefined;
  #podReadiness: Readiness | undefined;
  #probeReadiness: Readiness | undefined;
  #cordonReadiness: Readiness | undefined;
  #probe: HealthMonitor | undefined;
  #runtime: AgentRuntime | undefined;
  #metrics: RouterMetrics | undefined;
  readonly #shared: SharedAdapters;
  #site: Site | undefined;
  #vrid: number | undefined;
  #password: { readonly ref: string; readonly value: string } | undefined;
  #publisher: StatusPublisher;
  #isReconciling = false;
  #isReconcileAgain = false;
  #retry: NodeJS.Timeout | undefined;
  #isStopping = false;
  /** Until the router first reaches BACKUP or MASTER it is starting (nginx not Ready yet is no news), and records no Event. */
  #isStarting = true;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: KubernetesAgentOptions,
  ) {
    this.#logger = pino({ level: options.logLevel, base: { node: options.node, havip: `${options.namespace}/${options.name}` } });
    this.#once = new OnceLogger(this.#logger);
    this.#shared = createSharedAdapters(options.vipBackend, options.node);
    this.#api = new AgentApi(kubeConfig, options.namespace, options.name, `ha-nginx-agent-${options.node}`);
    this.#watch = new Watch(kubeConfig);
    this.#core = makeBoundedApiClient(kubeConfig, CoreV1Api);
    this.#custom = makeBoundedApiClient(kubeConfig, CustomObjectsApi);
    const fieldSelector = `metadata.name=${options.name}`;
    this.#havips = new Reflector<KubernetesObject>(
      this.#watch,
      {
        what: `highavailabilityvip ${options.namespace}/${options.name}`,
        path: `/apis/${HAVIP_GROUP}/${HAVIP_VERSION}/namespaces/${options.namespace}/${HAVIP_PLURAL}`,
        query: { fieldSelector },
        list: async () =>
          listedObjects<KubernetesObject>(
            await this.#custom.listNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, namespace: options.namespace, plural: HAVIP_PLURAL, fieldSelector }),
          ),
        onChange: () => this.#reconcile(),
      },
      this.#logger,
    );
    this.#publisher = new StatusPublisher(new MonotonicClock(), (entry, signal) => this.#api.applyStatus(entry, signal), undefined, (detail, failures, retryIn) => {
      if (failures === 1 || failures % 10 === 0) this.#logger.warn({ error: detail, failures, retryInMs: retryIn }, "cannot write the status entry; retrying with backoff");
    });
  }

  get runtime(): AgentRuntime | undefined {
    return this.#runtime;
  }

  get metricsRegistry(): Registry {
    return this.#shared.metrics.registry;
  }

  /** The /state document: the same shape as the standalone agent's, with this resource's router once it runs. */
  state(): unknown {
    const havip = `${this.options.namespace}/${this.options.name}`;
    const runtime = this.#runtime;
    return {
      node: this.options.node,
      counters: Object.fromEntries(this.#shared.unclaimed),
      routers:
        runtime === undefined
          ? []
          : [
              {
                havip,
                vrid: this.#vrid,
                interface: this.#site?.ifname,
                health: this.#health(),
                cordonReadiness: this.#cordonReadiness,
                podReadiness: this.#podReadiness,
                probeReadiness: this.#probeReadiness,
                statusWriteFailures: this.#publisher.failures,
                ...runtime.snapshot(),
              },
            ],
      problems: runtime === undefined ? [{ havip, problem: "waiting for configuration" }] : [],
    };
  }

  start(): void {
    this.#logger.info("agent starting: watching its HighAvailabilityVIP");
    this.#havips.start();
  }

  async stop(): Promise<void> {
    this.#isStopping = true;
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    this.#havips.stop();
    this.#pods?.reflector.stop();
    this.#probe?.stop();
    const runtime = this.#runtime;
    if (runtime === undefined) return this.#publisher.stop();
    await runtime.shutdown();
    this.#publish();
    const bound = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), FINAL_WRITE_BOUND_MS).unref());
    const outcome = await Promise.race([this.#publisher.flush().then(() => "written" as const), bound]);
    if (outcome === "timeout") this.#logger.warn("final status entry not written within 1 s; the controller will mark this node");
    this.#publisher.stop();
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
        this.#logger.error({ error: error instanceof Error ? error.message : String(error) }, "configuration pass failed; retrying");
        this.#scheduleRetry();
      } finally {
        this.#isReconciling = false;
      }
    })();
  }

  async #reconcileOnce(): Promise<void> {
    const [object] = this.#havips.items;
    if (object === undefined) {
      const message = this.#runtime === undefined ? "waiting for the HighAvailabilityVIP to exist" : "the HighAvailabilityVIP is gone; keeping the running router until this pod is removed";
      this.#once.log("config", this.#runtime === undefined ? "info" : "warn", {}, message);
      return;
    }
    this.#publisher.observed(observedStatusEntry(object, this.options.node));
    const resolution = resolveHaVip(object);
    if (resolution.kind !== "ready") {
      const isRunning = this.#runtime !== undefined;
      const level = resolution.kind === "invalid" ? "error" : "info";
      const suffix = isRunning ? "; keeping the running configuration" : "";
      this.#once.log("config", level, { problem: resolution.message }, resolution.kind === "invalid" ? `the HighAvailabilityVIP is invalid${suffix}` : `not starting yet${suffix}`);
      return;
    }
    const password = await this.#passwordFor(resolution);
    if (password === "missing") return this.#scheduleRetry();
    const site = this.#site ?? (await this.#locate(resolution.spec));
    if (site === undefined) return this.#scheduleRetry();
    if (resolution.spec.interface !== undefined && resolution.spec.interface !== site.ifname) {
      this.#once.log("interface", "warn", { running: site.ifname, wanted: resolution.spec.interface }, "spec.interface changed; the agent keeps the running interface until it restarts");
    }
    const result = routerConfigFromSpec(resolution.spec, {
      node: this.options.node,
      primaryAddress: site.primary,
      ownAddresses: site.ownAddresses,
      vrid: resolution.vrid,
      publishedPeers: resolution.publishedPeers,
      password,
    });
    if (!result.ok) {
      this.#once.log("config", "error", { problems: result.problems }, "the configuration cannot run");
      return;
    }
    this.#once.clear("config");
    const cordon = cordonReadiness(resolution.cordonedNodes, this.options.node);
    if (cordon?.detail !== this.#cordonReadiness?.detail) {
      this.#cordonReadiness = cordon;
      this.#applyHealth();
    }
    this.#syncPodWatch(resolution.spec);
    if (this.#runtime === undefined) await this.#startRouter(resolution, site, result.config);
    else if (result.config.vrid !== this.#runtime.config.vrid) {
      // The socket hands datagrams to routers by VRID: another VRID is another virtual router.
      this.#logger.warn({ from: this.#runtime.config.vrid, to: result.config.vrid }, "VRID changed; restarting the router");
      await this.#stopRouter();
      await this.#startRouter(resolution, site, result.config);
    } else if (!isSameConfig(this.#runtime.config, result.config)) {
      this.#runtime.applyConfig(result.config);
      this.#logger.info({ priority: result.config.priority, peers: result.config.peers, interval: result.config.advertisementInterval, vrid: result.config.vrid }, "configuration applied");
      this.#publish();
    }
    this.#vrid = result.config.vrid;
  }

  async #passwordFor(resolution: Extract<HaVipResolution, { kind: "ready" }>): Promise<string | undefined | "missing"> {
    const ref = resolution.passwordRef;
    if (ref === undefined) return undefined;
    const key = `${ref.name}/${ref.key}`;
    if (this.#password?.ref === key) return this.#password.value;
    const read = await this.#api.readPassword(ref);
    if (!read.ok) {
      // The detail names the Secret and the HTTP status, never the value.
      this.#once.log("password", "error", { error: read.detail }, "cannot read the VRRPv2 password from spec.authentication.passwordSecretRef; retrying");
      return "missing";
    }
    this.#once.clear("password");
    const warning = passwordLengthWarning(read.value);
    if (warning !== undefined && this.#once.log("password-length", "warn", { secret: ref.name, key: ref.key }, warning)) {
      this.#recordEvent("Warning", "PasswordTruncated", `${this.options.node}: ${warning} (Secret ${ref.name}, key ${ref.key}); shorten it to 8 bytes`);
    }
    this.#password = { ref: key, value: read.value };
    return read.value;
  }

  async #locate(spec: HaVipSpec): Promise<Site | undefined> {
    try {
      this.#site = await locate(spec, this.options.nodeAddress);
      return this.#site;
    } catch (error) {
      this.#once.log("site", "error", { error: error instanceof Error ? error.message : String(error) }, "cannot find the VRRP interface; retrying");
      return undefined;
    }
  }

  async #startRouter(resolution: Extract<HaVipResolution, { kind: "ready" }>, site: Site, config: RouterConfig): Promise<void> {
    const metrics = this.#shared.metrics.router(`${this.options.namespace}/${this.options.name}`, config.vrid);
    this.#metrics = metrics;
    const runtime = createRuntime(this.#shared, site, config, this.#logger, metrics, resolution.spec.transport.mode === "Multicast");
    runtime.onTransition((transition) => this.#onTransition(transition));
    const probeConfigured = resolution.spec.healthCheck?.probe !== undefined;
    // A configured probe starts failing, as a readiness probe starts "not ready".
    this.#probeReadiness = probeConfigured ? { isHealthy: false, detail: "local probe has not answered yet" } : undefined;
    const health = this.#health();
    metrics.healthy(health.isHealthy);
    this.#logger.info({ vrid: config.vrid, interface: site.ifname, primaryAddress: site.primary, peers: config.peers, priority: config.priority, isHealthy: health.isHealthy }, "router starting");
    // Set before the awaits: a verdict arriving meanwhile goes through #applyHealth to the runtime, which starts with it.
    runtime.setHealthy(health.isHealthy);
    this.#runtime = runtime;
    try {
      await this.#shared.prepare(site, this.#logger);
      await runtime.start();
    } catch (error) {
      this.#runtime = undefined;
      metrics.remove();
      throw error;
    }
    this.#probe = startProbe(resolution.spec, this.#logger, (isHealthy) => {
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

  #syncPodWatch(spec: HaVipSpec): void {
    const selector: LabelSelector | undefined = spec.healthCheck?.nginxPodSelector;
    const text = selector === undefined ? undefined : formatSelector(selector);
    if (this.#pods?.selector === text) return;
    this.#pods?.reflector.stop();
    this.#pods = undefined;
    if (text === undefined) {
      this.#podReadiness = undefined;
      this.#applyHealth();
      return;
    }
    const { namespace, node } = this.options;
    const fieldSelector = `spec.nodeName=${node}`;
    this.#podReadiness = { isHealthy: false, detail: "nginx pods not listed yet" };
    const reflector = new Reflector<V1Pod>(
      this.#watch,
      {
        what: `nginx pods (${text}) on ${node}`,
        path: `/api/v1/namespaces/${namespace}/pods`,
        query: { labelSelector: text, fieldSelector },
        list: async () => listedObjects<V1Pod>(await this.#core.listNamespacedPod({ namespace, labelSelector: text, fieldSelector })),
        onChange: () => {
          this.#podReadiness = nodeReadiness(reflector.items);
          this.#applyHealth();
        },
      },
      this.#logger,
    );
    this.#pods = { selector: text, reflector };
    reflector.start();
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
      this.#logger.info({ isHealthy: health.isHealthy, detail: health.detail }, health.isHealthy ? "node healthy" : "node unhealthy");
      runtime.setHealthy(health.isHealthy);
    }
    this.#publish();
  }

  #publish(): void {
    const runtime = this.#runtime;
    const site = this.#site;
    if (runtime === undefined || site === undefined) return;
    const health = this.#health();
    this.#publisher.update(buildStatusEntry(runtime.snapshot(), { node: this.options.node, address: site.primary, healthDetail: health.detail, startedAt: this.#startedAt }));
  }

  #onTransition(transition: Transition): void {
    this.#publish();
    if (this.#isStarting) {
      this.#isStarting = transition.to !== "Backup" && transition.to !== "Master";
      return;
    }
    const message = `${this.options.node}: ${stateNames[transition.from]} -> ${stateNames[transition.to]}: ${describeReason(transition.reason)} (priority ${transition.priority})`;
    this.#recordEvent(transition.to === "Fault" ? "Warning" : "Normal", eventReasons[transition.to], message);
  }

  #recordEvent(type: "Normal" | "Warning", reason: string, message: string): void {
    const uid = this.#havips.items[0]?.metadata?.uid;
    void this.#api.recordEvent({ uid, node: this.options.node, type, reason, message }).then((outcome) => {
      if (!outcome.ok) this.#once.log("event", "warn", { error: outcome.detail }, "cannot record an Event");
    });
  }
}

export async function runKubernetesAgent(options: KubernetesAgentOptions): Promise<void> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  const agent = new KubernetesAgent(kubeConfig, options);
  const http = new AgentHttpServer(
    {
      registry: agent.metricsRegistry,
      state: () => agent.state(),
      isAlive: () => true,
    },
    options.httpPort,
    options.httpAddresses,
  );
  const logger = pino({ level: options.logLevel, base: { node: options.node } });
  const port = await http.start();
  logger.info({ httpPort: port, httpAddresses: http.addressesServed }, "serving /metrics, /healthz and /state");
  agent.start();
  await untilSignalled(logger, async () => {
    await agent.stop();
    await http.stop();
  });
  // The API client's keep-alive sockets would hold the process open; nothing is left to do once the VIP is handed over.
  setTimeout(() => process.exit(0), 500).unref();
}
