// The Grafana dashboard in deploy/grafana/: every query selects only series the agent or the controller exports, with
// labels and label values they really carry; the panels the operator needs are there; promtool parses every query.
// Grafana itself is not needed (nor vendored). promtool is built by scripts/k8s-binaries.sh; a missing build fails the
// syntax test, it never skips it.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Registry } from "prom-client";
import { beforeAll, describe, expect, it } from "vitest";
import { AgentMetrics, vrrpStates } from "../../src/agent/metrics.js";
import { createControllerMetrics } from "../../src/controller/metrics.js";
import { locatePromtool } from "./tools.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const dashboardPath = join(repoRoot, "deploy/grafana/ha-nginx-dashboard.json");

// ---- The dashboard's shape, as far as these tests read it

interface Target {
  readonly refId?: string;
  readonly expr?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly description?: string;
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly targets?: readonly Target[];
  /** A collapsed row keeps its panels inside it. */
  readonly panels?: readonly Panel[];
}
interface Variable {
  readonly name: string;
  readonly type: string;
  readonly query?: string | { readonly query?: string };
  readonly definition?: string;
}
interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly Variable[] };
  readonly annotations?: { readonly list: readonly { readonly name: string; readonly expr?: string }[] };
}

function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(dashboardPath, "utf8")) as Dashboard;
}

/** Every panel, rows' nested panels included. */
function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

interface Query {
  /** Where the query sits, for failure messages: a panel title and refId, a variable or an annotation. */
  readonly where: string;
  readonly expr: string;
}

/**
 * The PromQL inside a Grafana Prometheus variable query. `label_values(expr, label)` and `query_result(expr)` wrap an
 * expression; `label_values(label)` and `metrics(regex)` select no metric.
 */
function variableExpression(query: string): string | undefined {
  const trimmed = query.trim();
  const labelValues = /^label_values\(\s*([\s\S]*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$/.exec(trimmed);
  if (labelValues !== null) return labelValues[1];
  const queryResult = /^query_result\(([\s\S]*)\)$/.exec(trimmed);
  if (queryResult !== null) return queryResult[1];
  if (/^(?:label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)|label_names\(\)|metrics\([^)]*\))$/.test(trimmed)) return undefined;
  throw new Error(`a variable query this test cannot read: ${query}`);
}

/** Every PromQL expression of a dashboard: panel targets (in rows too), query variables and annotations. */
function dashboardQueries(dashboard: Dashboard): Query[] {
  const fromPanels = allPanels(dashboard.panels).flatMap((panel) =>
    (panel.targets ?? []).flatMap((target) => (target.expr === undefined ? [] : [{ where: `panel "${panel.title}" ${target.refId ?? "?"}`, expr: target.expr }])),
  );
  const fromVariables = dashboard.templating.list
    .filter((variable) => variable.type === "query")
    .flatMap((variable) => {
      const query = typeof variable.query === "string" ? variable.query : (variable.query?.query ?? variable.definition ?? "");
      const expr = variableExpression(query);
      return expr === undefined ? [] : [{ where: `variable $${variable.name}`, expr }];
    });
  const fromAnnotations = (dashboard.annotations?.list ?? []).flatMap((annotation) =>
    annotation.expr === undefined ? [] : [{ where: `annotation "${annotation.name}"`, expr: annotation.expr }],
  );
  return [...fromPanels, ...fromVariables, ...fromAnnotations];
}

// ---- A small PromQL tokenizer: enough to find the series a query selects

interface Matcher {
  readonly label: string;
  readonly op: "=" | "!=" | "=~" | "!~";
  readonly value: string;
}
interface Selector {
  /** The metric name; empty for a `{…}` selector without a name, which the tests refuse. */
  readonly name: string;
  readonly matchers: readonly Matcher[];
}

/** Label lists, not series: `by (…)`, `without (…)`, `on (…)`, `ignoring (…)`, `group_left (…)`, `group_right (…)`. */
const groupingKeywords = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);
/**
 * Reserved words of PromQL's lexer: binary operators and modifiers spelt as words, the number literals Inf and NaN, and
 * the aggregation operators, which may take their `by (…)` before their parenthesis (`sum by (node) (x)`).
 */
const wordKeywords = new Set([
  ...["and", "or", "unless", "atan2", "offset", "bool", "inf", "nan"],
  ...["sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"],
]);
const identStart = /[a-zA-Z_:]/;
const identChar = /[a-zA-Z0-9_:]/;
const labelStart = /[a-zA-Z_]/;
const labelChar = /[a-zA-Z0-9_]/;

function at(text: string, i: number): string {
  return text.charAt(i);
}

/** Index just past the string literal opening at i ("…", '…' with escapes, `…` raw). */
function skipString(text: string, i: number): number {
  const quote = at(text, i);
  let j = i + 1;
  while (j < text.length && at(text, j) !== quote) j += quote !== "`" && at(text, j) === "\\" ? 2 : 1;
  if (j >= text.length) throw new Error(`unterminated string at ${i} in ${text}`);
  return j + 1;
}

function readString(text: string, i: number): { value: string; end: number } {
  const end = skipString(text, i);
  const raw = text.slice(i + 1, end - 1);
  return { value: at(text, i) === "`" ? raw : raw.replace(/\\(.)/g, "$1"), end };
}

/** Index just past the bracket that closes the one at i, skipping strings. */
function skipBalanced(text: string, i: number, open: string, close: string): number {
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = at(text, j);
    if (c === '"' || c === "'" || c === "`") {
      j = skipString(text, j) - 1;
    } else if (c === open) {
      depth++;
    } else if (c === close && --depth === 0) {
      return j + 1;
    }
  }
  throw new Error(`unbalanced ${open}${close} at ${i} in ${text}`);
}

function skipSpace(text: string, i: number): number {
  let j = i;
  while (j < text.length && /\s/.test(at(text, j))) j++;
  return j;
}

/** The label matchers of the `{…}` opening at i. */
function readMatchers(text: string, i: number): { matchers: Matcher[]; end: number } {
  const matchers: Matcher[] = [];
  let j = i + 1;
  for (;;) {
    j = skipSpace(text, j);
    if (at(text, j) === "}") return { matchers, end: j + 1 };
    if (at(text, j) === ",") {
      j++;
      continue;
    }
    let label: string;
    if (at(text, j) === '"') {
      const quoted = readString(text, j);
      label = quoted.value;
      j = quoted.end;
    } else if (labelStart.test(at(text, j))) {
      const start = j;
      while (labelChar.test(at(text, j))) j++;
      label = text.slice(start, j);
    } else {
      throw new Error(`cannot read a label matcher at ${j} in ${text}`);
    }
    j = skipSpace(text, j);
    const op = (["=~", "!~", "!=", "="] as const).find((candidate) => text.startsWith(candidate, j));
    if (op === undefined) {
      // PromQL 3: a lone quoted name inside braces is the metric name.
      matchers.push({ label: "__name__", op: "=", value: label });
      continue;
    }
    j = skipSpace(text, j + op.length);
    if (!['"', "'", "`"].includes(at(text, j))) throw new Error(`a label matcher without a quoted value at ${j} in ${text}`);
    const value = readString(text, j);
    matchers.push({ label, op, value: value.value });
    j = value.end;
  }
}

/**
 * The series selectors of a PromQL expression. Skipped: strings, numbers and durations, ranges and subqueries in `[…]`,
 * Grafana variables (`$x`, `${x}`, `[[x]]`), comments, label lists after grouping keywords, word operators, and
 * identifiers followed by `(` (functions and aggregations). What remains is a metric name, with its matchers if any.
 */
function selectors(expr: string): Selector[] {
  const found: Selector[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = at(expr, i);
    if (/\s/.test(c)) {
      i++;
    } else if (c === "#") {
      while (i < expr.length && at(expr, i) !== "\n") i++;
    } else if (c === '"' || c === "'" || c === "`") {
      i = skipString(expr, i);
    } else if (c === "$") {
      i++;
      if (at(expr, i) === "{") i = skipBalanced(expr, i, "{", "}");
      else while (labelChar.test(at(expr, i))) i++;
    } else if (c === "[") {
      i = skipBalanced(expr, i, "[", "]");
    } else if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(at(expr, i + 1)))) {
      const isHex = /^0[xX]/.test(expr.slice(i, i + 2));
      while (i < expr.length && /[0-9a-zA-Z_.]/.test(at(expr, i))) {
        // An exponent's sign belongs to the number: 1e-3 (but 0x1e-3 is a subtraction).
        i += !isHex && /[eE]/.test(at(expr, i)) && /[+-]/.test(at(expr, i + 1)) ? 2 : 1;
      }
    } else if (c === "{") {
      const { matchers, end } = readMatchers(expr, i);
      const named = matchers.find((matcher) => matcher.label === "__name__" && matcher.op === "=");
      found.push({ name: named?.value ?? "", matchers: matchers.filter((matcher) => matcher !== named) });
      i = end;
    } else if (identStart.test(c)) {
      const start = i;
      while (i < expr.length && identChar.test(at(expr, i))) i++;
      const word = expr.slice(start, i);
      const next = skipSpace(expr, i);
      if (groupingKeywords.has(word)) {
        if (at(expr, next) === "(") i = skipBalanced(expr, next, "(", ")");
      } else if (wordKeywords.has(word.toLowerCase()) || at(expr, next) === "(") {
        // A word operator, a number literal, or a function or aggregation name: its arguments are read as usual.
      } else if (at(expr, next) === "{") {
        const { matchers, end } = readMatchers(expr, next);
        found.push({ name: word, matchers });
        i = end;
      } else {
        found.push({ name: word, matchers: [] });
      }
    } else {
      i++;
    }
  }
  return found;
}

// ---- What the agent and the controller export

interface Exposition {
  /** Series names by the registries' types: a histogram's name stands for its _bucket, _sum and _count series. */
  readonly names: ReadonlySet<string>;
  /** From the text exposition once every metric has been used: each series' label names and values. */
  readonly labels: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>;
  /** The metric families (registered names) the agent's and the controller's own code defines, without the defaults. */
  readonly ownFamilies: readonly { readonly name: string; readonly type: string }[];
}

function seriesNamesOfType(name: string, type: string): string[] {
  if (type === "histogram") return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
  if (type === "summary") return [name, `${name}_sum`, `${name}_count`];
  return [name];
}

/** Series name → label → values, from the sample lines of a Prometheus text exposition. */
function parseExposition(text: string, into: Map<string, Map<string, Set<string>>>): void {
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (match === null) throw new Error(`unreadable exposition line: ${line}`);
    const name = match[1] ?? "";
    const labels = into.get(name) ?? new Map<string, Set<string>>();
    into.set(name, labels);
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      const values = labels.get(pair[1] ?? "") ?? new Set<string>();
      values.add(pair[2] ?? "");
      labels.set(pair[1] ?? "", values);
    }
  }
}

async function exportedSeries(): Promise<Exposition> {
  const agent = new AgentMetrics("edge-1");
  // Use every metric once, so that each labelled series appears in the text with all its labels.
  agent.unclaimedPacket("other-vrid");
  const router = agent.router("team-a/web", 51);
  router.state("Master");
  router.transition("Backup", "Master", "master-down-timer-expired");
  router.advertSent();
  router.advertReceived();
  router.packetDropped("address-mismatch");
  router.effectivePriority(150);
  router.vipHeld(true);
  router.healthy(true);
  router.vipRestored();
  router.timerLateness(0.002);

  const controller = createControllerMetrics();
  controller.reconciles.inc({ result: "success" });
  controller.reconcileErrors.inc();
  controller.reconcileSeconds.observe(0.02);
  controller.queueDepth.set(0);
  controller.watchErrors.inc({ resource: "highavailabilityvips" });
  controller.isLeader.set(1);

  const registries: Registry[] = [agent.registry, controller.registry];
  const names = new Set<string>();
  const labels = new Map<string, Map<string, Set<string>>>();
  const ownFamilies: { name: string; type: string }[] = [];
  for (const registry of registries) {
    for (const metric of await registry.getMetricsAsJSON()) {
      // prom-client's typings declare MetricType a numeric enum; at run time it is the exposition's word ("counter", …).
      const { name } = metric;
      const type = String(metric.type);
      for (const series of seriesNamesOfType(name, type)) names.add(series);
      // collectDefaultMetrics names its series <prefix>process_… and <prefix>nodejs_….
      if (!/^ha_nginx_(?:agent|controller)_(?:process|nodejs)_/.test(name)) ownFamilies.push({ name, type });
    }
    parseExposition(await registry.metrics(), labels);
  }
  return { names, labels, ownFamilies };
}

// ---- The checks, as functions so that they can be shown to fail

const grafanaBuiltins = new Set(["__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms"]);

/** Labels whose values the dashboard may only take from a variable (or match empty): no resource or node is hard-coded. */
const variableOnlyLabels = new Set(["havip", "vrid", "node"]);

function isVariable(value: string): boolean {
  return /^\$(?:\{[a-zA-Z_]\w*(?::\w+)?\}|[a-zA-Z_]\w*)$/.test(value);
}

/** Every string literal of the source tree, to check that reason codes the dashboard names exist. */
function sourceStringLiterals(): ReadonlySet<string> {
  const literals = new Set<string>();
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder)) {
      const path = join(folder, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith(".ts")) for (const match of readFileSync(path, "utf8").matchAll(/"([a-z0-9-]+)"/g)) literals.add(match[1] ?? "");
    }
  };
  walk(join(repoRoot, "src"));
  return literals;
}

/** Problems with the series a dashboard's queries select; empty when every one is exported with the labels used. */
function seriesProblems(dashboard: Dashboard, exposition: Exposition, reasonCodes: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  for (const { where, expr } of dashboardQueries(dashboard)) {
    const found = selectors(expr);
    if (found.length === 0) problems.push(`${where}: selects no series`);
    for (const { name, matchers } of found) {
      if (name === "") {
        problems.push(`${where}: a selector without a metric name`);
        continue;
      }
      if (!exposition.names.has(name)) {
        problems.push(`${where}: ${name} is not exported by the agent or the controller`);
        continue;
      }
      const seen = exposition.labels.get(name);
      for (const { label, value } of matchers) {
        const values = seen?.get(label);
        if (values === undefined) {
          problems.push(`${where}: ${name} has no label ${label}`);
          continue;
        }
        if (value === "" || isVariable(value)) continue;
        // A regular expression of plain alternatives, or one value.
        const alternatives = value.split("|");
        if (variableOnlyLabels.has(label)) {
          problems.push(`${where}: ${name}{${label}="${value}"} hard-codes a ${label}; use a variable`);
        } else if (label === "state" || label === "from" || label === "to") {
          for (const state of alternatives) if (!(vrrpStates as readonly string[]).includes(state)) problems.push(`${where}: ${label}="${state}" is not a VRRP state`);
        } else if (label === "le") {
          for (const bound of alternatives) if (!values.has(bound)) problems.push(`${where}: ${name} has no bucket le="${bound}"`);
        } else if (label === "reason") {
          for (const reason of alternatives) if (!reasonCodes.has(reason)) problems.push(`${where}: reason "${reason}" appears nowhere in src/`);
        } else {
          problems.push(`${where}: no rule here checks values of ${label} ("${value}")`);
        }
      }
    }
    for (const variable of expr.matchAll(/\$\{?([a-zA-Z_]\w*)/g)) {
      const variableName = variable[1] ?? "";
      if (!grafanaBuiltins.has(variableName) && !dashboard.templating.list.some((defined) => defined.name === variableName)) {
        problems.push(`${where}: $${variableName} is not a dashboard variable`);
      }
    }
  }
  return problems;
}

/** The topics the dashboard must show (issue #14): each needs a panel with a matching title that reads the metric. */
const requiredTopics: readonly { readonly topic: string; readonly title: RegExp; readonly query: RegExp }[] = [
  { topic: "MASTER over time per resource", title: /MASTER over time/, query: /ha_nginx_vrrp_state\{[^}]*state="Master"/ },
  { topic: "how many MASTERs each resource has", title: /MASTERs per resource/, query: /sum by \(havip, vrid\) \(ha_nginx_vrrp_state\{[^}]*state="Master"/ },
  { topic: "per-node state", title: /state per node/i, query: /ha_nginx_vrrp_state\b/ },
  { topic: "priority", title: /priority/i, query: /ha_nginx_vrrp_effective_priority\b/ },
  { topic: "failovers", title: /failover/i, query: /ha_nginx_vrrp_transitions_total\{[^}]*to="Master"/ },
  { topic: "transitions by reason", title: /transitions/i, query: /by \([^)]*reason[^)]*\) \(increase\(ha_nginx_vrrp_transitions_total/ },
  { topic: "dropped packets by reason", title: /dropped packets by reason/i, query: /by \([^)]*reason[^)]*\) \(rate\(ha_nginx_vrrp_packets_dropped_total/ },
  { topic: "timer lateness", title: /timer lateness/i, query: /histogram_quantile\([^,]+, sum by \([^)]*\ble\b[^)]*\) \(rate\(ha_nginx_timer_lateness_seconds_bucket/ },
  { topic: "VIP held", title: /VIP held/, query: /ha_nginx_vip_held\b/ },
  { topic: "health", title: /health/i, query: /ha_nginx_health_ok\b/ },
  { topic: "controller reconciles", title: /reconciles/i, query: /ha_nginx_controller_reconciles_total\b/ },
  { topic: "controller reconcile errors", title: /reconcile errors/i, query: /ha_nginx_controller_reconcile_errors_total\b/ },
];

/** Grafana's variables replaced by what Grafana would send, so that Prometheus' own parser can read the query. */
function asPlainPromQL(expr: string): string {
  return expr
    .replace(/\$__rate_interval\b/g, "2m")
    .replace(/\$__interval\b/g, "1m")
    .replace(/\$__range\b/g, "6h")
    .replace(/\$\{?[a-zA-Z_]\w*\}?/g, ".*");
}

// ---- Tests

describe("the PromQL tokenizer", () => {
  it("finds metric names and matchers, and nothing else", () => {
    const expr = `histogram_quantile(0.99, sum by (node, le) (rate(ha_nginx_timer_lateness_seconds_bucket{node=~"$node", le!="0.1"}[$__rate_interval])))
      - on (node) group_left (havip) max without (state) (up{job="x"} offset 5m) * 1e-3 > bool 2
      and ignoring (reason) label_replace(ha_nginx_vip_held, "dst", "$1", "src", "(.*)") or vector(1) unless absent(foo:bar[5m:30s])
      # a comment naming not_a_metric
      + {__name__="by_name", havip=""} + count_values("values", ha_nginx_health_ok) + Inf + NaN + 0x1F + .5`;
    expect(selectors(expr)).toEqual([
      { name: "ha_nginx_timer_lateness_seconds_bucket", matchers: [{ label: "node", op: "=~", value: "$node" }, { label: "le", op: "!=", value: "0.1" }] },
      { name: "up", matchers: [{ label: "job", op: "=", value: "x" }] },
      { name: "ha_nginx_vip_held", matchers: [] },
      { name: "foo:bar", matchers: [] },
      { name: "by_name", matchers: [{ label: "havip", op: "=", value: "" }] },
      { name: "ha_nginx_health_ok", matchers: [] },
    ]);
  });

  it("reads the expression inside Grafana's variable functions", () => {
    expect(variableExpression('label_values(ha_nginx_vrrp_state{havip=~"$havip"}, node)')).toBe('ha_nginx_vrrp_state{havip=~"$havip"}');
    expect(variableExpression("query_result(max by (havip) (ha_nginx_vip_held))")).toBe("max by (havip) (ha_nginx_vip_held)");
    expect(variableExpression("label_values(havip)")).toBeUndefined();
    expect(() => variableExpression("something_else(x)")).toThrow();
  });
});

describe("Grafana dashboard", () => {
  const dashboard = loadDashboard();
  const panels = allPanels(dashboard.panels);
  let exposition: Exposition;
  let reasonCodes: ReadonlySet<string>;
  beforeAll(async () => {
    exposition = await exportedSeries();
    reasonCodes = sourceStringLiterals();
  });

  it("derives series names from metric types as the text exposition shows them", () => {
    // Every sample line's name is a derived name, and every series of the agent's and controller's own metrics shows up.
    expect([...exposition.labels.keys()].filter((name) => !exposition.names.has(name))).toEqual([]);
    const own = exposition.ownFamilies.flatMap(({ name, type }) => seriesNamesOfType(name, type));
    expect(own.filter((name) => !exposition.labels.has(name)), "own metrics this test did not use once").toEqual([]);
    expect(exposition.names).toContain("ha_nginx_vrrp_transitions_total");
    expect(exposition.names).toContain("ha_nginx_timer_lateness_seconds_bucket");
    expect(exposition.names).not.toContain("ha_nginx_timer_lateness_seconds");
  });

  it("selects only series the agent or the controller exports, by labels and values they carry", () => {
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(20);
    expect(seriesProblems(dashboard, exposition, reasonCodes)).toEqual([]);
  });

  it("fails on a metric, a label or a value that is not exported", () => {
    const withQuery = (expr: string): Dashboard => ({
      ...dashboard,
      // The real variables, and one panel: the real panels' own problems are the previous test's.
      panels: [{ id: 999, type: "timeseries", title: "bogus", gridPos: { x: 0, y: 999, w: 24, h: 8 }, targets: [{ refId: "A", expr }] }],
    });
    const problems = (expr: string) => seriesProblems(withQuery(expr), exposition, reasonCodes);
    expect(problems(`sum(rate(ha_nginx_vrrp_bogus_total{havip=~"$havip"}[$__rate_interval]))`)).toEqual(['panel "bogus" A: ha_nginx_vrrp_bogus_total is not exported by the agent or the controller']);
    expect(problems("ha_nginx_timer_lateness_seconds")).toEqual(['panel "bogus" A: ha_nginx_timer_lateness_seconds is not exported by the agent or the controller']);
    expect(problems("ha_nginx_vrrp_transitions")).toHaveLength(1);
    expect(problems(`ha_nginx_vrrp_state{state="Mastr"}`)).toEqual(['panel "bogus" A: state="Mastr" is not a VRRP state']);
    expect(problems(`ha_nginx_vrrp_state{vip="x"}`)).toEqual(['panel "bogus" A: ha_nginx_vrrp_state has no label vip']);
    expect(problems(`ha_nginx_vrrp_packets_dropped_total{reason="no-such-reason"}`)).toHaveLength(1);
    expect(problems(`ha_nginx_timer_lateness_seconds_bucket{le="0.2"}`)).toHaveLength(1);
    expect(problems(`ha_nginx_vip_held{node="edge-1"}`)).toHaveLength(1);
    expect(problems(`ha_nginx_vip_held{node=~"$nodes"}`)).toEqual(['panel "bogus" A: $nodes is not a dashboard variable']);
    // The variable query's label argument is a label, not a metric.
    expect(problems(`ha_nginx_vip_held{node=~"$node"}`)).toEqual([]);
  });

  it("has a panel for each topic of issue #14", () => {
    const missing = requiredTopics.filter(
      ({ title, query }) => !panels.some((panel) => title.test(panel.title) && (panel.targets ?? []).some((target) => query.test(target.expr ?? ""))),
    );
    expect(missing.map(({ topic }) => topic)).toEqual([]);
  });

  it("shows every metric the agent and the controller define", () => {
    const used = new Set(dashboardQueries(dashboard).flatMap(({ expr }) => selectors(expr).map(({ name }) => name)));
    const unshown = exposition.ownFamilies.filter(({ name, type }) => !seriesNamesOfType(name, type).some((series) => used.has(series)));
    expect(unshown.map(({ name }) => name), "metrics without a panel: add one to deploy/grafana/ha-nginx-dashboard.json").toEqual([]);
  });

  it("is a well-formed dashboard: data source variable, resource and node filters, unique ids, a 24-column grid", () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    const variables = new Map(dashboard.templating.list.map((variable) => [variable.name, variable]));
    expect(variables.get("datasource")).toMatchObject({ type: "datasource", query: "prometheus" });
    expect(variables.get("havip")?.type).toBe("query");
    expect(variables.get("node")?.type).toBe("query");
    expect(new Set(panels.map((panel) => panel.id)).size).toBe(panels.length);
    for (const panel of panels) {
      expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
      if (panel.type === "row") continue;
      expect(panel.description ?? "", `${panel.title} has no description`).not.toBe("");
      expect(panel.datasource, panel.title).toEqual({ type: "prometheus", uid: "${datasource}" });
      const targets = panel.targets ?? [];
      expect(targets.length, panel.title).toBeGreaterThan(0);
      expect(new Set(targets.map((target) => target.refId)).size, panel.title).toBe(targets.length);
      for (const target of targets) expect(target.datasource, panel.title).toEqual({ type: "prometheus", uid: "${datasource}" });
    }
  });

  it("every query parses as PromQL (promtool check rules)", () => {
    const promtool = locatePromtool();
    const folder = mkdtempSync(join(tmpdir(), "ha-nginx-dashboard-"));
    try {
      const queries = dashboardQueries(dashboard);
      // One recording rule per query: promtool parses each expression with Prometheus' own parser.
      const rules = queries.map(({ expr }, index) => `      - record: dashboard:query_${index}\n        expr: ${JSON.stringify(asPlainPromQL(expr))}`);
      const file = join(folder, "dashboard-queries.yaml");
      writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}\n`);
      const result = spawnSync(promtool, ["check", "rules", file], { encoding: "utf8", timeout: 60_000 });
      const output = `${result.stdout}${result.stderr}`;
      expect(result.status, output).toBe(0);
      expect(output).toContain(`SUCCESS: ${queries.length} rules found`);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
