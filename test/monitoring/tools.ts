import { binFolder, executable, pinnedModuleVersion } from "../../testing/testbed/binaries.js";

interface GoTool {
  /** The binary, and the cache folder's name before its version, as scripts/k8s-binaries.sh builds it. */
  readonly name: string;
  readonly envName: string;
  readonly toolDir: string;
  readonly module: string;
}

/**
 * The tool's HA_NGINX_*_BIN, else the cache folder of the pinned version, by testing/testbed/binaries.ts's rule: the unit
 * tests need only promtool and helm (the alerting e2e also the Prometheus server and Alertmanager), not the test bed's
 * control plane that locateBinaries() demands.
 */
function locateGoTool(tool: GoTool, env: NodeJS.ProcessEnv): string {
  const version = pinnedModuleVersion(tool.toolDir, tool.module);
  return executable(binFolder(env, tool.envName, tool.name, version), tool.name);
}

export function locatePromtool(env: NodeJS.ProcessEnv = process.env): string {
  return locateGoTool({ name: "promtool", envName: "HA_NGINX_PROMTOOL_BIN", toolDir: "prometheus", module: "github.com/prometheus/prometheus" }, env);
}

export function locateHelm(env: NodeJS.ProcessEnv = process.env): string {
  return locateGoTool({ name: "helm", envName: "HA_NGINX_HELM_BIN", toolDir: "helm", module: "helm.sh/helm/v3" }, env);
}

/** The Prometheus server, built with remove_all_sd from the same module version as promtool. */
export function locatePrometheus(env: NodeJS.ProcessEnv = process.env): string {
  return locateGoTool({ name: "prometheus", envName: "HA_NGINX_PROMETHEUS_BIN", toolDir: "prometheus", module: "github.com/prometheus/prometheus" }, env);
}

export function locateAlertmanager(env: NodeJS.ProcessEnv = process.env): string {
  return locateGoTool({ name: "alertmanager", envName: "HA_NGINX_ALERTMANAGER_BIN", toolDir: "alertmanager", module: "github.com/prometheus/alertmanager" }, env);
}
