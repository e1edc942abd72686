// The alert rules in deploy/prometheus/: promtool checks them and runs their unit tests, every alert has a case that
// fires and one that stays quiet, and every metric they read is one the agent or the controller exports, but for
// kube-state-metrics' cordon mark, which only silences. promtool is built by scripts/k8s-binaries.sh; a missing build
// fails these tests, it never skips them.
import { spawnSync } from "node:child_process";
import { readFileSync, realpathSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Histogram, type Registry } from "prom-client";
import { parse } from "yaml";
import { AgentMetrics, vrrpStates } from "../../src/agent/metrics.js";
import { createControllerMetrics } from "../../src/controller/metrics.js";
import { locatePromtool } from "./tools.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const rulesPath = join(repoRoot, "deploy/prometheus/ha-nginx-rules.yaml");
const rulesTestPath = join(repoRoot, "deploy/prometheus/ha-nginx-rules.test.yaml");

interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
}
interface AlertRuleTest {
  readonly alertname: string;
  readonly exp_alerts?: readonly unknown[];
}
const rules: readonly Rule[] = (parse(readFileSync(rulesPath, "utf8")) as { groups: { rules: Rule[] }[] }).groups.flatMap((group) => group.rules);
const alertNames = rules.flatMap((rule) => (rule.alert === undefined ? [] : [rule.alert]));

const promqlKeywords = new Set(["and", "or", "unless", "offset", "bool", "inf", "nan"]);

/**
 * The metric names a PromQL expression selects: what is left once strings, label matchers, grouping lists and ranges
 * are gone, minus function and aggregation names (followed by a parenthesis) and keywords.
 */
function selectedMetricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, "")
    .replace(/\{[^}]*\}/g, "")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "")
    .replace(/\[[^\]]*\]/g, "");
  return [...bare.matchAll(/(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?/g)]
    .filter((match) => match[2] === undefined && !promqlKeywords.has(match[1] ?? ""))
    .map((match) => match[1] ?? "");
}

/** The series names a registry exposes: a histogram's name stands for its _bucket, _sum and _count series. */
function exposedNames(registry: Registry): string[] {
  return registry.getMetricsAsArray().flatMap((metric) => (metric instanceof Histogram ? [`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`] : [metric.name]));
}

function run(command: string, args: readonly string[]) {
  const result = spawnSync(command, args, { cwd: dirname(rulesPath), encoding: "utf8", timeout: 60_000 });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

describe("alert rules", () => {
  it("promtool check rules accepts them, lint findings included", () => {
    const { code, output } = run(locatePromtool(), ["check", "rules", "--lint=all", "--lint-fatal", rulesPath]);
    expect(code, output).toBe(0);
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it("promtool test rules passes every unit test", () => {
    const { code, output } = run(locatePromtool(), ["test", "rules", rulesTestPath]);
    expect(code, output).toBe(0);
    expect(output).toContain("SUCCESS");
  });

  it("every alert has a unit test where it fires and one where it stays quiet", () => {
    const tests = (parse(readFileSync(rulesTestPath, "utf8")) as { tests: { alert_rule_test?: AlertRuleTest[] }[] }).tests.flatMap((test) => test.alert_rule_test ?? []);
    const firing = new Set(tests.filter((test) => (test.exp_alerts ?? []).length > 0).map((test) => test.alertname));
    const quiet = new Set(tests.filter((test) => (test.exp_alerts ?? []).length === 0).map((test) => test.alertname));
    expect(alertNames.filter((name) => !firing.has(name)), "alerts without a firing case").toEqual([]);
    expect(alertNames.filter((name) => !quiet.has(name)), "alerts without a quiet case").toEqual([]);
    expect([...firing, ...quiet].filter((name) => !alertNames.includes(name)), "tests of alerts that do not exist").toEqual([]);
  });

  it("reads only metrics the agent or the controller exports, Prometheus' own up, and kube-state-metrics' cordon mark", () => {
    const exported = new Set([
      ...exposedNames(new AgentMetrics("edge-1").registry),
      ...exposedNames(createControllerMetrics().registry),
      "up",
    ]);
    const kubeStateMetrics = new Set(["kube_node_spec_unschedulable"]);
    const used = new Set(rules.flatMap((rule) => selectedMetricNames(rule.expr)));
    expect(used.size).toBeGreaterThan(5);
    expect([...used].filter((name) => !exported.has(name) && !kubeStateMetrics.has(name))).toEqual([]);
    // kube-state-metrics may not be scraped at all: its series may only take alerts away, never be needed to fire one.
    for (const rule of rules) {
      for (const name of selectedMetricNames(rule.expr).filter((selected) => kubeStateMetrics.has(selected))) {
        expect(rule.expr, rule.alert).toMatch(new RegExp(`\\bunless on \\(node\\) ${name}\\b`));
      }
    }
  });

  it("names VRRP states as the agent exports them", () => {
    const stateValues = rules.flatMap((rule) => [...rule.expr.matchAll(/\b(?:state|from|to)\s*=~?\s*"([^"]*)"/g)].map((match) => match[1] ?? ""));
    expect(stateValues.length).toBeGreaterThan(0);
    expect(stateValues.filter((value) => !(vrrpStates as readonly string[]).includes(value))).toEqual([]);
  });

  it("has one source: deploy/prometheus links to the chart's file, which the PrometheusRule template reads", () => {
    const chartRules = join(repoRoot, "charts/ha-nginx/prometheus/ha-nginx-rules.yaml");
    expect(realpathSync(rulesPath)).toBe(chartRules);
    expect(readFileSync(join(repoRoot, "charts/ha-nginx/templates/prometheusrule.yaml"), "utf8")).toContain('.Files.Get "prometheus/ha-nginx-rules.yaml"');
  });
});
