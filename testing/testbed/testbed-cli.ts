// `npm run testbed -- up [--nodes N]` starts the test bed in a detached process and returns once it is ready, printing
// KUBECONFIG and the namespaces; `npm run testbed -- down` stops that process, which removes everything it created.
import { Command } from "commander";
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isProcessAlive, sweepLeftoverLabs } from "../lab/registry.js";
import { startTestbed, type Testbed } from "./testbed.js";

const stateDir = "/run/ha-nginx-testbed";
const statePath = join(stateDir, "state.json");
const logPath = join(stateDir, "testbed.log");
const upTimeoutMs = 10 * 60_000;
const downTimeoutMs = 120_000;

interface ReadyState {
  readonly pid: number;
  readonly kubeconfig: string;
  readonly server: string;
  readonly labId: string;
  readonly nodes: readonly { readonly name: string; readonly netns: string; readonly address: string }[];
  readonly client: { readonly netns: string; readonly address: string };
  readonly runnerDir: string;
  readonly startMs: number;
}

type State = ({ readonly phase: "ready" } & ReadyState) | { readonly phase: "failed"; readonly pid: number; readonly error: string };

function readState(): State | undefined {
  try {
    return JSON.parse(readFileSync(statePath, "utf8")) as State;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

async function up(nodes: number): Promise<void> {
  const previous = readState();
  if (previous !== undefined && isProcessAlive(previous.pid)) {
    throw new Error(`a test bed is already running (pid ${previous.pid}); run \`npm run testbed -- down\` first`);
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  rmSync(statePath, { force: true });
  const log = openSync(logPath, "w");
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "serve", "--nodes", String(nodes)], {
    detached: true,
    stdio: ["ignore", log, log],
  });
  closeSync(log);
  let hasExited = false;
  child.once("exit", () => {
    hasExited = true;
  });
  child.unref();
  const deadline = Date.now() + upTimeoutMs;
  while (Date.now() < deadline) {
    const state = readState();
    if (state?.phase === "ready") {
      printReady(state);
      return;
    }
    if (state?.phase === "failed" || hasExited) {
      const reason = state?.phase === "failed" ? state.error : "the test bed process exited";
      throw new Error(`test bed failed to start: ${reason}\n--- ${logPath} ---\n${tail(logPath)}`);
    }
    await sleep(500);
  }
  throw new Error(`test bed not ready after ${upTimeoutMs / 1000} s; see ${logPath}`);
}

function tail(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8").split("\n").slice(-40).join("\n") : "";
}

function printReady(state: ReadyState): void {
  const lines = [
    `KUBECONFIG=${state.kubeconfig}`,
    `server: ${state.server} (pods reach it as https://127.0.0.1:6443 through the node's relay)`,
    `started in ${(state.startMs / 1000).toFixed(1)} s; test bed pid ${state.pid}; log ${logPath}; pod logs under ${state.runnerDir}/pods`,
    ...state.nodes.map((node) => `node ${node.name}: netns ${node.netns}, address ${node.address}`),
    `client: netns ${state.client.netns}, address ${state.client.address}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function serve(nodes: number): Promise<void> {
  const started = Date.now();
  let testbed: Testbed;
  try {
    testbed = await startTestbed({ nodes, log: (line) => process.stdout.write(`${line}\n`) });
  } catch (error) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    writeFileSync(statePath, JSON.stringify({ phase: "failed", pid: process.pid, error: text } satisfies State));
    process.stderr.write(`${text}\n`);
    process.exit(1);
  }
  const state: State = {
    phase: "ready",
    pid: process.pid,
    kubeconfig: testbed.kubeconfig,
    server: testbed.cp.server,
    labId: testbed.lab.id,
    nodes: testbed.nodeNames.map((name) => {
      const host = testbed.hostOf(name);
      return { name, netns: host.netns, address: host.address };
    }),
    client: { netns: testbed.lab.client.netns, address: testbed.lab.client.address },
    runnerDir: testbed.runner.dir,
    startMs: Date.now() - started,
  };
  writeFileSync(statePath, JSON.stringify(state, null, 2));
  let isStopping = false;
  const shutdown = (): void => {
    if (isStopping) return;
    isStopping = true;
    testbed.stop().then(
      () => {
        rmSync(statePath, { force: true });
        process.exit(0);
      },
      (error: unknown) => {
        process.stderr.write(`teardown: ${error instanceof Error ? error.message : String(error)}\n`);
        rmSync(statePath, { force: true });
        process.exit(1);
      },
    );
  };
  // down asks with SIGUSR2: SIGTERM and SIGINT belong to the lab's and the control plane's exit hooks, which tear
  // everything down at once with SIGKILL and stay the fallback for a test bed that does not stop in time.
  process.on("SIGUSR2", shutdown);
}

async function down(): Promise<void> {
  const state = readState();
  if (state === undefined) {
    const swept = await sweepLeftoverLabs();
    process.stdout.write(swept.length > 0 ? `no test bed running; removed leftover labs ${swept.join(", ")}\n` : "no test bed running\n");
    return;
  }
  const started = Date.now();
  for (const [signal, waitMs] of [["SIGUSR2", downTimeoutMs], ["SIGTERM", 10_000], ["SIGKILL", 2_000]] as const) {
    if (!isProcessAlive(state.pid)) break;
    process.kill(state.pid, signal);
    const deadline = Date.now() + waitMs;
    while (isProcessAlive(state.pid) && Date.now() < deadline) await sleep(100);
  }
  // A test bed killed without its teardown leaves its lab behind; the lab's registry knows how to remove it.
  await sweepLeftoverLabs();
  rmSync(statePath, { force: true });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(`test bed ${state.phase === "ready" ? state.labId : ""} (pid ${state.pid}) is down after ${seconds} s\n`);
}

function nodeCount(value: string): number {
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1 || count > 20) throw new Error(`--nodes must be 1..20, not ${value}`);
  return count;
}

const program = new Command("testbed").description("The ha-nginx e2e test bed: control plane, namespace nodes, stand-in kubelet");
program.command("up").description("start the test bed in the background and print how to reach it")
  .option("--nodes <n>", "number of nodes", nodeCount, 3)
  .action(async (opts: { nodes: number }) => up(opts.nodes));
program.command("down").description("stop the test bed and remove everything it created").action(down);
program.command("serve", { hidden: true }).option("--nodes <n>", "number of nodes", nodeCount, 3)
  .action(async (opts: { nodes: number }) => serve(opts.nodes));

await program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
