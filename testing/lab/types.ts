import type { ChildProcess, StdioOptions } from "node:child_process";
import type { CommandResult, RunOptions } from "./command.js";

/** One end of the lab's segment: a network namespace with a single interface, `eth0`, on the shared bridge. */
export interface LabHost {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
  readonly address6: string;
  readonly ifname: "eth0";
  readonly mac: string;
}

export interface LabAddress {
  readonly family: "inet" | "inet6";
  readonly address: string;
  readonly prefixLength: number;
  readonly scope: string;
}

export interface CutOptions {
  readonly shouldKeepCarrier?: boolean;
}

export interface DegradeOptions {
  /** 0 to 100. */
  readonly lossPercent: number;
}

export interface LabSpawnOptions {
  readonly stdio?: StdioOptions;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export interface HttpAnswer {
  /** 0 when no HTTP answer arrived (refused, timed out, unreachable). */
  readonly status: number;
  readonly body: string;
}

export interface ProbeOptions {
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
}

export interface OutageWindow {
  /** Epoch milliseconds at which the first failed request of the window was sent. */
  readonly startMs: number;
  /** Epoch milliseconds at which the first request that succeeded again was sent (or the probe stopped). */
  readonly endMs: number;
  readonly failed: number;
  /** Still failing when the probe stopped: `endMs` is then the stop time, not a recovery. */
  readonly isOpen: boolean;
}

export interface ProbeReport {
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  readonly windows: readonly OutageWindow[];
  readonly maxOutageMs: number;
  /** Response body (trimmed) → count; with the lab's nginx the body is the answering node's name. */
  readonly answeredBy: Readonly<Record<string, number>>;
  /** Why requests failed (timeout, ECONNREFUSED, ECONNRESET, …) → count: tells a dropped packet from a refusal. */
  readonly failedWith: Readonly<Record<string, number>>;
}

export interface Probe {
  /** The report so far, while the probe keeps running (a window still failing shows as open). */
  snapshot(): ProbeReport;
  /** Stops the probe; calling it again returns the same report. */
  stop(): Promise<ProbeReport>;
}

export interface Lab {
  readonly id: string;
  /** "10.77.0.0/24" */
  readonly subnet: string;
  readonly prefixLength: number;
  /** "fd77::/64" */
  readonly subnet6: string;
  readonly prefixLength6: number;
  readonly nodes: readonly LabHost[];
  readonly client: LabHost;
  /** The namespace that holds the bridge; nothing else runs there. */
  readonly hubNetns: string;
  /** Removed by `destroy()`; put per-run files (configs, logs) here. */
  readonly tmpDir: string;
  /** Free addresses on the segment for virtual IPs: 10.77.0.(200+index) and fd77::(200+index). */
  vip(index?: number): { readonly address: string; readonly address6: string };
  exec(host: LabHost, cmd: string, args: readonly string[], opts?: RunOptions): Promise<CommandResult>;
  /**
   * Runs in its own process group, tracked, and killed (with its children) by `destroy()`. stdout and stderr are
   * pipes by default: read them, or pass `stdio`, or a chatty process blocks once the pipe buffer is full.
   */
  spawn(host: LabHost, cmd: string, args: readonly string[], opts?: LabSpawnOptions): ChildProcess;
  /** A one-shot HTTP GET from inside `host` (curl, fresh connection); never throws on network failure. */
  httpGet(host: LabHost, url: string, opts?: { readonly timeoutMs?: number }): Promise<HttpAnswer>;
  /**
   * Cuts `host` off the segment. By default the hub's port goes down and the node sees carrier loss (keepalived
   * then enters FAULT); with `shouldKeepCarrier` the bridge silently drops its frames and the node notices nothing.
   */
  cutLink(host: LabHost, opts?: CutOptions): Promise<void>;
  /** Drops a share of the host's frames at random, each direction apart; replaces an earlier silent cut or loss. */
  degradeLink(host: LabHost, opts: DegradeOptions): Promise<void>;
  /** Undoes any cut or loss; idempotent. */
  restoreLink(host: LabHost): Promise<void>;
  isolatePeers(a: LabHost, b: LabHost): Promise<void>;
  healPeers(a: LabHost, b: LabHost): Promise<void>;
  /** Resolves once the probe, running in the client namespace, has finished its first request. */
  startProbe(url: string, opts?: ProbeOptions): Promise<Probe>;
  destroy(): Promise<void>;
}
