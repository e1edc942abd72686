import type { ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { z } from "zod";
import { agentDocumentSchema, type AgentState } from "../lab/agent.js";
import type { Lab, LabHost } from "../lab/index.js";
import { safeJson } from "../lab/probe.js";

const lineSchema = z.union([
  z.object({ t: z.number(), body: z.string() }),
  z.object({ t: z.number(), err: z.string() }),
]);

/** What the watcher knows about one agent: its last /state, or why there is none ("down" when it did not answer). */
export type Observation =
  | { readonly kind: "up"; readonly atMs: number; readonly state: AgentState }
  | { readonly kind: "down"; readonly atMs: number; readonly reason: string }
  | { readonly kind: "unknown" };

export interface StateWatch {
  /** The latest poll; an answer older than `staleMs` counts as unknown, so a stuck poller never looks healthy. */
  latest(): Observation;
}

const staleMs = 1_500;

/** The poller script next to this file, loaded through tsx: testing/ is never compiled. */
function pollerCommand(): string[] {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  return [process.execPath, "--import", tsx, join(dirname(fileURLToPath(import.meta.url)), "state-watch-main.ts")];
}

export interface WatchOptions {
  readonly httpPort: number;
  /** Where the agent serves; default 127.0.0.1 (the standalone agent serves every address). */
  readonly address?: string;
  readonly intervalMs: number;
}

/**
 * Polls the agent's /state inside `host` every `intervalMs`; the lab owns the poller and kills it on destroy. The
 * poller's command line carries the lab's id, so that a leftover one can be told apart from another run's.
 */
export function watchAgentState(lab: Lab, host: LabHost, opts: WatchOptions): StateWatch {
  const [cmd = process.execPath, ...args] = pollerCommand();
  const url = `http://${opts.address ?? "127.0.0.1"}:${opts.httpPort}/state`;
  const child: ChildProcess = lab.spawn(host, cmd, [...args, url, String(opts.intervalMs), lab.id], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let last: Observation = { kind: "unknown" };
  if (child.stdout !== null) {
    createInterface({ input: child.stdout }).on("line", (text) => {
      const parsed = lineSchema.safeParse(safeJson(text));
      if (!parsed.success) return;
      const line = parsed.data;
      if ("err" in line) {
        last = { kind: "down", atMs: line.t, reason: line.err };
        return;
      }
      // The demos run one resource, so one router per agent.
      const state = agentDocumentSchema.safeParse(safeJson(line.body));
      const [router] = state.success ? state.data.routers : [];
      last = router === undefined ? { kind: "down", atMs: line.t, reason: "no-router-yet" } : { kind: "up", atMs: line.t, state: router };
    });
  }
  return {
    latest(): Observation {
      if (last.kind !== "unknown" && Date.now() - last.atMs > staleMs) return { kind: "unknown" };
      return last;
    },
  };
}
