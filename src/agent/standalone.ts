// `ha-nginx agent --standalone`: the data plane with no Kubernetes. It reads HighAvailabilityVIP documents from a file
// (one virtual router each, like the `vrrp_instance` blocks of a keepalived.conf), runs in the current network
// namespace, probes nginx locally, and serves /metrics, /healthz and /state for all of them from one process.

import { readFile, watch } from "node:fs/promises";
import { pino, type Logger } from "pino";
import { formatIssues, loadHaVipManifests } from "../api/v1alpha1/validate.js";
import { addressFamilyOf, type HaVipSpec } from "../api/v1alpha1/schema.js";
import type { RouterConfig } from "../vrrp/config.js";
import type { VipBackend } from "./adapters/vips.js";
import { StartupError } from "../startup-error.js";
import type { HealthMonitor } from "./health-monitor.js";
import { createRuntime, createSharedAdapters, isSameConfig, findVrrpInterface, startProbe, untilSignalled, type SharedAdapters, type VrrpInterface } from "./wiring.js";
import { AgentHttpServer } from "./http-server.js";
import type { RouterMetrics } from "./metrics.js";
import { passwordLengthWarning, routerConfigFromSpec } from "./router-config.js";
import type { AgentRuntime } from "./runtime.js";

const CONFIG_SETTLE_MS = 100;

export interface StandaloneOptions {
  readonly config: string;
  readonly node: string;
  readonly httpPort: number;
  readonly httpAddresses: readonly string[];
  readonly passwordFile: string | undefined;
  readonly logLevel: string;
  readonly vipBackend: VipBackend;
}

/** A document of the file, by the resource it names; `spec` is absent when the document cannot run. */
type Wanted = { readonly name: string; readonly spec: HaVipSpec } | Refused;
type Refused = { readonly name: string; readonly problem: string };
/** A runnable document, with the interface it runs on. */
type WithInterface = { readonly name: string; readonly spec: HaVipSpec; readonly vrrpInterface: VrrpInterface } | Refused;

interface Router {
  readonly name: string;
  readonly spec: HaVipSpec;
  readonly vrrpInterface: VrrpInterface;
  readonly runtime: AgentRuntime;
  readonly metrics: RouterMetrics;
  readonly probe: HealthMonitor | undefined;
}

async function readDocuments(path: string): Promise<Wanted[]> {
  const text = await readFile(path, "utf8").catch((error: unknown) => {
    throw new StartupError(`--config ${path}: cannot read it (${errorText(error)})`);
  });
  const names = new Set<string>();
  return loadHaVipManifests(text).map(({ position, name, result }): Wanted => {
    const label = name ?? `document ${position}`;
    if (!result.ok) return { name: label, problem: `document ${position} of ${path} is not a valid HighAvailabilityVIP:\n${formatIssues(result.issues)}` };
    if (names.has(label)) return { name: `document ${position}`, problem: `document ${position} of ${path}: metadata.name ${label} is used by an earlier document; give each document its own name` };
    names.add(label);
    if (result.value.spec.virtualRouterID === undefined) {
      return { name: label, problem: `${label}: spec.virtualRouterID is required in standalone mode (no controller allocates one); set 1..255` };
    }
    return { name: label, spec: result.value.spec };
  });
}

function buildConfig(name: string, spec: HaVipSpec, options: StandaloneOptions, vrrpInterface: VrrpInterface, password: string | undefined): RouterConfig {
  if (spec.authentication !== undefined && password === undefined) {
    throw new StartupError(`${name}: spec.authentication is set: pass the VRRP password with --password-file FILE (there is no Secret to read)`);
  }
  const result = routerConfigFromSpec(spec, {
    node: options.node,
    primaryAddress: vrrpInterface.primary,
    ownAddresses: vrrpInterface.ownAddresses,
    vrid: spec.virtualRouterID ?? 0,
    publishedPeers: [],
    password,
  });
  if (!result.ok) throw new StartupError(`${name}: the configuration cannot run: ${result.problems.join(", ")}`);
  return result.config;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The routers of one file. A reload touches only the documents that changed; a broken one keeps its running router. */
class StandaloneAgent {
  readonly #routers = new Map<string, Router>();
  readonly #problems = new Map<string, string>();
  readonly #shared: SharedAdapters;
  #work: Promise<void> = Promise.resolve();

  constructor(
    private readonly options: StandaloneOptions,
    private readonly logger: Logger,
    private readonly password: string | undefined,
  ) {
    this.#shared = createSharedAdapters(options.vipBackend, options.node);
  }

  get shared(): SharedAdapters {
    return this.#shared;
  }

  get routerCount(): number {
    return this.#routers.size;
  }

  state(): unknown {
    return {
      node: this.options.node,
      counters: Object.fromEntries(this.#shared.unclaimed),
      routers: [...this.#routers.values()].map((router) => ({
        havip: router.name,
        vrid: router.runtime.config.vrid,
        interface: router.vrrpInterface.ifname,
        ...router.runtime.snapshot(),
      })),
      problems: [...this.#problems].map(([havip, problem]) => ({ havip, problem })),
    };
  }

  /** The first read: an unreadable file, or one with nothing to serve, stops the agent from starting. */
  async start(): Promise<void> {
    this.#work = this.#loadOnce();
    await this.#work;
    if (this.#routers.size === 0) {
      throw new StartupError(`--config ${this.options.config}: no document can run:\n${[...this.#problems.values()].join("\n")}`);
    }
  }

  /** Reads the file again and brings the routers to it; passes run one at a time. */
  reload(): Promise<void> {
    this.#work = this.#work.then(() => this.#loadOnce()).catch((error: unknown) => {
      this.logger.error({ error: errorText(error) }, "configuration not reloaded; keeping the running routers");
    });
    return this.#work;
  }

  async stop(): Promise<void> {
    await this.#work.catch(() => undefined);
    await Promise.all([...this.#routers.values()].map((router) => this.#stopRouter(router)));
  }

  async #loadOnce(): Promise<void> {
    const wanted = await readDocuments(this.options.config);
    // An emptied or unparseable file names no resource: read as "stop everything", one bad save would drop every VIP.
    if (this.#routers.size > 0 && !wanted.some((document) => "spec" in document)) {
      throw new Error(`--config ${this.options.config} holds no document that can run; stop the agent to stop serving`);
    }
    const named = new Set(wanted.map((document) => document.name));
    const vrrpInterfaces = new Map<string, Promise<VrrpInterface>>();
    const vrrpInterfaceFor = (spec: HaVipSpec): Promise<VrrpInterface> => {
      const key = `${spec.interface ?? ""}/${addressFamilyOf(spec)}`;
      const found = vrrpInterfaces.get(key) ?? findVrrpInterface(spec);
      vrrpInterfaces.set(key, found);
      return found;
    };
    const withInterfaces = await Promise.all(
      wanted.map(async (document): Promise<WithInterface> => {
        if (!("spec" in document)) return document;
        try {
          return { ...document, vrrpInterface: await vrrpInterfaceFor(document.spec) };
        } catch (error) {
          return { name: document.name, problem: errorText(error) };
        }
      }),
    );
    // Like keepalived, the first document with a VRID on an interface keeps it; file order makes the choice stable.
    const vridOwners = new Map<string, string>();
    const runnable = withInterfaces.map((document): WithInterface => {
      if (!("spec" in document)) return document;
      const key = `${document.vrrpInterface.ifname}/${document.vrrpInterface.family}/${document.spec.virtualRouterID ?? 0}`;
      const owner = vridOwners.get(key);
      if (owner !== undefined) {
        return { name: document.name, problem: `${document.name}: spec.virtualRouterID ${document.spec.virtualRouterID ?? 0} is already used by ${owner} on ${document.vrrpInterface.ifname}; give each document on one interface its own VRID` };
      }
      vridOwners.set(key, document.name);
      return document;
    });
    this.#problems.clear();
    const removed = [...this.#routers.values()].filter((router) => !named.has(router.name));
    await Promise.all(removed.map((router) => this.#stopRouter(router)));
    await Promise.all(
      runnable.map(async (document) => {
        if (!("spec" in document)) return this.#refuse(document.name, document.problem);
        try {
          await this.#apply(document.name, document.spec, document.vrrpInterface);
        } catch (error) {
          this.#refuse(document.name, errorText(error));
        }
      }),
    );
  }

  #refuse(name: string, problem: string): void {
    this.#problems.set(name, problem);
    const isRunning = this.#routers.has(name);
    this.logger.error({ havip: name, problem }, isRunning ? "document not applied; keeping its running router" : "document not served");
  }

  async #apply(name: string, spec: HaVipSpec, vrrpInterface: VrrpInterface): Promise<void> {
    const config = buildConfig(name, spec, this.options, vrrpInterface, this.password);
    const running = this.#routers.get(name);
    if (running === undefined) return this.#startRouter(name, spec, vrrpInterface, config);
    // The socket demultiplexes by VRID on one interface: another VRID or interface is another virtual router.
    if (running.vrrpInterface.ifname !== vrrpInterface.ifname || running.vrrpInterface.family !== vrrpInterface.family || running.runtime.config.vrid !== config.vrid) {
      await this.#stopRouter(running);
      return this.#startRouter(name, spec, vrrpInterface, config);
    }
    let probe = running.probe;
    if (!isSameConfig(running.spec.healthCheck?.probe, spec.healthCheck?.probe)) {
      probe?.stop();
      probe = this.#startProbe(spec, running.runtime, running.metrics, running.name);
      if (probe === undefined) running.runtime.setHealthy(true);
    }
    this.#routers.set(name, { ...running, spec, probe });
    if (isSameConfig(running.runtime.config, config)) return;
    running.runtime.applyConfig(config);
    this.logger.info({ havip: name, priority: config.priority, peers: config.peers, interval: config.advertisementInterval }, "configuration reloaded");
  }

  #startProbe(spec: HaVipSpec, runtime: AgentRuntime, metrics: RouterMetrics, name: string): HealthMonitor | undefined {
    return startProbe(spec, this.logger.child({ havip: name }), (isHealthy) => {
      metrics.healthy(isHealthy);
      runtime.setHealthy(isHealthy);
    });
  }

  async #startRouter(name: string, spec: HaVipSpec, vrrpInterface: VrrpInterface, config: RouterConfig): Promise<void> {
    const logger = this.logger.child({ havip: name });
    const metrics = this.#shared.metrics.router(name, config.vrid);
    const runtime = createRuntime(this.#shared, vrrpInterface, config, logger, metrics);
    // A probe configured means "unhealthy until proven healthy": never take the VIP before nginx has answered.
    const hasProbe = spec.healthCheck?.probe !== undefined;
    metrics.healthy(!hasProbe);
    logger.info({ vrid: config.vrid, interface: vrrpInterface.ifname, primaryAddress: vrrpInterface.primary, peers: config.peers }, "router starting");
    try {
      await this.#shared.prepare(vrrpInterface, logger);
      runtime.setHealthy(!hasProbe);
      await runtime.start();
    } catch (error) {
      metrics.remove();
      throw error;
    }
    this.#routers.set(name, { name, spec, vrrpInterface, runtime, metrics, probe: this.#startProbe(spec, runtime, metrics, name) });
  }

  async #stopRouter(router: Router): Promise<void> {
    this.#routers.delete(router.name);
    router.probe?.stop();
    await router.runtime.shutdown();
    router.metrics.remove();
    this.logger.info({ havip: router.name }, "router stopped");
  }
}

export async function runStandalone(options: StandaloneOptions): Promise<void> {
  const logger = pino({ level: options.logLevel, base: { node: options.node } });
  const password = options.passwordFile === undefined ? undefined : await readPassword(options.passwordFile);
  const warning = password === undefined ? undefined : passwordLengthWarning(password);
  if (warning !== undefined) logger.warn({ passwordFile: options.passwordFile }, warning);
  const agent = new StandaloneAgent(options, logger, password);
  try {
    await agent.start();
  } catch (error) {
    await agent.stop();
    throw error;
  }
  const http = new AgentHttpServer({ registry: agent.shared.metrics.registry, state: () => agent.state(), isAlive: () => true }, options.httpPort, options.httpAddresses);
  const port = await http.start();
  logger.info({ routers: agent.routerCount, httpPort: port, httpAddresses: http.addressesServed }, "agent started");

  const reloads = new AbortController();
  process.on("SIGHUP", () => void agent.reload());
  let settle: NodeJS.Timeout | undefined;
  void (async () => {
    try {
      for await (const _change of watch(options.config, { signal: reloads.signal })) {
        // A writer truncates, then writes (writeFile, most editors): a read at the first event can find the file
        // empty, and inotify may fold the write's event into that one, so no second event comes. Reading once the
        // file has been quiet for a moment gets what was written.
        clearTimeout(settle);
        settle = setTimeout(() => void agent.reload(), CONFIG_SETTLE_MS);
      }
    } catch (error) {
      if (!reloads.signal.aborted) logger.warn({ error: String(error) }, "stopped watching the configuration file; SIGHUP still reloads");
    }
  })();

  await untilSignalled(logger, async () => {
    reloads.abort();
    clearTimeout(settle);
    await agent.stop();
    await http.stop();
  });
}

async function readPassword(path: string): Promise<string> {
  const text = await readFile(path, "utf8").catch((error: unknown) => {
    throw new StartupError(`--password-file ${path}: cannot read it (${errorText(error)})`);
  });
  return text.trim();
}
