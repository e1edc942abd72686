// One long-lived helper per node, inside its namespace, answers HTTP and TCP checks (probes, preStop httpGet):
// spawning curl through `ip netns exec` for every probe would cost more CPU than the pods themselves. The helper is
// probe-helper-main.ts; this is its handle in the kubelet, which restarts it if it dies.
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { killGroup } from "../api-relay.js";

export interface CheckRequest {
  readonly kind: "http" | "tcp";
  readonly host: string;
  readonly port: number;
  readonly path?: string;
  readonly scheme?: string;
  readonly headers?: readonly { readonly name: string; readonly value: string }[];
  readonly timeoutMs: number;
}

export interface CheckResult {
  readonly ok: boolean;
  readonly detail: string;
}

// The helper's protocol: one JSON request a line on its stdin, one JSON reply a line on its stdout.
export interface HelperRequest extends CheckRequest {
  readonly id: number;
}

export interface HelperReply extends CheckResult {
  readonly id: number;
}

const restartDelayMs = 500;
const answerMarginMs = 2_000;

/** The helper script next to this file, loaded through tsx: testing/ is never compiled. */
function helperCommand(): string[] {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  return [process.execPath, "--import", tsx, join(dirname(fileURLToPath(import.meta.url)), "probe-helper-main.ts")];
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export class ProbeHelper {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, (result: CheckResult) => void>();
  private isStopped = false;

  constructor(private readonly netns: string) {}

  start(): void {
    const child = spawn("ip", ["netns", "exec", this.netns, ...helperCommand()], { detached: true, stdio: ["pipe", "pipe", "ignore"] });
    this.child = child;
    child.on("error", () => undefined);
    child.stdin?.on("error", () => undefined);
    if (child.stdout !== null) {
      createInterface({ input: child.stdout }).on("line", (line) => {
        const parsed = parseJson(line);
        if (typeof parsed !== "object" || parsed === null) return;
        const { id, ok, detail } = parsed as { id?: unknown; ok?: unknown; detail?: unknown };
        if (typeof id !== "number") return;
        this.pending.get(id)?.({ ok: ok === true, detail: typeof detail === "string" ? detail : "" });
        this.pending.delete(id);
      });
    }
    child.on("exit", () => {
      for (const settle of this.pending.values()) settle({ ok: false, detail: "probe helper exited" });
      this.pending.clear();
      if (this.child === child) this.child = undefined;
      if (!this.isStopped) setTimeout(() => { if (!this.isStopped) this.start(); }, restartDelayMs);
    });
  }

  check(request: CheckRequest): Promise<CheckResult> {
    const child = this.child;
    if (child?.stdin == null) return Promise.resolve({ ok: false, detail: "probe helper not running" });
    const id = this.nextId++;
    return new Promise((resolveCheck) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolveCheck({ ok: false, detail: "no answer from probe helper" });
      }, request.timeoutMs + answerMarginMs);
      this.pending.set(id, (result) => {
        clearTimeout(timer);
        resolveCheck(result);
      });
      const line: HelperRequest = { id, ...request };
      child.stdin?.write(`${JSON.stringify(line)}\n`);
    });
  }

  async stop(): Promise<void> {
    this.isStopped = true;
    const child = this.child;
    if (child !== undefined) await killGroup(child, 1_000);
  }
}
