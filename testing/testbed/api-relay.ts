// Processes inside a node's network namespace cannot reach the root namespace's loopback, where the API server
// listens. A unix socket lives in the file system, which every namespace shares, so it bridges them: this process
// accepts on the socket and dials the API server; socat in the node namespace listens on 127.0.0.1:6443 and dials the
// socket. Pods then use https://127.0.0.1:6443, and the API server's certificate (issued for 127.0.0.1) verifies as
// usual. Every connection dials anew, so an API server restart on the same port needs nothing here. The root-namespace
// end lives in this process rather than in a second socat so that it cannot outlive a test run killed with SIGKILL;
// the namespace end dies with its namespace.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { rm } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export const relayPort = 6443;
export const relayServer = `https://127.0.0.1:${relayPort}`;

export interface ApiRelayOptions {
  readonly netns: string;
  readonly socketPath: string;
  readonly apiPort: number;
  readonly readyTimeoutMs?: number;
}

export interface ApiRelay {
  readonly server: string;
  readonly pids: () => readonly number[];
  stop(): Promise<void>;
}

const respawnDelayMs = 500;
const stopGraceMs = 2_000;

// Keeps one process running until stopped: a relay that dies (socat hit by the OOM killer, a test killing it) comes
// back, because a node without its relay would look like a network partition no test asked for.
interface Supervised {
  readonly pid: () => number | undefined;
  stop(): Promise<void>;
}

function supervise(start: () => ChildProcess): Supervised {
  let child: ChildProcess | undefined;
  let isStopped = false;
  let timer: NodeJS.Timeout | undefined;
  const launch = (): void => {
    const current = start();
    child = current;
    current.on("error", () => undefined);
    current.on("exit", () => {
      if (child === current) child = undefined;
      if (!isStopped) timer = setTimeout(launch, respawnDelayMs);
    });
  };
  launch();
  return {
    pid: () => child?.pid,
    async stop() {
      isStopped = true;
      if (timer !== undefined) clearTimeout(timer);
      const current = child;
      if (current?.pid === undefined) return;
      await killGroup(current, stopGraceMs);
    },
  };
}

// Each relay runs in its own process group so that socat's per-connection forks go with it.
export async function killGroup(child: ChildProcess, graceMs: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  signalGroup(pid, signal);
  const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
  signalGroup(pid, "SIGKILL");
}

export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

async function listenOnSocket(socketPath: string, apiPort: number): Promise<{ close(): Promise<void> }> {
  const connections = new Set<Socket>();
  const server: Server = createServer((downstream) => {
    const upstream = createConnection({ host: "127.0.0.1", port: apiPort });
    for (const socket of [downstream, upstream]) {
      connections.add(socket);
      socket.on("close", () => connections.delete(socket));
      socket.on("error", () => {
        downstream.destroy();
        upstream.destroy();
      });
    }
    downstream.pipe(upstream).pipe(downstream);
  });
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once("error", rejectListen);
    server.listen(socketPath, () => resolveListen());
  });
  return {
    close: () =>
      new Promise<void>((resolveClose) => {
        for (const socket of connections) socket.destroy();
        server.close(() => resolveClose());
      }),
  };
}

export async function startApiRelay(options: ApiRelayOptions): Promise<ApiRelay> {
  await rm(options.socketPath, { force: true });
  const outer = await listenOnSocket(options.socketPath, options.apiPort);
  const inner = supervise(() =>
    spawn(
      "ip",
      ["netns", "exec", options.netns, "socat", `TCP-LISTEN:${relayPort},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${options.socketPath}`],
      { detached: true, stdio: "ignore" },
    ),
  );
  const relay: ApiRelay = {
    server: relayServer,
    pids: () => [inner.pid()].filter((pid): pid is number => pid !== undefined),
    async stop() {
      await Promise.all([inner.stop(), outer.close()]);
      await rm(options.socketPath, { force: true });
    },
  };
  try {
    await waitForRelay(options.netns, options.readyTimeoutMs ?? 30_000);
  } catch (error) {
    await relay.stop();
    throw error;
  }
  return relay;
}

// Any HTTP answer (even 401) proves the whole path: node loopback, both socats, the socket and the API server's TLS.
async function waitForRelay(netns: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    try {
      await execFileAsync("ip", ["netns", "exec", netns, "curl", "-sk", "-o", "/dev/null", "-m", "2", `${relayServer}/healthz`]);
      return;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`API relay in ${netns} did not answer within ${timeoutMs} ms: ${lastError}`);
}
