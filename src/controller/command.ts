import { Command, InvalidArgumentError, Option } from "commander";
// The base class, not ControllerStartupError: importing ./startup.js here would load the Kubernetes client into every
// command, the agent's restart after a crash included.
import { StartupError } from "../startup-error.js";
import { parseIpAddressList } from "../api/v1alpha1/ip.js";
import type { AgentResources } from "./agent-objects.js";

// The chart's agent.resources defaults, for a controller started without the chart; see its values.yaml.
export const DEFAULT_AGENT_RESOURCES = JSON.stringify({ requests: { cpu: "20m", memory: "128Mi" }, limits: { cpu: "500m", memory: "256Mi" } });

/** The agents' HTTP port on the host network, the chart's agent.httpPort default. */
export const DEFAULT_AGENT_HTTP_PORT = 9750;

const quantity = /^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|k|M|G)?$/;

/** Checked here: a bad address would reach the agent DaemonSet and crash-loop every agent instead of this one pod. */
function parseAgentHttpAddress(text: string): string {
  const parsed = parseIpAddressList(text);
  if ("invalid" in parsed) throw new InvalidArgumentError(`'${parsed.invalid}' is not an IP address; set the chart's agent.httpAddress to comma-separated addresses, e.g. 10.0.0.5,fd00::5, or 0.0.0.0 for every IPv4 address`);
  return parsed.addresses.join(",");
}

function parseAgentResources(text: string): AgentResources {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('expected JSON such as {"requests":{"cpu":"20m","memory":"128Mi"},"limits":{"cpu":"500m","memory":"256Mi"}}');
  }
  const fields = ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"] as const;
  for (const field of fields) {
    const [group = "", name = ""] = field.split(".");
    const value = (parsed as Record<string, Record<string, unknown> | undefined> | null)?.[group]?.[name];
    if (typeof value !== "string" || !quantity.test(value)) {
      throw new InvalidArgumentError(`${field} must be a Kubernetes quantity such as "128Mi" or "500m", got ${JSON.stringify(value)}`);
    }
  }
  return parsed as AgentResources;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError("expected a port number 0..65535");
  return port;
}

export function controllerCommand(): Command {
  return new Command("controller")
    .description("Reconcile HighAvailabilityVIP resources into one agent DaemonSet and keep their status true")
    .option("--namespace <ns>", "the controller's own namespace (its leader Lease lives here)", process.env.POD_NAMESPACE ?? "default")
    .option("--metrics-port <port>", "port for /metrics, /healthz and /readyz", parsePort, 9751)
    .option("--leader-elect", "elect one active replica through a Lease", false)
    .option("--agent-image <image>", "image of the agent DaemonSet", "ghcr.io/ha-nginx/ha-nginx:0.1.0")
    .option("--agent-http-port <port>", "where agents serve /metrics, /healthz and /state on each node's host network", parsePort, DEFAULT_AGENT_HTTP_PORT)
    .option("--agent-service-account <name>", "the agents' ServiceAccount in --namespace, bound to the ha-nginx-agent ClusterRole", "ha-nginx-agent")
    .option("--agent-http-address <addresses>", "where agents serve /metrics, /healthz and /state (their --http-address); default: each node's own addresses", parseAgentHttpAddress)
    .option("--agent-scrape-annotations", "annotate agent pods prometheus.io/scrape, /port and /path, for a Prometheus without the Operator", false)
    .option("--agent-resources <json>", "the agent containers' requests and limits, as JSON", parseAgentResources, parseAgentResources(DEFAULT_AGENT_RESOURCES))
    .addOption(new Option("--log-level <level>", "pino log level").choices(["debug", "info", "warn", "error"]).default("info"))
    .action(async (options: { namespace: string; metricsPort: number; leaderElect: boolean; agentImage: string; agentHttpPort: number; agentServiceAccount: string; agentHttpAddress?: string; agentScrapeAnnotations: boolean; agentResources: AgentResources; logLevel: string }) => {
      try {
        const { runController } = await import("./main.js");
        const controller = await runController({
          namespace: options.namespace,
          metricsPort: options.metricsPort,
          isLeaderElect: options.leaderElect,
          agentImage: options.agentImage,
          agentResources: options.agentResources,
          agentHttpPort: options.agentHttpPort,
          agentServiceAccount: options.agentServiceAccount,
          agentHttpAddress: options.agentHttpAddress,
          agentScrapeAnnotations: options.agentScrapeAnnotations,
          logLevel: options.logLevel,
        });
        const shutdown = (): void => {
          void controller.stop().then(() => process.exit(0));
        };
        process.once("SIGTERM", shutdown);
        process.once("SIGINT", shutdown);
      } catch (error) {
        if (!(error instanceof StartupError)) throw error;
        console.error(`ha-nginx controller: ${error.message}`);
        process.exitCode = 2;
      }
    });
}
