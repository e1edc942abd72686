import { accessSync, constants, existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { MissingBinaryError, pinnedModuleVersion } from "../../src/testbed/binaries.js";

/** Same folder rule as src/testbed/binaries.ts: HA_NGINX_PROMTOOL_BIN, else the cache folder of the pinned version. */
export function locatePromtool(env: NodeJS.ProcessEnv = process.env): string {
  const version = pinnedModuleVersion("prometheus", "github.com/prometheus/prometheus");
  let folder = env.HA_NGINX_PROMTOOL_BIN ?? "";
  if (folder === "") {
    folder = join(env.HA_NGINX_CACHE ?? join(homedir(), ".cache", "ha-nginx"), `promtool-${version}`, "bin");
    if (!existsSync(join(folder, ".complete"))) {
      throw new MissingBinaryError(`promtool ${version} is not built (no ${join(folder, ".complete")}, HA_NGINX_PROMTOOL_BIN unset): run npm run k8s-binaries`);
    }
  }
  const promtool = join(folder, "promtool");
  try {
    accessSync(promtool, constants.X_OK);
  } catch {
    throw new MissingBinaryError(`${promtool} is missing or not executable: run npm run k8s-binaries`);
  }
  return promtool;
}
