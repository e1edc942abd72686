// Runs the standalone VRRP agent (`ha-nginx agent --standalone`) inside a lab host, for namespace tests and
// benchmarks: a manifest builder, a process handle with parsed logs and /state, and who holds a VIP right now.

import type { ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { z } from "zod";
import { addressesOn } from "./lab.js";
import type { Lab, LabHost } from "./types.js";
import { waitFor } from "./wait.js";

/** RFC 5798 §6.4 states, plus the agent's Fault extension; the names `/state` and the transition logs use. */
export type AgentStateKind = "Initialize" | "Backup" | "Master" | "Fault";

export type ManifestTransport =
  | { readonly mode: "Multicast" }
  | { readonly mode: "Unicast"; readonly peers: readonly string[] };

export type ManifestPreemption =
  | { readonly mode: "Always" | "Never" }
  | { readonly mode: "Delayed"; readonly delayMs: number };

export interface ManifestProbe {
  readonly path?: string;
  readonly port?: number;
  readonly host?: string;
  readonly periodMs?: number;
  readonly timeoutMs?: number;
  readonly failureThreshold?: number;
  readonly successThreshold?: number;
}

export interface HaVipManifestOptions {
  readonly name?: string;
  /** With or without a prefix length ("10.77.0.200/24"). */
  readonly addresses: readonly string[];
  /** RFC 5798 §5.2.3; required by the standalone agent. Default 51. */
  readonly virtualRouterID?: number;
  readonly vrrpVersion?: 2 | 3;
  /** RFC 5798 §5.2.7; v2 needs whole seconds. Default: the schema's (1s). */
  readonly advertisementIntervalMs?: number;
  /** Node name → priority (RFC 5798 §5.2.4); unlisted nodes get the schema's default (100). */
  readonly priorities?: Readonly<Record<string, number>>;
  /** Default Multicast: the lab floods 224.0.0.18, and standalone Unicast needs explicit peers. */
  readonly transport?: ManifestTransport;
  readonly preemption?: ManifestPreemption;
  /** The agent's local nginx probe; omitted: no health check (every node counts as healthy). */
  readonly probe?: ManifestProbe;
  /** 0: an unhealthy node goes FAULT; negative: subtracted from the priority. Only with `probe`. */
  readonly weight?: number;
  /** VRRPv2 PASS: the password itself comes from the agent's `--password-file`. */
  readonly hasAuthentication?: boolean;
  readonly interface?: string;
  readonly garpRepeat?: number;
}

/** A HighAvailabilityVIP manifest, as the standalone agent reads it. Pure: builds text, writes nothing. */
export function haVipManifest(opts: HaVipManifestOptions): string {
  const spec: Record<string, unknown> = {
    addresses: [...opts.addresses],
    virtualRouterID: opts.virtualRouterID ?? 51,
  };
  if (opts.interface !== undefined) spec["interface"] = opts.interface;
  if (opts.vrrpVersion !== undefined) spec["vrrpVersion"] = opts.vrrpVersion;
  if (opts.advertisementIntervalMs !== undefined) spec["advertisementInterval"] = durationText(opts.advertisementIntervalMs);
  if (opts.preemption !== undefined) {
    spec["preemption"] = opts.preemption.mode === "Delayed"
      ? { mode: "Delayed", delay: durationText(opts.preemption.delayMs) }
      : { mode: opts.preemption.mode };
  }
  if (opts.priorities !== undefined) {
    spec["nodes"] = { priorities: Object.entries(opts.priorities).map(([node, priority]) => ({ node, priority })) };
  }
  const transport = opts.transport ?? { mode: "Multicast" };
  spec["transport"] = transport.mode === "Unicast" ? { mode: "Unicast", peers: [...transport.peers] } : { mode: "Multicast" };
  if (opts.hasAuthentication === true) spec["authentication"] = { passwordSecretRef: { name: "vrrp-auth", key: "password" } };
  if (opts.probe !== undefined) {
    const probe = opts.probe;
    spec["healthCheck"] = {
      probe: {
        httpGet: { path: probe.path ?? "/healthz", port: probe.port ?? 80, host: probe.host ?? "127.0.0.1" },
        ...(probe.periodMs === undefined ? {} : { period: durationText(probe.periodMs) }),
        ...(probe.timeoutMs === undefined ? {} : { timeout: durationText(probe.timeoutMs) }),
        ...(probe.failureThreshold === undefined ? {} : { failureThreshold: probe.failureThreshold }),
        ...(probe.successThreshold === undefined ? {} : { successThreshold: probe.successThreshold }),
      },
      ...(opts.weight === undefined ? {} : { weight: opts.weight }),
    };
  } else if (opts.weight !== undefined) {
    throw new Error("weight applies to a health check; pass probe too");
  }
  if (opts.garpRepeat !== undefined) spec["garp"] = { repeat: opts.garpRepeat };
  return stringify({
    apiVersion: "ha-nginx.io/v1alpha1",
    kind: "HighAvailabilityVIP",
    metadata: { name: opts.name ?? "lab" },
    spec,
  });
}

function durationText(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`${ms} is not a whole number of milliseconds`);
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

const transitionSchema = z.object({
  from: z.string(),
  to: z.string(),
  reason: z.string(),
  priority: z.number(),
  at: z.string(),
});

const routerStateSchema = z.object({
  havip: z.string(),
  vrid: z.number(),
  interface: z.string(),
  state: z.enum(["Initialize", "Backup", "Master", "Fault"]),
  priority: z.number(),
  effectivePriority: z.number(),
  isHealthy: z.boolean(),
  isLinkUp: z.boolean(),
  holdsVip: z.boolean(),
  masterAddress: z.string().optional(),
  lastTransition: transitionSchema.optional(),
  counters: z.record(z.string(), z.number()),
});

/** The agent's `GET /state` document; the demo reads it too. */
export const agentDocumentSchema = z.object({
  node: z.string(),
  /** Packets no router of the agent serves. */
  counters: z.record(z.string(), z.number()),
  routers: z.array(routerStateSchema),
  problems: z.array(z.object({ havip: z.string(), problem: z.string() })),
});

/** One virtual router in the agent's `GET /state` document. */
export type AgentState = z.infer<typeof routerStateSchema>;

/** The agent's whole `GET /state` document: every router it serves, and the documents it cannot. */
export type AgentDocument = z.infer<typeof agentDocumentSchema>;

export interface AgentTransition {
  readonly from: string;
  readonly to: string;
  readonly reason: string;
  /** Epoch milliseconds (pino's `time`). */
  readonly time: number;
}

/** One pino line, as printed; the fields besides these vary by message. */
export interface AgentLogLine {
  readonly level: number;
  readonly time: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface AgentExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface StartAgentOptions {
  /** A manifest file; or pass `manifest` and it is written into the lab's temp dir. */
  readonly configPath?: string;
  readonly manifest?: string;
  /** The `--node` name, as in `spec.nodes.priorities`; default: the lab host's name. */
  readonly node?: string;
  /** Default 9750; every lab host is its own namespace, so the same port serves all of them. */
  readonly httpPort?: number;
  /** The agent's --http-address; /state is then asked there. Default: the agent's own default, every address. */
  readonly httpAddress?: string;
  readonly passwordFile?: string;
  readonly logLevel?: "debug" | "info" | "warn" | "error";
  /** Resolve only once /state answers (default true). */
  readonly shouldWaitReady?: boolean;
  readonly readyTimeoutMs?: number;
}

export interface AgentProcess {
  readonly host: LabHost;
  readonly node: string;
  readonly pid: number;
  /** The file the agent reads; rewrite it to reconfigure the agent live. */
  readonly configPath: string;
  readonly httpPort: number;
  /** Every JSON line on stdout so far. */
  logs(): readonly AgentLogLine[];
  /** stderr so far (startup errors, crashes). */
  stderr(): string;
  /** The "VRRP A -> B: reason" lines so far, oldest first; of one router when `havip` names it. */
  transitions(havip?: string): readonly AgentTransition[];
  /** GET /state from inside the host's namespace; throws when the agent does not answer. */
  document(): Promise<AgentDocument>;
  /** The router `havip` names, or the agent's only router; throws when there is no such router. */
  state(havip?: string): Promise<AgentState>;
  waitForState(kind: AgentStateKind, timeoutMs: number, havip?: string): Promise<AgentState>;
  /** SIGTERM (hand-over), then waits; SIGKILL for the group after `timeoutMs` (default 10 s). */
  stop(timeoutMs?: number): Promise<AgentExit>;
  /** SIGKILL for the whole group: a crash, the VIP stays where it was. */
  kill(): Promise<void>;
  /** Sends a signal to the agent process only (e.g. SIGHUP to reload). */
  signal(signal: NodeJS.Signals): void;
  readonly exited: Promise<AgentExit>;
}

const defaultHttpPort = 9750;
const defaultReadyTimeoutMs = 20_000;
const defaultStopTimeoutMs = 10_000;
const transitionMessage = /^VRRP (\w+) -> (\w+): (.+)$/;

/** The built CLI, `dist/cli.js`: the lab runs the agent the image runs, not its source. */
export function agentCliPath(): string {
  const path = resolve(dirname(fileURLToPath(import.meta.url)), "../../dist/cli.js");
  if (!existsSync(path)) throw new Error(`${path} is missing; run \`npm run build\` first`);
  return path;
}

let manifestCounter = 0;

export async function startAgent(lab: Lab, host: LabHost, opts: StartAgentOptions): Promise<AgentProcess> {
  const configPath = opts.configPath ?? writeManifest(lab, host, opts.manifest);
  const node = opts.node ?? host.name;
  const httpPort = opts.httpPort ?? defaultHttpPort;
  const args = [
    // A V8 CPU profile per agent, written when it stops (docs/design-notes/agent-footprint.md).
    ...(process.env.HA_NGINX_LAB_CPU_PROFILE_DIR === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${process.env.HA_NGINX_LAB_CPU_PROFILE_DIR}`]),
    agentCliPath(), "agent", "--standalone", "--config", configPath, "--node", node, "--http-port", String(httpPort),
    "--log-level", opts.logLevel ?? "info",
    ...(opts.httpAddress === undefined ? [] : ["--http-address", opts.httpAddress]),
    ...(opts.passwordFile === undefined ? [] : ["--password-file", opts.passwordFile]),
  ];
  const child = lab.spawn(host, process.execPath, args);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`the agent did not start in ${host.name}`);
  const stateHost = opts.httpAddress?.split(",")[0] ?? "127.0.0.1";
  const agent = new LabAgent(lab, host, node, pid, configPath, httpPort, stateHost.includes(":") ? `[${stateHost}]` : stateHost, child);
  if (opts.shouldWaitReady ?? true) {
    try {
      await waitFor(async () => {
        if (agent.hasExited) throw new Error(`the agent exited: ${agent.stderr().trim()} ${lastMessages(agent.logs())}`);
        await agent.document();
        return true;
      }, { timeoutMs: opts.readyTimeoutMs ?? defaultReadyTimeoutMs, intervalMs: 100, what: `the agent in ${host.name} to serve /state` });
    } catch (err) {
      await agent.kill();
      throw err;
    }
  }
  return agent;
}

function writeManifest(lab: Lab, host: LabHost, manifest: string | undefined): string {
  if (manifest === undefined) throw new Error("startAgent needs configPath or manifest");
  manifestCounter += 1;
  const path = join(lab.tmpDir, `agent-${host.name}-${manifestCounter}.yaml`);
  writeFileSync(path, manifest);
  return path;
}

function lastMessages(lines: readonly AgentLogLine[]): string {
  return lines.slice(-3).map((line) => line.msg).join(" | ");
}

const logLineSchema = z.looseObject({ level: z.number(), time: z.number(), msg: z.string() });

class LabAgent implements AgentProcess {
  readonly exited: Promise<AgentExit>;
  #exit: AgentExit | undefined;
  readonly #lines: AgentLogLine[] = [];
  #stderr = "";

  constructor(
    private readonly lab: Lab,
    readonly host: LabHost,
    readonly node: string,
    readonly pid: number,
    readonly configPath: string,
    readonly httpPort: number,
    private readonly stateHost: string,
    child: ChildProcess,
  ) {
    this.exited = new Promise((resolveExit) => {
      child.once("exit", (code, signal) => {
        this.#exit = { code, signal };
        resolveExit(this.#exit);
      });
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => { this.#stderr += chunk; });
    if (child.stdout !== null) {
      createInterface({ input: child.stdout }).on("line", (text) => {
        const parsed = logLineSchema.safeParse(safeJson(text));
        if (parsed.success) this.#lines.push(parsed.data);
      });
    }
  }

  get hasExited(): boolean {
    return this.#exit !== undefined;
  }

  logs(): readonly AgentLogLine[] {
    return [...this.#lines];
  }

  stderr(): string {
    return this.#stderr;
  }

  transitions(havip?: string): readonly AgentTransition[] {
    return this.#lines.flatMap((line) => {
      if (havip !== undefined && line["havip"] !== havip) return [];
      const match = transitionMessage.exec(line.msg);
      if (match === null) return [];
      const [, from = "", to = "", reason = ""] = match;
      return [{ from, to, reason, time: line.time }];
    });
  }

  async document(): Promise<AgentDocument> {
    const answer = await this.lab.httpGet(this.host, `http://${this.stateHost}:${this.httpPort}/state`, { timeoutMs: 2_000 });
    if (answer.status !== 200) throw new Error(`GET /state in ${this.host.name} answered ${answer.status}`);
    return agentDocumentSchema.parse(JSON.parse(answer.body));
  }

  async state(havip?: string): Promise<AgentState> {
    const { routers } = await this.document();
    const router = havip === undefined ? (routers.length === 1 ? routers[0] : undefined) : routers.find((entry) => entry.havip === havip);
    if (router === undefined) throw new Error(`the agent in ${this.host.name} serves ${routers.map((entry) => entry.havip).join(", ") || "no router"}, not ${havip ?? "exactly one"}`);
    return router;
  }

  async waitForState(kind: AgentStateKind, timeoutMs: number, havip?: string): Promise<AgentState> {
    let last: AgentState | undefined;
    await waitFor(async () => {
      last = await this.state(havip);
      return last.state === kind;
    }, { timeoutMs, intervalMs: 50, what: `the agent in ${this.host.name} to be ${kind}` });
    if (last === undefined) throw new Error(`no /state from ${this.host.name}`);
    return last;
  }

  async stop(timeoutMs = defaultStopTimeoutMs): Promise<AgentExit> {
    if (this.#exit !== undefined) return this.#exit;
    this.signal("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      this.exited,
      new Promise<undefined>((resolveLate) => { timer = setTimeout(() => resolveLate(undefined), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (exit !== undefined) return exit;
    this.signalGroup("SIGKILL");
    return this.exited;
  }

  async kill(): Promise<void> {
    if (this.#exit !== undefined) return;
    this.signalGroup("SIGKILL");
    await this.exited;
  }

  signal(signal: NodeJS.Signals): void {
    try {
      process.kill(this.pid, signal);
    } catch {
      // Gone already; `exited` tells the caller.
    }
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      // Spawned as a group leader: the group holds its arping children too.
      process.kill(-this.pid, signal);
    } catch {
      // Gone already.
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Names of the lab nodes whose `eth0` holds `address` right now (IPv4 or IPv6, prefix ignored). */
export async function vipHolders(lab: Lab, address: string): Promise<string[]> {
  const bare = address.split("/")[0] ?? address;
  const held = await Promise.all(lab.nodes.map(async (node) => {
    const addresses = await addressesOn(lab, node);
    return addresses.some((a) => a.address === bare) ? [node.name] : [];
  }));
  return held.flat();
}
