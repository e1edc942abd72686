// Finds the test bed's binaries the way scripts/k8s-binaries.sh lays them out: HA_NGINX_*_BIN when set, else the
// cache folder of the version that tools/*/go.mod pins. A missing binary is an error, never a reason to skip: CI must
// fail loudly when the test bed cannot run.
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface TestBedBinaries {
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubeScheduler: string;
  readonly kubectl: string;
  readonly etcd: string;
  readonly helm: string;
  readonly versions: { readonly kubernetes: string; readonly etcd: string; readonly helm: string };
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export class MissingBinaryError extends Error {
  override readonly name = "MissingBinaryError";
}

// Same rule as module_version() in scripts/k8s-binaries.sh, so both agree on the folder name.
export function pinnedModuleVersion(toolDir: string, module: string): string {
  const goMod = readFileSync(join(repoRoot, "tools", toolDir, "go.mod"), "utf8");
  for (const line of goMod.split("\n")) {
    const fields = line.trim().split(/\s+/);
    const [first, second, third] = fields;
    if (first === "require" && second === module && third !== undefined) return third;
    if (first === module && second?.startsWith("v") === true) return second;
  }
  throw new Error(`tools/${toolDir}/go.mod does not require ${module}`);
}

export function binFolder(env: NodeJS.ProcessEnv, envName: string, cacheName: string, version: string): string {
  const fromEnv = env[envName];
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const cache = env.HA_NGINX_CACHE ?? join(homedir(), ".cache", "ha-nginx");
  const folder = join(cache, `${cacheName}-${version}`, "bin");
  if (!existsSync(join(folder, ".complete"))) {
    throw new MissingBinaryError(
      `${cacheName} ${version} is not built (no ${join(folder, ".complete")}, ${envName} unset): run npm run k8s-binaries`,
    );
  }
  return folder;
}

export function executable(folder: string, name: string): string {
  const path = join(folder, name);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new MissingBinaryError(`${path} is missing or not executable: run npm run k8s-binaries`);
  }
  return path;
}

export function locateBinaries(env: NodeJS.ProcessEnv = process.env): TestBedBinaries {
  const versions = {
    kubernetes: pinnedModuleVersion("k8s", "k8s.io/kubernetes"),
    etcd: pinnedModuleVersion("etcd", "go.etcd.io/etcd/server/v3"),
    helm: pinnedModuleVersion("helm", "helm.sh/helm/v3"),
  };
  const k8s = binFolder(env, "HA_NGINX_K8S_BIN", "kubernetes", versions.kubernetes);
  const etcd = binFolder(env, "HA_NGINX_ETCD_BIN", "etcd", versions.etcd);
  const helm = binFolder(env, "HA_NGINX_HELM_BIN", "helm", versions.helm);
  return {
    kubeApiserver: executable(k8s, "kube-apiserver"),
    kubeControllerManager: executable(k8s, "kube-controller-manager"),
    kubeScheduler: executable(k8s, "kube-scheduler"),
    kubectl: executable(k8s, "kubectl"),
    etcd: executable(etcd, "etcd"),
    helm: executable(helm, "helm"),
    versions,
  };
}
