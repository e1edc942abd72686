// The part of the demo's story that does not care where the nodes run: steps in order, each bounded in time, waited
// on through the agents' /state and the client's probe, and measured from the client's side. story.ts (standalone
// agents) and cluster.ts (the Kubernetes test bed) supply the nodes and the steps.

import { waitFor, type Probe, type ProbeReport } from "../lab/index.js";
import type { Display } from "./display.js";
import type { AgentState } from "../lab/agent.js";
import type { StateWatch } from "./state-watch.js";
import type { ClientView, Frame, NodeRow, Palette, Panel, StepSummary } from "./view.js";

export interface DemoNode {
  readonly name: string;
  readonly watch: StateWatch;
}

/** What a node other than the new Master must be at the end of a step; several means any of them. */
export type NodeOutcome = "Backup" | "Fault" | "stopped";

export interface Expectation {
  /**
   * Exactly one of these must end up Master, holding the VIP and serving the client; the others in this list must be
   * Backup. More than one when the story cannot know the winner (with preemption Never the first to time out wins).
   */
  readonly masterAmong: readonly DemoNode[];
  readonly others: ReadonlyArray<readonly [DemoNode, readonly NodeOutcome[]]>;
}

export interface Step {
  readonly name: string;
  /** Overrides the story's stepTimeoutMs, for a step that waits on more than the agents. */
  readonly timeoutMs?: number;
  /** `master` is the Master when the step begins, if there is exactly one. */
  caption(master: DemoNode | undefined): string;
  act(master: DemoNode | undefined): Promise<Expectation>;
}

export interface ProbeRef {
  current: Probe | undefined;
}

export interface StoryOptions {
  readonly nodes: readonly DemoNode[];
  readonly steps: readonly Step[];
  readonly vip: string;
  readonly probe: ProbeRef;
  readonly display: Display;
  readonly palette: Palette;
  readonly isFast: boolean;
  readonly startedAt: number;
  /** No step may take longer than this to reach its expectation: the demo never hangs. */
  readonly stepTimeoutMs: number;
  /** The Master as the API reports it (kubectl's MASTER column); when given, a step also waits for it to agree. */
  readonly apiMaster?: () => string | undefined;
  /** Lines shown under the live table, e.g. `kubectl get havip`. */
  readonly panel?: () => Panel | undefined;
}

export interface StoryOutcome {
  readonly isOk: boolean;
  readonly steps: readonly StepSummary[];
  readonly client: { readonly sent: number; readonly ok: number; readonly failed: number };
}

/** Requests the client must have had answered since the nodes reached the expected states, so the outage is over. */
const servedToSettle = 20;

export async function runStory(opts: StoryOptions): Promise<StoryOutcome> {
  const { display, palette, steps, nodes } = opts;
  let currentStep = "starting";
  display.start(frameSource(opts, () => currentStep));
  const dwellMs = opts.isFast ? 500 : 2_000;
  const summaries: StepSummary[] = [];
  for (const [index, step] of steps.entries()) {
    currentStep = `step ${index + 1}/${steps.length}: ${step.name}`;
    const masters = mastersOf(nodes);
    const master = masters.length === 1 ? nodes.find((node) => node.name === masters[0]) : undefined;
    display.say(`\n${palette.bold(`${index + 1}. ${step.name}`)}: ${step.caption(master)}`);
    const summary = await runStep(step, master, opts, dwellMs);
    summaries.push(summary);
    const api = summary.apiMaster === undefined ? "" : ` (the API says ${summary.apiMaster})`;
    display.say(summary.isMet
      ? `   ${palette.good("✓")} ${summary.newMaster ?? "-"} is Master${api} · outage ${summary.outageMs} ms · ${summary.failedRequests} failed requests`
      : `   ${palette.bad("✗")} ${summary.error ?? "expectation not met"}`);
    if (!summary.isMet) break;
  }
  currentStep = "done";
  display.stop();
  const report = await opts.probe.current?.stop();
  return {
    isOk: summaries.length === steps.length && summaries.every((s) => s.isMet),
    steps: summaries,
    client: { sent: report?.sent ?? 0, ok: report?.ok ?? 0, failed: report?.failed ?? 0 },
  };
}

async function runStep(step: Step, master: DemoNode | undefined, opts: StoryOptions, dwellMs: number): Promise<StepSummary> {
  const { nodes, probe } = opts;
  const stepStart = Date.now();
  const before = probe.current?.snapshot();
  let expectation: Expectation | undefined;
  let error: string | undefined;
  try {
    expectation = await step.act(master);
    const settle = settleCheck(expectation, opts);
    await waitFor(settle, { timeoutMs: step.timeoutMs ?? opts.stepTimeoutMs, intervalMs: 50, what: describeExpectation(expectation, opts) });
    await sleep(dwellMs);
  } catch (err) {
    error = `${err instanceof Error ? err.message : String(err)}; seen: ${describeNodes(nodes)}`;
  }
  const stepEnd = Date.now();
  const after = probe.current?.snapshot();
  // By overlap, not by start: the request in flight when the step acts was sent before it and fails with it. Steps
  // only end with no window open, so no window reaches back into an earlier step further than that one request.
  const windows = (after?.windows ?? []).filter((w) => w.endMs > stepStart && w.startMs < stepEnd);
  const answeredBy = Object.fromEntries(Object.entries(after?.answeredBy ?? {})
    .map(([name, count]) => [name, count - (before?.answeredBy[name] ?? 0)])
    .filter(([, count]) => count !== 0));
  const apiMaster = opts.apiMaster?.();
  return {
    step: step.name,
    expectation: expectation === undefined ? "the step's action to succeed" : describeExpectation(expectation, opts),
    isMet: error === undefined,
    outageMs: windows.reduce((sum, w) => sum + (w.endMs - w.startMs), 0),
    failedRequests: windows.reduce((sum, w) => sum + w.failed, 0),
    newMaster: mastersOf(nodes).join("+") || undefined,
    ...(opts.apiMaster === undefined ? {} : { apiMaster }),
    durationMs: stepEnd - stepStart,
    requests: (after?.sent ?? 0) - (before?.sent ?? 0),
    answeredBy,
    ...(error === undefined ? {} : { error }),
  };
}

function stateOf(node: DemoNode): AgentState | undefined {
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

function describeExpectation(expectation: Expectation, opts: StoryOptions): string {
  const names = expectation.masterAmong.map((node) => node.name);
  const master = names.length === 1 ? `${names.join("")} Master` : `one of ${names.join(", ")} Master, the rest Backup`;
  const api = opts.apiMaster === undefined ? "" : " (also in the API)";
  return [`${master}${api} and serving the client`, ...expectation.others.map(([node, what]) => `${node.name} ${what.join(" or ")}`)].join(", ");
}

function isOutcome(node: DemoNode, outcomes: readonly NodeOutcome[]): boolean {
  const observation = node.watch.latest();
  if (observation.kind === "down") return outcomes.includes("stopped");
  if (observation.kind !== "up" || observation.state.holdsVip) return false;
  const state = observation.state.state;
  return (state === "Backup" || state === "Fault") && outcomes.includes(state);
}

/**
 * The nodes in the expected states, then `servedToSettle` answers with no failure since: a step ends once its outage
 * is over, not when the states first look right.
 */
function settleCheck(expectation: Expectation, opts: StoryOptions): () => boolean {
  let okWhenMatched: number | undefined;
  return () => {
    const report = opts.probe.current?.snapshot();
    const winners = expectation.masterAmong.filter((node) => stateOf(node)?.state === "Master");
    const winner = winners[0];
    const isMatched = winners.length === 1 && winner !== undefined && stateOf(winner)?.holdsVip === true &&
      expectation.masterAmong.every((node) => node === winner || isOutcome(node, ["Backup"])) &&
      expectation.others.every(([node, outcomes]) => isOutcome(node, outcomes)) &&
      (opts.apiMaster === undefined || opts.apiMaster() === winner.name);
    if (!isMatched || report === undefined) {
      okWhenMatched = undefined;
      return false;
    }
    okWhenMatched ??= report.ok;
    return report.ok - okWhenMatched >= servedToSettle && report.windows.at(-1)?.isOpen !== true;
  };
}

function frameSource(opts: StoryOptions, step: () => string): () => Frame {
  const { nodes, probe, vip, startedAt } = opts;
  const names = new Set(nodes.map((node) => node.name));
  let lastCounts: Readonly<Record<string, number>> = {};
  let lastServedBy: string | undefined;
  return () => {
    const rows: NodeRow[] = nodes.map((node) => ({ name: node.name, observation: node.watch.latest() }));
    const report: ProbeReport | undefined = probe.current?.snapshot();
    let client: ClientView | undefined;
    if (report !== undefined) {
      // Only a body that names a node tells who answered; the test bed's nginx pods all answer alike.
      for (const [name, count] of Object.entries(report.answeredBy)) {
        if (names.has(name) && count > (lastCounts[name] ?? 0)) lastServedBy = name;
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
    return { rows, vip, client, step: step(), elapsedMs: Date.now() - startedAt, panel: opts.panel?.() };
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
