import { Command, InvalidArgumentError, Option } from "commander";
import { parseIpAddressList } from "../api/v1alpha1/ip.js";
import { StartupError } from "../startup-error.js";

/**
 * Where a Kubernetes agent serves HTTP: the node's own addresses. The kubelet renders status.hostIPs empty where the
 * PodHostIPs gate is off, so status.hostIP stands in; with neither, every address.
 */
export function nodeHttpAddresses(env: NodeJS.ProcessEnv): readonly string[] {
  return parseAddressList(env.HOST_IPS || env.HOST_IP || "");
}

function parseAddressList(text: string): readonly string[] {
  const parsed = parseIpAddressList(text);
  if ("invalid" in parsed) throw new InvalidArgumentError(`'${parsed.invalid}' is not an IP address; give the node's addresses, comma-separated, e.g. 10.0.0.5,fd00::5, or 0.0.0.0 for every IPv4 address`);
  return parsed.addresses;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError("expected a port number 0..65535");
  return port;
}

interface AgentOptions {
  readonly standalone?: boolean;
  readonly config?: string;
  readonly namespace?: string;
  readonly node?: string;
  readonly nodeAddress?: string;
  readonly httpPort: number;
  readonly httpAddress?: readonly string[];
  readonly passwordFile?: string;
  readonly logLevel: string;
  readonly vipBackend: "netlink" | "iproute";
}

export function agentCommand(): Command {
  return new Command("agent")
    .description("Run the VRRP agent on this node: elect a master, hold the VIP, announce it")
    .option("--standalone", "run without Kubernetes, from a HighAvailabilityVIP manifest file")
    .option("--config <file>", "the HighAvailabilityVIP manifest (standalone mode)")
    .option("--namespace <namespace>", "serve only the HighAvailabilityVIPs of this namespace (Kubernetes mode); default: every namespace")
    .option("--node <name>", "this node's name, as in spec.nodes.priorities", process.env.NODE_NAME)
    .option("--node-address <ip>", "this node's own address; the interface holding it is the default VRRP interface (Kubernetes mode)", process.env.HOST_IP)
    .option("--http-port <port>", "port for /metrics, /healthz and /state", parsePort, 9750)
    .option(
      "--http-address <addresses>",
      "comma-separated addresses to serve HTTP on; default: in Kubernetes the node's own addresses (HOST_IPS, else HOST_IP), standalone every address",
      parseAddressList,
    )
    .option("--password-file <file>", "VRRPv2 password file, for spec.authentication in standalone mode")
    .addOption(new Option("--log-level <level>", "pino log level").choices(["debug", "info", "warn", "error"]).default("info"))
    .addOption(new Option("--vip-backend <backend>", "how addresses are added").choices(["netlink", "iproute"]).default("netlink"))
    .action(async (options: AgentOptions) => {
      if (options.node === undefined || options.node === "") throw new StartupError("--node NAME is required (or set NODE_NAME, e.g. from the downward API's spec.nodeName)");
      if (options.standalone) {
        if (options.config === undefined) throw new StartupError("--config FILE is required with --standalone");
        // Loaded on demand: the Kubernetes client alone costs ~70 MiB of RSS that a standalone agent does not need.
        const { runStandalone } = await import("./standalone.js");
        await runStandalone({
          config: options.config,
          node: options.node,
          httpPort: options.httpPort,
          httpAddresses: options.httpAddress ?? [],
          passwordFile: options.passwordFile,
          logLevel: options.logLevel,
          vipBackend: options.vipBackend,
        });
        return;
      }
      const { runKubernetesAgent } = await import("./k8s/agent.js");
      await runKubernetesAgent({
        namespace: options.namespace,
        node: options.node,
        nodeAddress: options.nodeAddress === "" ? undefined : options.nodeAddress,
        httpPort: options.httpPort,
        // The kubelet probes a hostNetwork pod on the node's address, of the cluster's first family; the VIP and any
        // other address of the node stay closed.
        httpAddresses: options.httpAddress ?? nodeHttpAddresses(process.env),
        logLevel: options.logLevel,
        vipBackend: options.vipBackend,
      });
    });
}
