// Processes inside a node's network namespace: a container's command, an exec probe or a preStop command.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { signalGroup } from "../api-relay.js";

export interface CommandLine {
  readonly cmd: string;
  readonly args: readonly string[];
}

export function spawnInNetns(netns: string, line: CommandLine, env: Readonly<Record<string, string>>, logFile: string, cwd: string): ChildProcess {
  const fd = openSync(logFile, "a");
  try {
    // detached: each container is a process group, so nginx's workers or a shell's children stop with it.
    return spawn("ip", ["netns", "exec", netns, line.cmd, ...line.args], { env, cwd, detached: true, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
}

export function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolveExit) => child.once("exit", (code, signal) => resolveExit({ code, signal })));
}

export async function runToCompletion(netns: string, line: CommandLine, env: Readonly<Record<string, string>>, logFile: string, cwd: string, timeoutMs: number): Promise<boolean> {
  const child = spawnInNetns(netns, line, env, logFile, cwd);
  child.on("error", () => undefined);
  const timer = setTimeout(() => signalGroup(child.pid ?? 0, "SIGKILL"), timeoutMs);
  const { code } = await waitForExit(child);
  clearTimeout(timer);
  return code === 0;
}
