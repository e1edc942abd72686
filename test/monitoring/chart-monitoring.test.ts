// The chart's monitoring templates as `helm template` renders them: the PodMonitors and the PrometheusRule need the
// Prometheus Operator's API and say so by name, and the labels a user sets reach Kubernetes as strings. helm is built by
// scripts/k8s-binaries.sh; a missing build fails these tests, it never skips them.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { locateHelm } from "./tools.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const chart = join(repoRoot, "charts/ha-nginx");
const operatorApi = ["--api-versions", "monitoring.coreos.com/v1"];
// A home of its own, so no helm configuration or repository cache of the machine's takes part.
const helmHome = mkdtempSync(join(tmpdir(), "ha-nginx-chart-monitoring-"));

interface Manifest {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, unknown>; readonly annotations?: Record<string, unknown> };
  readonly spec?: unknown;
}

function helmTemplate(args: readonly string[]) {
  const result = spawnSync(locateHelm(), ["template", "edge", chart, "-n", "ha-nginx-system", ...args], {
    encoding: "utf8",
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? "", HOME: helmHome, HELM_CACHE_HOME: join(helmHome, "cache"), HELM_CONFIG_HOME: join(helmHome, "config"), HELM_DATA_HOME: join(helmHome, "data") },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function manifestsOf(stdout: string, kind: string): Manifest[] {
  return parseAllDocuments(stdout)
    .map((document) => document.toJS() as Manifest | null)
    .filter((manifest): manifest is Manifest => manifest?.kind === kind);
}

afterAll(() => rmSync(helmHome, { recursive: true, force: true }));

describe("chart: monitoring templates", () => {
  it("renders no PodMonitor or PrometheusRule by default, so a cluster without the Prometheus Operator installs it", () => {
    const defaults = helmTemplate([]);
    expect(defaults.code, defaults.stderr).toBe(0);
    expect(manifestsOf(defaults.stdout, "PodMonitor")).toEqual([]);
    expect(manifestsOf(defaults.stdout, "PrometheusRule")).toEqual([]);
  });

  it.each([
    ["podMonitor", "PodMonitor", 2],
    ["prometheusRule", "PrometheusRule", 1],
  ] as const)("monitoring.%s.enabled without the monitoring.coreos.com/v1 API fails naming the value and the fix; with it, %s renders", (value, kind, count) => {
    const without = helmTemplate(["--set", `monitoring.${value}.enabled=true`]);
    expect(without.code).not.toBe(0);
    expect(without.stderr).toContain(`monitoring.${value}.enabled is true, but the cluster has no monitoring.coreos.com/v1 API`);
    expect(without.stderr).toContain("install the Prometheus Operator's CRDs first");
    expect(without.stderr).toContain(`or set monitoring.${value}.enabled=false`);
    expect(without.stderr).toContain("pass --api-versions monitoring.coreos.com/v1");
    const withApi = helmTemplate([...operatorApi, "--set", `monitoring.${value}.enabled=true`]);
    expect(withApi.code, withApi.stderr).toBe(0);
    expect(manifestsOf(withApi.stdout, kind)).toHaveLength(count);
  });

  it("the PrometheusRule's spec is prometheus/ha-nginx-rules.yaml as written", () => {
    const rendered = helmTemplate([...operatorApi, "--set", "monitoring.prometheusRule.enabled=true"]);
    expect(rendered.code, rendered.stderr).toBe(0);
    const [rule] = manifestsOf(rendered.stdout, "PrometheusRule");
    expect(rule?.spec).toEqual(parse(readFileSync(join(chart, "prometheus/ha-nginx-rules.yaml"), "utf8")));
  });

  it("the dashboard ConfigMap carries the sidecar's label grafana_dashboard: \"1\" by default", () => {
    const rendered = helmTemplate(["--set", "monitoring.grafanaDashboard.enabled=true"]);
    expect(rendered.code, rendered.stderr).toBe(0);
    expect(manifestsOf(rendered.stdout, "ConfigMap").find((manifest) => manifest.metadata.name === "edge-ha-nginx-dashboard")?.metadata.labels).toMatchObject({ grafana_dashboard: "1" });
  });

  // --set makes 1 a number and true a boolean: the schema takes them, and the templates quote them.
  it.each([
    ["grafanaDashboard", "ConfigMap", true],
    ["podMonitor", "PodMonitor", false],
    ["prometheusRule", "PrometheusRule", false],
  ] as const)("monitoring.%s: a label --set as 1 or true renders as a string in the %s", (value, kind, annotations) => {
    const rendered = helmTemplate([
      ...operatorApi,
      "--set", `monitoring.${value}.enabled=true`,
      "--set", `monitoring.${value}.labels.grafana_dashboard=1`,
      "--set", `monitoring.${value}.labels.sidecar=true`,
      ...(annotations ? ["--set", `monitoring.${value}.annotations.grafana_folder=2`] : []),
    ]);
    expect(rendered.code, rendered.stderr).toBe(0);
    const objects = manifestsOf(rendered.stdout, kind).filter((manifest) => manifest.metadata.labels?.grafana_dashboard !== undefined);
    expect(objects.length).toBeGreaterThan(0);
    for (const object of objects) {
      expect(object.metadata.labels).toMatchObject({ grafana_dashboard: "1", sidecar: "true" });
      if (annotations) expect(object.metadata.annotations).toEqual({ grafana_folder: "2" });
    }
  });
});
