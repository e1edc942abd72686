import type { ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Lab, LabHost } from "./types.js";
import { waitFor } from "./wait.js";

export const nginxBinary = "/usr/sbin/nginx";

export interface NginxConfigOptions {
  /** Directory for the pid file, logs and temp paths; nginx runs with `-p prefixDir`. */
  readonly prefixDir: string;
  readonly port?: number;
  /** What `/` answers: the node's name in the lab, so a client sees which node served it. */
  readonly body: string;
  /** Omitted: every IPv4 and IPv6 address (`*:port` and `[::]:port`), so a VIP added later is served too. */
  readonly listenAddress?: string;
}

export interface NginxOptions {
  readonly port?: number;
  readonly body?: string;
  readonly listenAddress?: string;
}

export interface NginxProcess {
  readonly pid: number;
  readonly prefixDir: string;
  /** Graceful quit (SIGQUIT: finish open requests); SIGKILL for the whole group if it takes over 10 s. */
  stop(): Promise<void>;
  /** Signals the whole process group (master and workers), SIGKILL by default: a crash, not a shutdown. */
  kill(signal?: NodeJS.Signals): void;
  /** Settles when the master has exited. */
  readonly exited: Promise<void>;
}

const safeText = /^[A-Za-z0-9 ._:/@+=,-]*$/;
const stopTimeoutMs = 10_000;
const readyTimeoutMs = 15_000;

/** An nginx.conf that keeps every path inside `prefixDir`, answers `/healthz` with "ok" and `/` with `body`. */
export function nginxConfig(opts: NginxConfigOptions): string {
  const port = opts.port ?? 80;
  if (!safeText.test(opts.body)) {
    // nginx strings interpolate `$variables` and have their own quoting; keep bodies to plain characters.
    throw new Error(`nginx body ${JSON.stringify(opts.body)} has characters the lab does not quote`);
  }
  const listens = opts.listenAddress === undefined
    ? [`*:${port}`, `[::]:${port}`]
    : [opts.listenAddress.includes(":") ? `[${opts.listenAddress}]:${port}` : `${opts.listenAddress}:${port}`];
  const dir = opts.prefixDir;
  return [
    "worker_processes 1;",
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log notice;`,
    "events { worker_connections 256; }",
    "http {",
    "  access_log off;",
    "  default_type text/plain;",
    `  client_body_temp_path ${dir}/client_body;`,
    `  proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fastcgi;`,
    `  uwsgi_temp_path ${dir}/uwsgi;`,
    `  scgi_temp_path ${dir}/scgi;`,
    "  server {",
    ...listens.map((l) => `    listen ${l};`),
    '    location = /healthz { return 200 "ok"; }',
    `    location / { return 200 "${opts.body}"; }`,
    "  }",
    "}",
    "",
  ].join("\n");
}

/**
 * Runs Debian's nginx in the foreground inside `host`, and resolves once it answers on the host's address (or, for a
 * `listenAddress` the host does not hold, once it has bound its socket).
 */
export async function startNginx(lab: Lab, host: LabHost, opts: NginxOptions = {}): Promise<NginxProcess> {
  const port = opts.port ?? 80;
  const prefixDir = mkdtempSync(join(lab.tmpDir, `nginx-${host.name}-`));
  // Workers run as nobody, and nginx chowns its temp paths to them; they must be able to reach those.
  chmodSync(prefixDir, 0o755);
  chmodSync(lab.tmpDir, 0o755);
  const confPath = join(prefixDir, "nginx.conf");
  writeFileSync(confPath, nginxConfig({ prefixDir, port, body: opts.body ?? host.name, listenAddress: opts.listenAddress }));
  const child = lab.spawn(host, nginxBinary, [
    "-e", join(prefixDir, "error.log"), "-p", prefixDir, "-c", confPath, "-g", "daemon off;",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => { stderr += chunk; });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`nginx did not start in ${host.name}`);
  const nginx = nginxHandle(child, pid, prefixDir, exited);

  // A listen address the host does not hold yet (a VIP, bound thanks to ip_nonlocal_bind) cannot answer: then the pid
  // file, which nginx writes only after binding its sockets, is the readiness signal.
  const readyAddress = opts.listenAddress ?? host.address;
  const canAnswer = readyAddress === host.address || readyAddress === host.address6;
  const url = `http://${readyAddress.includes(":") ? `[${readyAddress}]` : readyAddress}:${port}/healthz`;
  try {
    await waitFor(async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`nginx exited (${child.exitCode ?? child.signalCode}): ${stderr.trim()} ${readLog(prefixDir)}`);
      }
      if (!canAnswer) return existsSync(join(prefixDir, "nginx.pid"));
      const answer = await lab.httpGet(host, url, { timeoutMs: 1_000 });
      return answer.status === 200;
    }, { timeoutMs: readyTimeoutMs, intervalMs: 50, what: `nginx in ${host.name} ready on ${url}` });
  } catch (err) {
    nginx.kill("SIGKILL");
    throw err;
  }
  return nginx;
}

function nginxHandle(child: ChildProcess, pid: number, prefixDir: string, exited: Promise<void>): NginxProcess {
  const isRunning = (): boolean => child.exitCode === null && child.signalCode === null;
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      // The group is gone already.
    }
  };
  return {
    pid,
    prefixDir,
    exited,
    kill(signal: NodeJS.Signals = "SIGKILL"): void {
      signalGroup(signal);
    },
    async stop(): Promise<void> {
      if (!isRunning()) return;
      child.kill("SIGQUIT");
      let timer: NodeJS.Timeout | undefined;
      const isExited = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), stopTimeoutMs); }),
      ]);
      clearTimeout(timer);
      if (!isExited) {
        signalGroup("SIGKILL");
        await exited;
      }
    },
  };
}

function readLog(prefixDir: string): string {
  try {
    return readFileSync(join(prefixDir, "error.log"), "utf8").trim().split("\n").slice(-5).join("\n");
  } catch {
    return "";
  }
}
