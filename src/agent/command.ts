import { Command, InvalidArgumentError, Option } from "commander";
import { runStandalone, StartupError } from "./standalone.js";

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError("expected a port number 0..65535");
  return port;
}

export function agentCommand(): Command {
  return new Command("agent")
    .description("Run the VRRP agent on this node: elect a master, hold the VIP, announce it")
    .option("--standalone", "run without Kubernetes, from a HighAvailabilityVIP manifest file")
    .option("--config <file>", "the HighAvailabilityVIP manifest (standalone mode)")
    .option("--node <name>", "this node's name, as in spec.nodes.priorities", process.env.NODE_NAME)
    .option("--http-port <port>", "port for /metrics, /healthz and /state", parsePort, 9750)
    .option("--password-file <file>", "VRRPv2 password file, for spec.authentication in standalone mode")
    .addOption(new Option("--log-level <level>", "pino log level").choices(["debug", "info", "warn", "error"]).default("info"))
    .addOption(new Option("--vip-backend <backend>", "how addresses are added").choices(["netlink", "iproute"]).default("netlink"))
    .action(async (options: { standalone?: boolean; config?: string; node?: string; httpPort: number; passwordFile?: string; logLevel: string; vipBackend: "netlink" | "iproute" }) => {
      if (!options.standalone) throw new StartupError("only --standalone is available in this build; the Kubernetes agent comes with issue 5");
      if (options.config === undefined) throw new StartupError("--config FILE is required with --standalone");
      if (options.node === undefined) throw new StartupError("--node NAME is required (or set NODE_NAME)");
      await runStandalone({
        config: options.config,
        node: options.node,
        httpPort: options.httpPort,
        passwordFile: options.passwordFile,
        logLevel: options.logLevel,
        vipBackend: options.vipBackend,
      });
    });
}
