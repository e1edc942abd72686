// What the demo prints: the live table, the one-line status for logs, and the summary. Pure: text in, text out.

import type { Observation } from "./state-watch.js";

export interface Palette {
  readonly good: (text: string) => string;
  readonly bad: (text: string) => string;
  readonly warn: (text: string) => string;
  readonly dim: (text: string) => string;
  readonly bold: (text: string) => string;
}

const plain = (text: string): string => text;

export const noColor: Palette = { good: plain, bad: plain, warn: plain, dim: plain, bold: plain };

function sgr(code: string): (text: string) => string {
  return (text) => `\x1b[${code}m${text}\x1b[0m`;
}

export const ansiColor: Palette = { good: sgr("32"), bad: sgr("31"), warn: sgr("33"), dim: sgr("2"), bold: sgr("1") };

export interface NodeRow {
  readonly name: string;
  readonly observation: Observation;
}

export interface ClientView {
  readonly sent: number;
  readonly ok: number;
  /** How long the client has been failing right now; undefined while it is served. */
  readonly currentOutageMs: number | undefined;
  /** The node whose nginx answered the client's last successful request. */
  readonly lastServedBy: string | undefined;
}

/** Lines shown under the table as they are, e.g. a command's output; `revision` changes when they say something new. */
export interface Panel {
  readonly title: string;
  readonly lines: readonly string[];
  readonly revision: number;
}

export interface Frame {
  readonly rows: readonly NodeRow[];
  readonly vip: string;
  readonly client: ClientView | undefined;
  readonly step: string;
  readonly elapsedMs: number;
  readonly panel?: Panel | undefined;
}

export interface StepSummary {
  readonly step: string;
  readonly expectation: string;
  readonly isMet: boolean;
  readonly outageMs: number;
  readonly failedRequests: number;
  readonly newMaster: string | undefined;
  /** The Master the API reported at the end of the step (kubectl's MASTER column), when there is an API. */
  readonly apiMaster?: string | undefined;
  readonly durationMs: number;
  /** Requests the client sent during the step, and which node's nginx answered how many of them. */
  readonly requests: number;
  readonly answeredBy: Readonly<Record<string, number>>;
  readonly error?: string;
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + " ".repeat(width - text.length);
}

/** Pads by the visible width, then colours, so escapes never break the columns. */
function cell(text: string, width: number, paint: (text: string) => string = plain): string {
  return paint(pad(text, width));
}

function stateCell(observation: Observation, palette: Palette): string {
  if (observation.kind === "unknown") return cell("?", 10, palette.dim);
  if (observation.kind === "down") return cell("down", 10, palette.dim);
  const kind = observation.state.state;
  const paint = kind === "Master" ? palette.good : kind === "Fault" ? palette.bad : kind === "Initialize" ? palette.warn : plain;
  return cell(kind, 10, paint);
}

/** Who holds the VIP, by the agents' own report; more than one name is a split brain worth seeing. */
export function vipHolderNames(rows: readonly NodeRow[]): string[] {
  return rows.flatMap((row) => (row.observation.kind === "up" && row.observation.state.holdsVip ? [row.name] : []));
}

function successRate(client: ClientView): string {
  if (client.sent === 0) return "-";
  return `${((100 * client.ok) / client.sent).toFixed(1)}%`;
}

export function renderFrame(frame: Frame, palette: Palette): string[] {
  const header = palette.bold(`${pad("node", 8)}${pad("state", 10)}${pad("priority", 11)}${pad("healthy", 9)}${pad("link", 6)}VIP`);
  const rows = frame.rows.map((row) => {
    const observation = row.observation;
    if (observation.kind !== "up") {
      const why = observation.kind === "down" ? `agent not answering (${observation.reason})` : "no answer yet";
      return `${pad(row.name, 8)}${stateCell(observation, palette)}${palette.dim(why)}`;
    }
    const s = observation.state;
    const priority = s.priority === s.effectivePriority ? `${s.priority}` : `${s.priority}/${s.effectivePriority}`;
    return [
      pad(row.name, 8),
      stateCell(observation, palette),
      cell(priority, 11),
      cell(s.isHealthy ? "yes" : "no", 9, s.isHealthy ? plain : palette.bad),
      cell(s.isLinkUp ? "up" : "down", 6, s.isLinkUp ? plain : palette.bad),
      s.holdsVip ? palette.good(frame.vip) : "",
    ].join("");
  });
  const holders = vipHolderNames(frame.rows);
  const holderText = holders.length === 0 ? palette.bad("nobody") : holders.length === 1 ? palette.good(holders.join("")) : palette.bad(holders.join(" + "));
  return [
    header,
    ...rows,
    `VIP ${frame.vip} held by ${holderText}`,
    `client ${clientText(frame.client, palette)}`,
    palette.dim(`${frame.step} · ${(frame.elapsedMs / 1000).toFixed(1)} s`),
    ...(frame.panel === undefined ? [] : ["", ...renderPanel(frame.panel, palette)]),
  ];
}

export function renderPanel(panel: Panel, palette: Palette): string[] {
  return [palette.dim(panel.title), ...panel.lines];
}

function clientText(client: ClientView | undefined, palette: Palette): string {
  if (client === undefined) return palette.dim("not started");
  const served = client.lastServedBy === undefined ? "" : ` · last answer from ${client.lastServedBy}`;
  const outage = client.currentOutageMs === undefined
    ? palette.good("served")
    : palette.bad(`OUTAGE ${client.currentOutageMs} ms`);
  return `${client.ok}/${client.sent} ok (${successRate(client)}) · ${outage}${served}`;
}

/** One line per tick for a log or a pipe, where redrawing a table would only repeat it. */
export function renderStatusLine(frame: Frame): string {
  const nodes = frame.rows.map((row) => {
    const o = row.observation;
    if (o.kind !== "up") return `${row.name} ${o.kind}`;
    const s = o.state;
    return `${row.name} ${s.state} ${s.priority}/${s.effectivePriority}${s.isHealthy ? "" : " unhealthy"}${s.isLinkUp ? "" : " link-down"}${s.holdsVip ? " VIP" : ""}`;
  });
  return `[${(frame.elapsedMs / 1000).toFixed(1)} s] ${nodes.join(" | ")} | client ${clientText(frame.client, noColor)}`;
}

export function renderSummary(steps: readonly StepSummary[], palette: Palette): string[] {
  const hasApi = steps.some((s) => s.apiMaster !== undefined);
  const apiHeader = hasApi ? pad("API master", 12) : "";
  const header = palette.bold(`${pad("step", 16)}${pad("outage (ms)", 13)}${pad("failed", 8)}${pad("new master", 12)}${apiHeader}${pad("time (s)", 10)}result`);
  const rows = steps.map((s) => [
    pad(s.step, 16),
    pad(String(s.outageMs), 13),
    pad(String(s.failedRequests), 8),
    pad(s.newMaster ?? "-", 12),
    hasApi ? pad(s.apiMaster ?? "-", 12) : "",
    pad((s.durationMs / 1000).toFixed(1), 10),
    s.isMet ? palette.good("ok") : palette.bad(`FAILED: ${s.error ?? s.expectation}`),
  ].join(""));
  return [header, ...rows];
}
