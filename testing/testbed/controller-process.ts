// The controller as a real process (node dist/cli.js controller) on the test bed, holding a ServiceAccount token bound
// by charts/ha-nginx's RBAC files, never system:masters: the one way the HAVIP bed and the controller's e2e tests
// install its prerequisites (a pool that admits every resource among them) and start it.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { waitFor } from "../lab/wait.js";
import { kubeconfigForServiceAccount } from "./control-plane.js";
import type { Testbed } from "./testbed.js";

const repo = resolve(import.meta.dirname, "../..");
export const havipSystemNamespace = "ha-nginx-system";
export const crdFile = join(repo, "crds/ha-nginx.io_highavailabilityvips.yaml");
export const poolCrdFile = join(repo, "crds/ha-nginx.io_vipaddresspools.yaml");
/** The pool the bed admits every resource with: tests that are not about who may claim an address run as before. */
export const permissivePoolName = "test-bed-admits-all";
export const permissivePoolManifest = `
apiVersion: ha-nginx.io/v1alpha1
kind: VIPAddressPool
metadata: { name: ${permissivePoolName} }
spec:
  addresses: ["0.0.0.0/0", "::/0"]
  namespaces: ["*"]
`;

export function renderChart(file: string): string {
  return readFileSync(join(repo, "charts/ha-nginx/templates", file), "utf8")
    .replaceAll("{{ .Release.Namespace }}", havipSystemNamespace)
    .replaceAll("{{ .Values.controller.serviceAccount.name }}", "ha-nginx-controller");
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Applies the CRD and waits until the API server serves it. */
export async function installCrd(bed: Testbed): Promise<void> {
  await mustKubectl(bed, ["apply", "--server-side", "-f", crdFile]);
  await mustKubectl(bed, ["wait", "--for=condition=Established", "crd/highavailabilityvips.ha-nginx.io", "--timeout=60s"]);
}

/**
 * Applies the VIPAddressPool CRD and waits until it is served; with `shouldAdmitEverything`, also a pool that admits
 * every resource (retried: a CRD just Established may refuse its first object for a moment).
 */
export async function installPoolCrd(bed: Testbed, { shouldAdmitEverything = true } = {}): Promise<void> {
  await mustKubectl(bed, ["apply", "--server-side", "-f", poolCrdFile]);
  await mustKubectl(bed, ["wait", "--for=condition=Established", "crd/vipaddresspools.ha-nginx.io", "--timeout=60s"]);
  if (!shouldAdmitEverything) return;
  await waitFor(async () => (await bed.kubectl(["apply", "-f", "-"], { input: permissivePoolManifest })).code === 0, {
    timeoutMs: 30_000,
    intervalMs: 250,
    what: `the VIPAddressPool ${permissivePoolName} to be created`,
  });
}

/**
 * The controller's namespace, the chart's controller and agent RBAC, the VIPAddressPool CRD and (unless
 * `shouldAdmitEverything` is false, for the tests of admission itself) a pool that admits every resource; the
 * HighAvailabilityVIP CRD too unless `shouldInstallCrd` is false (a test of the controller's startup without it).
 * Returns the controller's ServiceAccount kubeconfig.
 */
export async function installControllerAccess(bed: Testbed, { shouldInstallCrd = true, shouldAdmitEverything = true } = {}): Promise<string> {
  await bed.createNamespace(havipSystemNamespace);
  if (shouldInstallCrd) await installCrd(bed);
  await installPoolCrd(bed, { shouldAdmitEverything });
  for (const file of ["rbac-controller.yaml", "rbac-agent.yaml"]) await mustKubectl(bed, ["apply", "-f", "-"], renderChart(file));
  return kubeconfigForServiceAccount(bed.cp, havipSystemNamespace, "ha-nginx-controller");
}

async function mustKubectl(bed: Testbed, args: readonly string[], input?: string): Promise<void> {
  const result = await bed.kubectl(args, input === undefined ? undefined : { input });
  if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
}

export interface ControllerProcess {
  readonly child: ChildProcess;
  /** stdout and stderr together. */
  readonly logFile: string;
  /** 0: an ephemeral port nobody asks, for a run that never reads /readyz or /metrics. */
  readonly metricsPort: number;
  readonly exited: Promise<number | null>;
}

export interface ControllerProcessOptions {
  /** The process's HOME; its log goes here too. */
  readonly scratch: string;
  readonly logName: string;
  /** Added to PATH and HOME, the only variables it inherits; KUBECONFIG above all. */
  readonly env: Readonly<Record<string, string>>;
  readonly agentImage: string;
  readonly metricsPort: number;
  readonly extraArgs?: readonly string[];
}

export function spawnController(options: ControllerProcessOptions): ControllerProcess {
  const { scratch, metricsPort } = options;
  const logFile = join(scratch, options.logName);
  const out = createWriteStream(logFile);
  const args = [join(repo, "dist/cli.js"), "controller", "--namespace", havipSystemNamespace, "--metrics-port", String(metricsPort), "--agent-image", options.agentImage];
  const child = spawn(process.execPath, [...args, ...(options.extraArgs ?? [])], {
    env: { PATH: process.env.PATH ?? "", HOME: scratch, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  return { child, logFile, metricsPort, exited };
}

/** Waits for /readyz: caches synced, and without --leader-elect the queue running. An exit is quoted on timeout. */
export async function waitUntilReady(controller: ControllerProcess, timeoutMs: number): Promise<void> {
  await waitFor(async () => {
    if (controller.child.exitCode !== null) throw new Error(`the controller exited: ${readFileSync(controller.logFile, "utf8").slice(-2000)}`);
    return (await fetch(`http://127.0.0.1:${controller.metricsPort}/readyz`).catch(() => undefined))?.status === 200;
  }, { timeoutMs, intervalMs: 100, what: "the controller's /readyz" });
}

/** SIGKILLs every controller still running and waits for all to be gone. */
export async function killControllers(controllers: readonly ControllerProcess[]): Promise<void> {
  for (const controller of controllers) {
    if (controller.child.exitCode === null && controller.child.signalCode === null) controller.child.kill("SIGKILL");
    await controller.exited;
  }
}
