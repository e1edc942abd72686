import { spawn, spawnSync } from "node:child_process";
import { constants } from "node:os";

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export interface RunOptions {
  /** Throw when the command exits non-zero (or is killed) instead of returning the code. */
  readonly check?: boolean;
  /** Killed with SIGKILL after this long; the result then has code 124, as coreutils' timeout reports. */
  readonly timeoutMs?: number;
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

const defaultTimeoutMs = 30_000;

export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    let stdout = "";
    let stderr = "";
    let isTimedOut = false;
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => { stdout += chunk; });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => { stderr += chunk; });
    const timer = setTimeout(() => {
      isTimedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? defaultTimeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result = { stdout, stderr, code: isTimedOut ? 124 : (code ?? 128 + signalNumber(signal)) };
      if (opts.check === true && result.code !== 0) {
        reject(new Error(`${describe(cmd, args)} exited with ${result.code}${isTimedOut ? " (timed out)" : ""}: ${stderr.trim() || stdout.trim()}`));
        return;
      }
      resolve(result);
    });
    if (opts.input !== undefined && child.stdin !== null) {
      child.stdin.end(opts.input);
    }
  });
}

/** For exit handlers, where nothing asynchronous runs any more. Never throws. */
export function runSync(cmd: string, args: readonly string[]): number {
  const result = spawnSync(cmd, args, { stdio: "ignore", timeout: 10_000 });
  return result.status ?? -1;
}

/** Like `runSync`, returning stdout ("" on any failure). */
export function runSyncOutput(cmd: string, args: readonly string[]): string {
  const result = spawnSync(cmd, args, { stdio: ["ignore", "pipe", "ignore"], encoding: "utf8", timeout: 10_000 });
  return typeof result.stdout === "string" ? result.stdout : "";
}

function describe(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].join(" ");
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 0 : constants.signals[signal];
}
