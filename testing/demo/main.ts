// The demo's entry point, run from a clone (`bash scripts/demo.sh`, which builds the agent first): through tsx, since
// testing/ is never compiled. The agent it starts in the namespaces is the built product, dist/cli.js.
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { Command } from "commander";
import { nginxBinary } from "../lab/index.js";
import { locateBinaries } from "../testbed/binaries.js";
import { runDemo, type DemoResult } from "./story.js";
import { ansiColor, noColor, renderSummary } from "./view.js";

interface DemoOptions {
  readonly fast?: boolean;
  readonly color: boolean;
  readonly json?: boolean;
  readonly cluster?: boolean;
}

/** Exit codes: 0 every step met its expectation, 1 a step did not (or the demo broke), 130/143 interrupted. */
const program = new Command("demo")
  .description("Run three namespace nodes with nginx and agents, and fail the VIP over while a client watches (root, Linux)")
  .option("--fast", "shorter pauses between the steps")
  .option("--no-color", "no ANSI colours (also off when NO_COLOR is set or the output is not a terminal)")
  .option("--json", "print the summary as JSON on stdout; the live view goes to stderr")
  .option("--cluster", "the same story on a local Kubernetes test bed: API server, the controller, an nginx DaemonSet, kubectl get havip")
  .action(async (options: DemoOptions) => {
    const isCluster = options.cluster === true;
    const problem = preflight(nginxBinary) ?? (isCluster ? clusterPreflight() : undefined);
    if (problem !== undefined) {
      console.error(`ha-nginx demo: ${problem}`);
      process.exitCode = 1;
      return;
    }
    const out = options.json === true ? process.stderr : process.stdout;
    const isColor = options.color && out.isTTY && process.env["NO_COLOR"] === undefined;
    const palette = isColor ? ansiColor : noColor;
    let teardown: (() => Promise<void>) | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      // The lab's exit hook tears the namespaces and every process in them down synchronously on the way out; the
      // cluster also has a controller, a kubelet and their files, whose teardown is asynchronous.
      process.stderr.write(`\nha-nginx demo: ${signal}, cleaning up\n`);
      const code = signal === "SIGINT" ? 130 : 143;
      if (teardown === undefined) process.exit(code);
      // A second signal stops waiting; the exit hooks still remove the namespaces and the control plane.
      process.once(signal, () => process.exit(code));
      void teardown().finally(() => process.exit(code));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    let result: DemoResult;
    try {
      const demoOptions = { isFast: options.fast === true, palette, out };
      if (isCluster) {
        // Loaded only here: the plain demo needs neither the test bed nor the Kubernetes client it drives.
        const { runClusterDemo } = await import("./cluster.js");
        result = await runClusterDemo({ ...demoOptions, onTeardown: (run) => { teardown = run; } });
      } else {
        result = await runDemo(demoOptions);
      }
    } catch (err) {
      console.error(`ha-nginx demo: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
      return;
    } finally {
      process.removeListener("SIGINT", onSignal);
      process.removeListener("SIGTERM", onSignal);
    }
    if (options.json === true) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      const { client } = result;
      const lines = [
        "",
        palette.bold("summary"),
        ...renderSummary(result.steps, palette),
        `client: ${client.ok}/${client.sent} requests answered, ${client.failed} failed · ${(result.durationMs / 1000).toFixed(1)} s · ` +
          `${isCluster ? "test bed" : "lab"} ${result.labId} removed`,
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
    }
    process.exitCode = result.isOk ? 0 : 1;
  });

await program.parseAsync();

function preflight(nginxBinary: string): string | undefined {
  if (process.platform !== "linux") return "needs Linux (network namespaces)";
  if (process.getuid?.() !== 0) return "needs root: it creates network namespaces, addresses and nftables rules (sudo bash scripts/demo.sh)";
  if (!existsSync(nginxBinary)) return `needs nginx at ${nginxBinary} (apt-get install nginx-light)`;
  return undefined;
}

function clusterPreflight(): string | undefined {
  try {
    locateBinaries();
  } catch (err) {
    return `--cluster needs the Kubernetes binaries (${err instanceof Error ? err.message : String(err)}); scripts/demo.sh --cluster builds them`;
  }
  // The test bed bridges each node's pods to the API server through socat.
  const path = process.env["PATH"] ?? "";
  if (!path.split(delimiter).some((dir) => existsSync(join(dir, "socat")))) return "--cluster needs socat (apt-get install socat)";
  return undefined;
}
