import { accessSync, constants, existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { MissingBinaryError, pinnedModuleVersion } from "../../src/testbed/binaries.js";

interface GoTool {
  /** The binary, and the cache folder's name before its version, as scripts/k8s-binaries.sh builds it. */
  readonly name: string;
  readonly envName: string;
  readonly toolDir: string;
  readonly module: string;
}

/**
 * Same folder rule as src/testbed/binaries.ts: the tool's HA_NGINX_*_BIN, else the cache folder of the pinned version.
 * The unit tests need only promtool and helm, not the test bed's control plane that locateBinaries() demands.
 */
function locateGoTool(tool: GoTool, env: NodeJS.ProcessEnv): string {
  const version = pinnedModuleVersion(tool.toolDir, tool.module);
  let folder = env[tool.envName] ?? "";
  if (folder === "") {
    folder = join(env.HA_NGINX_CACHE ?? join(homedir(), ".cache", "ha-nginx"), `${tool.name}-${version}`, "bin");
    if (!existsSync(join(folder, ".complete"))) {
      throw new MissingBinaryError(`${tool.name} ${version} is not built (no ${join(folder, ".complete")}, ${tool.envName} unset): run npm run k8s-binaries`);
    }
  }
  const binary = join(folder, tool.name);
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    throw new MissingBinaryError(`${binary} is missing or not executable: run npm run k8s-binaries`);
  }
  return binary;
}

export function locatePromtool(env: NodeJS.ProcessEnv = process.env): string {
  return locateGoTool({ name: "promtool", envName: "HA_NGINX_PROMTOOL_BIN", toolDir: "prometheus", module: "github.com/prometheus/prometheus" }, env);
}

export function locateHelm(env: NodeJS.ProcessEnv = process.env): string {
  return locateGoTool({ name: "helm", envName: "HA_NGINX_HELM_BIN", toolDir: "helm", module: "helm.sh/helm/v3" }, env);
}
