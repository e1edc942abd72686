import { Command, InvalidArgumentError, Option } from "commander";

function parseSeconds(text: string): number {
  const seconds = Number(text);
  if (!Number.isInteger(seconds) || seconds <= 0) throw new InvalidArgumentError("expected a whole number of seconds above 0");
  return seconds;
}

interface UninstallCommandOptions {
  readonly namespace: string;
  readonly controllerDeployment: string;
  readonly controllerSelector: string;
  readonly timeout: number;
  readonly logLevel: string;
}

export function uninstallCommand(): Command {
  return new Command("uninstall")
    .description("Before helm uninstall (the chart's pre-delete hook): delete every HighAvailabilityVIP while the controller releases it, then stop the controller and delete its Lease")
    .option("--namespace <ns>", "the controller's namespace (the Helm release namespace)", process.env.POD_NAMESPACE ?? "default")
    .option("--controller-deployment <name>", "the controller's Deployment", "ha-nginx-controller")
    .option("--controller-selector <labels>", "label selector of the controller's pods", "app.kubernetes.io/name=ha-nginx-controller")
    .option("--timeout <seconds>", "give up after this long, naming what is stuck", parseSeconds, 240)
    .addOption(new Option("--log-level <level>", "pino log level").choices(["debug", "info", "warn", "error"]).default("info"))
    .action(async (options: UninstallCommandOptions) => {
      // Loaded here, as the controller command does, so the agent and --help do not pay for the Kubernetes client.
      const { pino } = await import("pino");
      const { ControllerStartupError, loadKubeConfig } = await import("./startup.js");
      const { UninstallTimeoutError, clusterPorts, uninstall } = await import("./uninstall.js");
      const { describeApiError } = await import("../k8s/errors.js");
      try {
        const { vips, controller } = clusterPorts(loadKubeConfig(), options.namespace, options.controllerDeployment, options.controllerSelector);
        await uninstall(vips, controller, {
          namespace: options.namespace,
          deployment: options.controllerDeployment,
          timeoutMs: options.timeout * 1000,
          logger: pino({ level: options.logLevel, base: { component: "uninstall" } }),
          now: Date.now,
          sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        });
      } catch (error) {
        const isExplained = error instanceof UninstallTimeoutError || error instanceof ControllerStartupError;
        console.error(`ha-nginx uninstall: ${isExplained ? error.message : describeApiError(error)}`);
        process.exitCode = 1;
      }
    });
}
