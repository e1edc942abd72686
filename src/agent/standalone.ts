// `ha-nginx agent --standalone`: the data plane with no Kubernetes. It reads the HighAvailabilityVIP manifest from a
// file, runs in the current network namespace, probes nginx locally, and serves /metrics, /healthz and /state.

import { readFile, watch } from "node:fs/promises";
import { pino } from "pino";
import { formatIssues, loadHaVipManifest } from "../api/v1alpha1/validate.js";
import type { HaVipSpec } from "../api/v1alpha1/schema.js";
import type { RouterConfig } from "../vrrp/config.js";
import type { VipBackend } from "./adapters/vips.js";
import { StartupError } from "../startup-error.js";
import { createRuntime, locate, startProbe, untilSignalled, type Site } from "./host.js";
import { AgentHttpServer } from "./http-server.js";
import { createAgentMetrics } from "./metrics.js";
import { routerConfigFromSpec } from "./router-config.js";

const CONFIG_SETTLE_MS = 100;


export interface StandaloneOptions {
  readonly config: string;
  readonly node: string;
  readonly httpPort: number;
  readonly passwordFile: string | undefined;
  readonly logLevel: string;
  readonly vipBackend: VipBackend;
}

async function loadSpec(path: string): Promise<HaVipSpec> {
  const text = await readFile(path, "utf8").catch((error: unknown) => {
    throw new StartupError(`--config ${path}: cannot read it (${error instanceof Error ? error.message : String(error)})`);
  });
  const loaded = loadHaVipManifest(text);
  if (!loaded.ok) throw new StartupError(`--config ${path} is not a valid HighAvailabilityVIP:\n${formatIssues(loaded.issues)}`);
  return loaded.value.spec;
}

function buildConfig(spec: HaVipSpec, options: StandaloneOptions, site: Site, password: string | undefined): RouterConfig {
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

export async function runStandalone(options: StandaloneOptions): Promise<void> {
  const logger = pino({ level: options.logLevel, base: { node: options.node } });
  const spec = await loadSpec(options.config);
  const password = options.passwordFile === undefined ? undefined : (await readFile(options.passwordFile, "utf8")).trim();
  const site = await locate(spec);
  const config = buildConfig(spec, options, site, password);
  const metrics = createAgentMetrics({ vrid: config.vrid, node: options.node });
  const runtime = createRuntime(site, config, options.vipBackend, logger, metrics);
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
  const health = startProbe(spec, logger, (isHealthy) => {
    metrics.healthy.set(isHealthy ? 1 : 0);
    runtime.setHealthy(isHealthy);
  });

  const reloads = new AbortController();
  const reload = async (): Promise<void> => {
    try {
      const next = buildConfig(await loadSpec(options.config), options, await locate(spec), password);
      runtime.applyConfig(next);
      logger.info({ priority: next.priority, peers: next.peers, interval: next.advertisementInterval }, "configuration reloaded");
    } catch (error) {
      logger.error({ error: error instanceof Error ? error.message : String(error) }, "configuration not reloaded; keeping the running one");
    }
  };
  process.on("SIGHUP", () => void reload());
  let settle: NodeJS.Timeout | undefined;
  void (async () => {
    try {
      for await (const _change of watch(options.config, { signal: reloads.signal })) {
        // A writer truncates, then writes (writeFile, most editors): a read at the first event can find the file
        // empty, and inotify may fold the write's event into that one, so no second event comes. Reading once the
        // file has been quiet for a moment gets what was written.
        clearTimeout(settle);
        settle = setTimeout(() => void reload(), CONFIG_SETTLE_MS);
      }
    } catch (error) {
      if (!reloads.signal.aborted) logger.warn({ error: String(error) }, "stopped watching the configuration file; SIGHUP still reloads");
    }
  })();

  await untilSignalled(logger, async () => {
    reloads.abort();
    clearTimeout(settle);
    health?.stop();
    await runtime.shutdown();
    await http.stop();
  });
}
