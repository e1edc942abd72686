// `ha-nginx agent --standalone`: the data plane with no Kubernetes. It reads the HighAvailabilityVIP manifest from a
// file, runs in the current network namespace, probes nginx locally, and serves /metrics, /healthz and /state.

import { readFile, watch } from "node:fs/promises";
import { pino, type Logger } from "pino";
import { formatIssues, loadHaVipManifest } from "../api/v1alpha1/validate.js";
import { addressFamilyOf, type HaVipSpec } from "../api/v1alpha1/schema.js";
import { parseDuration } from "../api/v1alpha1/duration.js";
import type { RouterConfig } from "../vrrp/config.js";
import { milliseconds } from "../vrrp/units.js";
import { MonotonicClock } from "./adapters/clock.js";
import { NodeHttpProbe } from "./adapters/http-probe.js";
import { allAddresses, primaryAddress, withRtNetlink } from "./adapters/interfaces.js";
import { NetlinkLinkMonitor } from "./adapters/link-monitor.js";
import { SystemNeighborAnnouncer } from "./adapters/neighbor-announcer.js";
import { RawAdvertTransport } from "./adapters/raw-transport.js";
import { createVipManager, type VipBackend } from "./adapters/vips.js";
import { HealthMonitor } from "./health-monitor.js";
import { AgentHttpServer } from "./http-server.js";
import { createAgentMetrics } from "./metrics.js";
import type { IpFamily } from "./ports.js";
import { routerConfigFromSpec } from "./router-config.js";
import { AgentRuntime } from "./runtime.js";

export interface StandaloneOptions {
  readonly config: string;
  readonly node: string;
  readonly httpPort: number;
  readonly passwordFile: string | undefined;
  readonly logLevel: string;
  readonly vipBackend: VipBackend;
}

/** A startup problem the operator must fix; printed without a stack trace. */
export class StartupError extends Error {}

async function loadSpec(path: string): Promise<HaVipSpec> {
  const text = await readFile(path, "utf8").catch((error: unknown) => {
    throw new StartupError(`--config ${path}: cannot read it (${error instanceof Error ? error.message : String(error)})`);
  });
  const loaded = loadHaVipManifest(text);
  if (!loaded.ok) throw new StartupError(`--config ${path} is not a valid HighAvailabilityVIP:\n${formatIssues(loaded.issues)}`);
  return loaded.value.spec;
}

async function defaultInterface(family: IpFamily): Promise<string> {
  const ifname = await withRtNetlink(async (rt) => {
    const candidate = (await allAddresses(rt)).find((address) => address.family === family && !address.isLinkLocal && address.address !== "127.0.0.1" && address.address !== "::1");
    if (candidate === undefined) return undefined;
    const [link] = await rt.getLink({ index: candidate.index });
    return link?.attrs.ifname;
  });
  if (ifname === undefined) throw new StartupError(`no interface holds a global ${family} address; set spec.interface`);
  return ifname;
}

interface Site {
  readonly ifname: string;
  readonly family: IpFamily;
  readonly primary: string;
  readonly ownAddresses: readonly string[];
}

async function locate(spec: HaVipSpec): Promise<Site> {
  const family: IpFamily = addressFamilyOf(spec) === 4 ? "ipv4" : "ipv6";
  const ifname = spec.interface ?? (await defaultInterface(family));
  // RFC 5798 §5.1.2.1: IPv6 adverts come from the link-local address.
  const primary = await primaryAddress(ifname, family, family === "ipv6" ? "link" : "global");
  if (!primary.ok) throw new StartupError(`interface ${ifname}: ${primary.code}: ${primary.detail}; set spec.interface to the node's VRRP interface`);
  const ownAddresses = await withRtNetlink(async (rt) => (await allAddresses(rt)).map((address) => address.address));
  return { ifname, family, primary: primary.value, ownAddresses };
}

async function buildConfig(spec: HaVipSpec, options: StandaloneOptions, site: Site, password: string | undefined): Promise<RouterConfig> {
  if (spec.virtualRouterID === undefined) {
    throw new StartupError("spec.virtualRouterID is required in standalone mode (no controller allocates one); set 1..255");
  }
  if (spec.authentication !== undefined && password === undefined) {
    throw new StartupError("spec.authentication is set: pass the VRRP password with --password-file FILE (there is no Secret to read)");
  }
  const result = routerConfigFromSpec(spec, {
    node: options.node,
    primaryAddress: site.primary,
    ownAddresses: site.ownAddresses,
    vrid: spec.virtualRouterID,
    publishedPeers: [],
    password,
  });
  if (!result.ok) throw new StartupError(`the configuration cannot run: ${result.problems.join(", ")}`);
  return result.config;
}

function startHealth(spec: HaVipSpec, runtime: AgentRuntime, logger: Logger, setGauge: (isHealthy: boolean) => void): HealthMonitor | undefined {
  const probe = spec.healthCheck?.probe;
  if (probe === undefined) return undefined;
  const monitor = new HealthMonitor(
    new NodeHttpProbe({ host: probe.httpGet.host, port: probe.httpGet.port, path: probe.httpGet.path, timeout: milliseconds(parseDuration(probe.timeout)) }),
    {
      period: milliseconds(parseDuration(probe.period)),
      failureThreshold: probe.failureThreshold,
      successThreshold: probe.successThreshold,
    },
    (isHealthy, detail) => {
      logger.info({ isHealthy, detail }, isHealthy ? "nginx probe passes" : "nginx probe fails");
      setGauge(isHealthy);
      runtime.setHealthy(isHealthy);
    },
  );
  monitor.start();
  return monitor;
}

export async function runStandalone(options: StandaloneOptions): Promise<void> {
  const logger = pino({ level: options.logLevel, base: { node: options.node } });
  const spec = await loadSpec(options.config);
  const password = options.passwordFile === undefined ? undefined : (await readFile(options.passwordFile, "utf8")).trim();
  const site = await locate(spec);
  const config = await buildConfig(spec, options, site, password);
  const metrics = createAgentMetrics({ vrid: config.vrid, node: options.node });
  const runtime = new AgentRuntime(
    {
      transport: new RawAdvertTransport({ family: site.family, ifname: site.ifname, isMulticast: config.peers.length === 0 }),
      vips: createVipManager(options.vipBackend),
      announcer: new SystemNeighborAnnouncer(),
      link: new NetlinkLinkMonitor(site.ifname),
      clock: new MonotonicClock(),
    },
    { config, ifname: site.ifname, logger, metrics },
  );
  const http = new AgentHttpServer(
    { registry: metrics.registry, state: () => ({ node: options.node, vrid: config.vrid, interface: site.ifname, ...runtime.snapshot() }), isAlive: () => true },
    options.httpPort,
  );
  const port = await http.start();
  logger.info({ vrid: config.vrid, interface: site.ifname, primaryAddress: site.primary, peers: config.peers, httpPort: port }, "agent starting");
  // A probe configured means "unhealthy until proven healthy": never take the VIP before nginx has answered.
  const hasProbe = spec.healthCheck?.probe !== undefined;
  metrics.healthy.set(hasProbe ? 0 : 1);
  await runtime.start({ isHealthy: !hasProbe });
  const health = startHealth(spec, runtime, logger, (isHealthy) => metrics.healthy.set(isHealthy ? 1 : 0));

  const reloads = new AbortController();
  const reload = async (): Promise<void> => {
    try {
      const next = await buildConfig(await loadSpec(options.config), options, await locate(spec), password);
      runtime.applyConfig(next);
      logger.info({ priority: next.priority, peers: next.peers, interval: next.advertisementInterval }, "configuration reloaded");
    } catch (error) {
      logger.error({ error: error instanceof Error ? error.message : String(error) }, "configuration not reloaded; keeping the running one");
    }
  };
  process.on("SIGHUP", () => void reload());
  void (async () => {
    try {
      for await (const _change of watch(options.config, { signal: reloads.signal })) await reload();
    } catch (error) {
      if (!reloads.signal.aborted) logger.warn({ error: String(error) }, "stopped watching the configuration file; SIGHUP still reloads");
    }
  })();

  await new Promise<void>((resolve) => {
    let isStopping = false;
    const stop = (signal: string): void => {
      if (isStopping) {
        logger.warn({ signal }, "second signal: leaving now");
        process.exit(1);
      }
      isStopping = true;
      logger.info({ signal }, "handing over before exit");
      reloads.abort();
      health?.stop();
      void runtime.shutdown().then(async () => {
        await http.stop();
        logger.info("stopped");
        resolve();
      });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}
