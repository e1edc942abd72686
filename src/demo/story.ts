// `ha-nginx demo`: three namespace nodes with nginx and the standalone agent, a client hitting the VIP every 10 ms,
// and a scripted story of failures, each step bounded in time and measured from the client's side.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { haVipManifest, startAgent, type AgentProcess } from "../lab/agent.js";
import { createLab, startNginx, waitFor, type LabHost, type NginxProcess, type Probe, type ProbeReport } from "../lab/index.js";
import { createDisplay } from "./display.js";
import { watchAgentState, type NodeState, type StateWatch } from "./state-watch.js";
import type { ClientView, Frame, NodeRow, Palette, StepSummary } from "./view.js";

export interface DemoOptions {
  /** Shorter pauses between steps: the same story, less time to watch it. */
  readonly isFast: boolean;
  readonly palette: Palette;
  /** Where the live table and the captions go. */
  readonly out: NodeJS.WriteStream;
}

export interface DemoResult {
  readonly labId: string;
  readonly vip: string;
  readonly isOk: boolean;
  readonly durationMs: number;
  readonly client: { readonly sent: number; readonly ok: number; readonly failed: number };
  readonly steps: readonly StepSummary[];
}

interface DemoNode {
  readonly name: string;
  readonly host: LabHost;
  readonly priority: number;
  readonly watch: StateWatch;
  agent: AgentProcess | undefined;
  nginx: NginxProcess | undefined;
}

/** What a step waits for, besides its Master serving the client. */
type NodeExpectation = "Backup" | "Fault" | "stopped";

interface Step {
  readonly name: string;
  readonly caption: string;
  readonly master: DemoNode;
  readonly others: ReadonlyArray<readonly [DemoNode, NodeExpectation]>;
  act(): Promise<void>;
}

const priorities = [150, 120, 100] as const;
const httpPort = 9750;
// RFC 5798 §5.2.7. 500 ms keeps the story quick while the Skew_Times of 120 and 100 stay 39 ms apart
// (§6.1: (256 − priority) × interval / 256), so after a hand-over edge-3 does not race edge-2 on two busy cores.
const advertisementIntervalMs = 500;
const statePollMs = 150;
const probeIntervalMs = 10;
/** No step may take longer than this to reach its expected state: the demo never hangs. */
const stepTimeoutMs = 15_000;
/** Requests the new Master must have answered before a step counts as done, so its outage window is closed. */
const servedToSettle = 20;

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const startedAt = Date.now();
  const { palette } = opts;
  const display = createDisplay(opts.out, palette);
  display.say(palette.bold("ha-nginx demo: three nodes with nginx and a VRRP agent each, one virtual IP, one client"));
  display.say(palette.dim("setting up network namespaces, nginx and the client..."));
  const lab = await createLab({ nodes: 3, idPrefix: "demo" });
  const probeRef: { current: Probe | undefined } = { current: undefined };
  try {
    const vip = lab.vip(0).address;
    const nodes = lab.nodes.map((host, i): DemoNode => ({
      name: `edge-${i + 1}`,
      host,
      priority: priorities[i] ?? 100,
      watch: watchAgentState(lab, host, { httpPort, intervalMs: statePollMs }),
      agent: undefined,
      nginx: undefined,
    }));
    const configPath = join(lab.tmpDir, "vip.yaml");
    writeFileSync(configPath, haVipManifest({
      name: "demo",
      addresses: [`${vip}/24`],
      vrrpVersion: 3,
      advertisementIntervalMs,
      priorities: Object.fromEntries(nodes.map((node) => [node.name, node.priority])),
      transport: { mode: "Multicast" },
      preemption: { mode: "Always" },
      probe: { path: "/healthz", port: 80, periodMs: 200, timeoutMs: 150, failureThreshold: 2 },
      weight: 0,
    }));
    await Promise.all(nodes.map(async (node) => {
      node.nginx = await startNginx(lab, node.host, { body: node.name });
    }));

    const startAgentOn = async (node: DemoNode): Promise<void> => {
      node.agent = await startAgent(lab, node.host, { configPath, node: node.name, httpPort });
    };
    const [edge1, edge2, edge3] = nodes;
    if (edge1 === undefined || edge2 === undefined || edge3 === undefined) throw new Error("the demo needs three nodes");

    let currentStep = "starting";
    display.start(frameSource(nodes, vip, probeRef, startedAt, () => currentStep));
    display.say(`${palette.dim("VIP")} ${vip} · ${palette.dim("priorities")} ${nodes.map((n) => `${n.name} ${n.priority}`).join(", ")} · ` +
      `${palette.dim("adverts every")} ${advertisementIntervalMs} ms · ${palette.dim("health check every 200 ms, 2 failures = Fault")}`);

    const steps: Step[] = [
      {
        name: "elect",
        caption: "Three agents start and elect edge-1, the highest priority; the client starts hitting the VIP.",
        master: edge1,
        others: [[edge2, "Backup"], [edge3, "Backup"]],
        async act() {
          await Promise.all(nodes.map(startAgentOn));
          // Started once the agents answer: the outage of this step is then the election itself (every agent waits
          // Master_Down_Interval as a Backup first, RFC 5798 §6.4.1), not the agents' process start-up.
          probeRef.current = await lab.startProbe(`http://${vip}/`, { intervalMs: probeIntervalMs, timeoutMs: 100 });
        },
      },
      {
        name: "kill nginx",
        caption: "nginx on edge-1 crashes (SIGKILL): two failed health checks later edge-1 goes Fault, and edge-2 takes the VIP.",
        master: edge2,
        others: [[edge1, "Fault"], [edge3, "Backup"]],
        async act() {
          edge1.nginx?.kill("SIGKILL");
          await edge1.nginx?.exited;
        },
      },
      {
        name: "restore nginx",
        caption: "nginx on edge-1 is back: edge-1 is healthy again and preempts edge-2 (150 > 120).",
        master: edge1,
        others: [[edge2, "Backup"], [edge3, "Backup"]],
        async act() {
          edge1.nginx = await startNginx(lab, edge1.host, { body: edge1.name });
        },
      },
      {
        name: "cut link",
        caption: "edge-1's network link is cut: edge-2 hears no adverts for Master_Down_Interval and takes over.",
        master: edge2,
        others: [[edge1, "Fault"], [edge3, "Backup"]],
        async act() {
          await lab.cutLink(edge1.host);
        },
      },
      {
        name: "restore link",
        caption: "edge-1's link is back: edge-1 rejoins and preempts edge-2 again.",
        master: edge1,
        others: [[edge2, "Backup"], [edge3, "Backup"]],
        async act() {
          await lab.restoreLink(edge1.host);
        },
      },
      {
        name: "handover",
        caption: "Planned maintenance: edge-1's agent gets SIGTERM, sends priority 0 and keeps the VIP until edge-2 speaks.",
        master: edge2,
        others: [[edge1, "stopped"], [edge3, "Backup"]],
        async act() {
          const exit = await edge1.agent?.stop();
          if (exit !== undefined && exit.code !== 0) throw new Error(`edge-1's agent exited with ${exit.code ?? exit.signal}`);
        },
      },
      {
        name: "rejoin",
        caption: "Maintenance done: edge-1's agent starts again and takes the VIP back.",
        master: edge1,
        others: [[edge2, "Backup"], [edge3, "Backup"]],
        async act() {
          await startAgentOn(edge1);
        },
      },
    ];

    const dwellMs = opts.isFast ? 500 : 2_000;
    const summaries: StepSummary[] = [];
    for (const [index, step] of steps.entries()) {
      currentStep = `step ${index + 1}/${steps.length}: ${step.name}`;
      display.say(`\n${palette.bold(`${index + 1}. ${step.name}`)}: ${step.caption}`);
      const summary = await runStep(step, nodes, probeRef, dwellMs);
      summaries.push(summary);
      display.say(summary.isMet
        ? `   ${palette.good("✓")} ${summary.newMaster ?? "-"} is Master · outage ${summary.outageMs} ms · ${summary.failedRequests} failed requests`
        : `   ${palette.bad("✗")} ${summary.error ?? "expectation not met"}`);
      if (!summary.isMet) break;
    }
    currentStep = "done";
    display.stop();
    const report = await probeRef.current?.stop();
    return {
      labId: lab.id,
      vip,
      isOk: summaries.length === steps.length && summaries.every((s) => s.isMet),
      durationMs: Date.now() - startedAt,
      client: { sent: report?.sent ?? 0, ok: report?.ok ?? 0, failed: report?.failed ?? 0 },
      steps: summaries,
    };
  } finally {
    display.stop();
    await probeRef.current?.stop();
    await lab.destroy();
  }
}

async function runStep(step: Step, nodes: readonly DemoNode[], probeRef: { readonly current: Probe | undefined }, dwellMs: number): Promise<StepSummary> {
  const stepStart = Date.now();
  const before = probeRef.current?.snapshot();
  const servedBefore = before?.answeredBy[step.master.name] ?? 0;
  const expectation = [`${step.master.name} Master and serving the client`, ...step.others.map(([node, what]) => `${node.name} ${what}`)].join(", ");
  let error: string | undefined;
  try {
    await step.act();
    await waitFor(() => isSettled(step, probeRef.current, servedBefore), { timeoutMs: stepTimeoutMs, intervalMs: 50, what: expectation });
    await sleep(dwellMs);
  } catch (err) {
    error = `${err instanceof Error ? err.message : String(err)}; seen: ${describeNodes(nodes)}`;
  }
  const stepEnd = Date.now();
  const after = probeRef.current?.snapshot();
  const windows = (after?.windows ?? []).filter((w) => w.startMs >= stepStart && w.startMs < stepEnd);
  const answeredBy = Object.fromEntries(Object.entries(after?.answeredBy ?? {})
    .map(([name, count]) => [name, count - (before?.answeredBy[name] ?? 0)])
    .filter(([, count]) => count !== 0));
  return {
    step: step.name,
    expectation,
    isMet: error === undefined,
    outageMs: windows.reduce((sum, w) => sum + (w.endMs - w.startMs), 0),
    failedRequests: windows.reduce((sum, w) => sum + w.failed, 0),
    newMaster: mastersOf(nodes).join("+") || undefined,
    durationMs: stepEnd - stepStart,
    requests: (after?.sent ?? 0) - (before?.sent ?? 0),
    answeredBy,
    ...(error === undefined ? {} : { error }),
  };
}

function stateOf(node: DemoNode): NodeState | undefined {
  const observation = node.watch.latest();
  return observation.kind === "up" ? observation.state : undefined;
}

function mastersOf(nodes: readonly DemoNode[]): string[] {
  return nodes.filter((node) => stateOf(node)?.state === "Master").map((node) => node.name);
}

function describeNodes(nodes: readonly DemoNode[]): string {
  return nodes.map((node) => {
    const observation = node.watch.latest();
    if (observation.kind !== "up") return `${node.name} ${observation.kind}`;
    return `${node.name} ${observation.state.state}${observation.state.holdsVip ? " (VIP)" : ""}`;
  }).join(", ");
}

function isSettled(step: Step, probe: Probe | undefined, servedBefore: number): boolean {
  const master = stateOf(step.master);
  if (master?.state !== "Master" || !master.holdsVip) return false;
  for (const [node, expected] of step.others) {
    const observation = node.watch.latest();
    if (expected === "stopped") {
      if (observation.kind !== "down") return false;
      continue;
    }
    if (observation.kind !== "up" || observation.state.state !== expected || observation.state.holdsVip) return false;
  }
  if (probe === undefined) return false;
  const report = probe.snapshot();
  return (report.answeredBy[step.master.name] ?? 0) - servedBefore >= servedToSettle && report.windows.at(-1)?.isOpen !== true;
}

function frameSource(
  nodes: readonly DemoNode[],
  vip: string,
  probeRef: { readonly current: Probe | undefined },
  startedAt: number,
  step: () => string,
): () => Frame {
  let lastCounts: Readonly<Record<string, number>> = {};
  let lastServedBy: string | undefined;
  return () => {
    const rows: NodeRow[] = nodes.map((node) => ({ name: node.name, observation: node.watch.latest() }));
    const report: ProbeReport | undefined = probeRef.current?.snapshot();
    let client: ClientView | undefined;
    if (report !== undefined) {
      for (const [name, count] of Object.entries(report.answeredBy)) {
        if (count > (lastCounts[name] ?? 0)) lastServedBy = name;
      }
      lastCounts = report.answeredBy;
      const last = report.windows.at(-1);
      client = {
        sent: report.sent,
        ok: report.ok,
        currentOutageMs: last?.isOpen === true ? Date.now() - last.startMs : undefined,
        lastServedBy,
      };
    }
    return { rows, vip, client, step: step(), elapsedMs: Date.now() - startedAt };
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
