import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { Command } from "commander";
import type { DemoResult } from "./story.js";

interface DemoCommandOptions {
  readonly fast?: boolean;
  readonly color: boolean;
  readonly json?: boolean;
  readonly cluster?: boolean;
}

/** Exit codes: 0 every step met its expectation, 1 a step did not (or the demo broke), 130/143 interrupted. */
export function demoCommand(): Command {
  return new Command("demo")
    .description("Run three namespace nodes with nginx and agents, and fail the VIP over while a client watches (root, Linux)")
    .option("--fast", "shorter pauses between the steps")
    .option("--no-color", "no ANSI colours (also off when NO_COLOR is set or the output is not a terminal)")
    .option("--json", "print the summary as JSON on stdout; the live view goes to stderr")
    .option("--cluster", "the same story on a local Kubernetes test bed: API server, the controller, an nginx DaemonSet, kubectl get havip")
    .action(async (options: DemoCommandOptions) => {
      const isCluster = options.cluster === true;
      // Loaded here, not at the top: cli.ts builds every command, and the agent restarting after a crash should not
      // wait for the demo's lab to load.
      const modules = await Promise.all([import("../lab/index.js"), import("./story.js"), import("./view.js")]).catch(
        (error: unknown) => {
          // The container image ships only the agent and the controller.
          if ((error as { code?: string }).code !== "ERR_MODULE_NOT_FOUND") throw error;
          return undefined;
        },
      );
      if (modules === undefined) {
        console.error("ha-nginx demo: runs from a clone of the repository (bash scripts/demo.sh), not from the image");
        process.exitCode = 1;
        return;
      }
      const [{ nginxBinary }, { runDemo }, { ansiColor, noColor, renderSummary }] = modules;
      const problem = preflight(nginxBinary) ?? (isCluster ? await clusterPreflight() : undefined);
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
          // Loaded only here: the test bed (and the Kubernetes client it drives) is no part of the other commands.
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
}

function preflight(nginxBinary: string): string | undefined {
  if (process.platform !== "linux") return "needs Linux (network namespaces)";
  if (process.getuid?.() !== 0) return "needs root: it creates network namespaces, addresses and nftables rules (sudo ha-nginx demo)";
  if (!existsSync(nginxBinary)) return `needs nginx at ${nginxBinary} (apt-get install nginx-light)`;
  return undefined;
}

async function clusterPreflight(): Promise<string | undefined> {
  const { locateBinaries } = await import("../testbed/binaries.js");
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
