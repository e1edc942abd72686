// What a pod's containers start with. There is no container file system: configMap, secret, emptyDir, downwardAPI and
// projected volumes are written to the pod folder, and every argument and environment value that names a mount path
// is rewritten to that folder. Each pod also gets a kubeconfig with a token bound to it (see stand-in-kubelet.ts).
import type { CoreV1Api, V1Container, V1EnvVar, V1Pod, V1Volume } from "@kubernetes/client-node";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { relayServer } from "../api-relay.js";
import { apiCode, errorText } from "./api-calls.js";
import type { NodeState } from "./node-heartbeat.js";

// The pod's configuration cannot be met (yet): a missing ConfigMap, key or field. The kubelet reports
// CreateContainerConfigError and tries again.
export class ConfigError extends Error {}

export interface Mount {
  readonly containerPath: string;
  readonly hostPath: string;
}

// A pod as its worker sees it at this moment: the latest object from the API, its folder and its node.
export interface PodSubject {
  readonly pod: V1Pod;
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly dir: string;
  readonly node: NodeState;
}

const tokenExpirationSeconds = 48 * 3600;
const basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export async function configMapData(core: CoreV1Api, namespace: string, name: string, isOptional: boolean): Promise<Map<string, Buffer>> {
  try {
    const configMap = await core.readNamespacedConfigMap({ name, namespace });
    const data = new Map<string, Buffer>();
    for (const [key, value] of Object.entries(configMap.data ?? {})) data.set(key, Buffer.from(value, "utf8"));
    for (const [key, value] of Object.entries(configMap.binaryData ?? {})) data.set(key, Buffer.from(value, "base64"));
    return data;
  } catch (error) {
    if (apiCode(error) === 404 && isOptional) return new Map();
    if (apiCode(error) === 404) throw new ConfigError(`configmap "${name}" not found`);
    throw new ConfigError(`reading configmap ${name}: ${errorText(error)}`);
  }
}

export async function secretData(core: CoreV1Api, namespace: string, name: string, isOptional: boolean): Promise<Map<string, Buffer>> {
  try {
    const secret = await core.readNamespacedSecret({ name, namespace });
    const data = new Map<string, Buffer>();
    for (const [key, value] of Object.entries(secret.data ?? {})) data.set(key, Buffer.from(value, "base64"));
    for (const [key, value] of Object.entries(secret.stringData ?? {})) data.set(key, Buffer.from(value, "utf8"));
    return data;
  } catch (error) {
    if (apiCode(error) === 404 && isOptional) return new Map();
    if (apiCode(error) === 404) throw new ConfigError(`secret "${name}" not found`);
    throw new ConfigError(`reading secret ${name}: ${errorText(error)}`);
  }
}

// Bound to the pod, as the kubelet's projected token is: deleting the pod revokes it.
async function mintPodToken(core: CoreV1Api, pod: V1Pod, audience: string | undefined, expirationSeconds: number | undefined): Promise<string> {
  const namespace = pod.metadata?.namespace ?? "";
  const serviceAccount = pod.spec?.serviceAccountName ?? "default";
  try {
    const request = await core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: {
        spec: {
          audiences: audience === undefined ? [] : [audience],
          expirationSeconds: expirationSeconds ?? 3600,
          boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata?.name ?? "", uid: pod.metadata?.uid ?? "" },
        },
      },
    });
    const token = request.status?.token;
    if (token === undefined) throw new ConfigError(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
    return token;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`minting a token for service account ${namespace}/${serviceAccount}: ${errorText(error)}`);
  }
}

// The pod's KUBECONFIG, for the API relay's https://127.0.0.1:6443 in the node's namespace.
export async function writePodKubeconfig(core: CoreV1Api, caFile: string, subject: PodSubject): Promise<string> {
  const token = await mintPodToken(core, subject.pod, undefined, tokenExpirationSeconds);
  const ca = await readFile(caFile);
  const path = join(subject.dir, "kubeconfig");
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "testbed", cluster: { server: relayServer, "certificate-authority-data": ca.toString("base64") } }],
    users: [{ name: "pod", user: { token } }],
    contexts: [{ name: "pod", context: { cluster: "testbed", user: "pod", namespace: subject.namespace } }],
    "current-context": "pod",
  };
  await writeFile(path, JSON.stringify(config, null, 2), { mode: 0o600 });
  return path;
}

// Each volume's folder, by volume name.
export async function materializeVolumes(core: CoreV1Api, subject: PodSubject): Promise<Map<string, string>> {
  const dirs = new Map<string, string>();
  for (const volume of subject.pod.spec?.volumes ?? []) {
    if (volume.hostPath !== undefined) {
      // Every node shares the machine's file system: a hostPath is the real path.
      const { path, type } = volume.hostPath;
      dirs.set(volume.name, path);
      if (type === "DirectoryOrCreate") await mkdir(path, { recursive: true });
      if (type === "FileOrCreate" && !existsSync(path)) await writeFileAt(dirname(path), basename(path), "");
      continue;
    }
    const path = join(subject.dir, "volumes", volume.name);
    dirs.set(volume.name, path);
    await mkdir(path, { recursive: true });
    await fillVolume(core, subject, volume, path);
  }
  return dirs;
}

export async function fillVolume(core: CoreV1Api, subject: PodSubject, volume: V1Volume, path: string): Promise<void> {
  const namespace = subject.namespace;
  if (volume.configMap !== undefined) {
    const data = await configMapData(core, namespace, volume.configMap.name ?? "", volume.configMap.optional === true);
    await writeItems(path, data, volume.configMap.items);
  }
  if (volume.secret !== undefined) {
    const data = await secretData(core, namespace, volume.secret.secretName ?? "", volume.secret.optional === true);
    await writeItems(path, data, volume.secret.items);
  }
  for (const item of volume.downwardAPI?.items ?? []) {
    if (item.fieldRef !== undefined) await writeFileAt(path, item.path, fieldValue(subject, item.fieldRef.fieldPath));
  }
  for (const source of volume.projected?.sources ?? []) {
    if (source.serviceAccountToken !== undefined) {
      const token = await mintPodToken(core, subject.pod, source.serviceAccountToken.audience, source.serviceAccountToken.expirationSeconds);
      await writeFileAt(path, source.serviceAccountToken.path, token);
    }
    if (source.configMap !== undefined) {
      const data = await configMapData(core, namespace, source.configMap.name ?? "", source.configMap.optional === true);
      await writeItems(path, data, source.configMap.items);
    }
    if (source.secret !== undefined) {
      const data = await secretData(core, namespace, source.secret.name ?? "", source.secret.optional === true);
      await writeItems(path, data, source.secret.items);
    }
    for (const item of source.downwardAPI?.items ?? []) {
      if (item.fieldRef !== undefined) await writeFileAt(path, item.path, fieldValue(subject, item.fieldRef.fieldPath));
    }
  }
}

export async function mountsFor(container: V1Container, volumeDirs: ReadonlyMap<string, string>): Promise<Mount[]> {
  const mounts: Mount[] = [];
  for (const mount of container.volumeMounts ?? []) {
    const base = volumeDirs.get(mount.name);
    if (base === undefined) throw new ConfigError(`container ${container.name} mounts unknown volume ${mount.name}`);
    const hostPath = mount.subPath === undefined || mount.subPath === "" ? base : join(base, mount.subPath);
    mounts.push({ containerPath: mount.mountPath.replace(/\/+$/, ""), hostPath });
  }
  // The longest mount path wins, as the innermost mount does in a container.
  return mounts.sort((a, b) => b.containerPath.length - a.containerPath.length);
}

function fieldValue(subject: PodSubject, path: string): string {
  const pod = subject.pod;
  const labelMatch = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (labelMatch !== null) {
    const source = labelMatch[1] === "labels" ? pod.metadata?.labels : pod.metadata?.annotations;
    return source?.[labelMatch[2] ?? ""] ?? "";
  }
  const address = subject.node.host.address;
  const values: Readonly<Record<string, string>> = {
    "metadata.name": subject.name,
    "metadata.namespace": subject.namespace,
    "metadata.uid": subject.uid,
    "spec.nodeName": subject.node.name,
    "spec.serviceAccountName": pod.spec?.serviceAccountName ?? "default",
    "status.hostIP": address,
    "status.hostIPs": address,
    "status.podIP": address,
    "status.podIPs": address,
    "metadata.labels": Object.entries(pod.metadata?.labels ?? {}).map(([k, v]) => `${k}="${v}"`).join("\n"),
    "metadata.annotations": Object.entries(pod.metadata?.annotations ?? {}).map(([k, v]) => `${k}="${v}"`).join("\n"),
  };
  const value = values[path];
  if (value === undefined) throw new ConfigError(`fieldRef ${path} is not supported by the test bed`);
  return value;
}

export async function envFor(core: CoreV1Api, subject: PodSubject, container: V1Container, mounts: readonly Mount[], kubeconfigPath: string | undefined): Promise<Record<string, string>> {
  const env: Record<string, string> = {
    PATH: basePath,
    HOME: "/root",
    HOSTNAME: subject.name,
    KUBERNETES_SERVICE_HOST: "127.0.0.1",
    KUBERNETES_SERVICE_PORT: "6443",
    ...(kubeconfigPath === undefined ? {} : { KUBECONFIG: kubeconfigPath }),
  };
  for (const source of container.envFrom ?? []) {
    const prefix = source.prefix ?? "";
    const data = source.configMapRef !== undefined
      ? await configMapData(core, subject.namespace, source.configMapRef.name ?? "", source.configMapRef.optional === true)
      : source.secretRef !== undefined
        ? await secretData(core, subject.namespace, source.secretRef.name ?? "", source.secretRef.optional === true)
        : new Map<string, Buffer>();
    for (const [key, value] of data) env[`${prefix}${key}`] = value.toString("utf8");
  }
  for (const variable of container.env ?? []) {
    const value = await envValue(core, subject, container, variable, env);
    if (value !== undefined) env[variable.name] = translatePaths(value, mounts);
  }
  return env;
}

async function envValue(core: CoreV1Api, subject: PodSubject, container: V1Container, variable: V1EnvVar, env: Readonly<Record<string, string>>): Promise<string | undefined> {
  if (variable.valueFrom === undefined) return expandVars(variable.value ?? "", env);
  const from = variable.valueFrom;
  if (from.fieldRef !== undefined) return fieldValue(subject, from.fieldRef.fieldPath);
  if (from.resourceFieldRef !== undefined) return resourceValue(container, from.resourceFieldRef.resource);
  if (from.configMapKeyRef !== undefined) {
    const ref = from.configMapKeyRef;
    const data = await configMapData(core, subject.namespace, ref.name ?? "", ref.optional === true);
    return keyValue(data, ref.key, `configmap ${ref.name ?? ""}`, ref.optional === true);
  }
  if (from.secretKeyRef !== undefined) {
    const ref = from.secretKeyRef;
    const data = await secretData(core, subject.namespace, ref.name ?? "", ref.optional === true);
    return keyValue(data, ref.key, `secret ${ref.name ?? ""}`, ref.optional === true);
  }
  throw new ConfigError(`env ${variable.name}: valueFrom kind not supported by the test bed`);
}

export function expandVars(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) =>
    match === "$$" ? "$" : name !== undefined && env[name] !== undefined ? env[name] : match);
}

function resourceValue(container: V1Container, resource: string): string {
  const [kind, name] = resource.split(".");
  const declared = kind === "limits" ? container.resources?.limits : container.resources?.requests;
  const value = declared?.[name ?? ""];
  if (value !== undefined) return String(value);
  return name === "cpu" ? "4" : name === "memory" ? String(8 * 1024 ** 3) : "0";
}

function keyValue(data: ReadonlyMap<string, Buffer>, key: string, what: string, isOptional: boolean): string | undefined {
  const value = data.get(key);
  if (value !== undefined) return value.toString("utf8");
  if (isOptional) return undefined;
  throw new ConfigError(`couldn't find key ${key} in ${what}`);
}

export function hostPathOf(containerPath: string, mounts: readonly Mount[]): string | undefined {
  for (const mount of mounts) {
    if (containerPath === mount.containerPath) return mount.hostPath;
    if (containerPath.startsWith(`${mount.containerPath}/`)) return join(mount.hostPath, containerPath.slice(mount.containerPath.length + 1));
  }
  return undefined;
}

export function translatePaths(text: string, mounts: readonly Mount[]): string {
  let result = text;
  for (const mount of mounts) {
    const pattern = new RegExp(`(^|[=\\s:,"'(])${escapeRegExp(mount.containerPath)}(?=$|[/\\s,;:"')])`, "g");
    result = result.replace(pattern, (_match, lead: string) => `${lead}${mount.hostPath}`);
  }
  return result;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Unchanged content is left alone and new content replaces the file in one rename, as the kubelet's symlink swap
// does, so a process watching a mounted ConfigMap sees one change per real update.
async function writeFileAt(dir: string, relative: string, content: string | Buffer): Promise<void> {
  const path = join(dir, relative);
  const current = await readFile(path).catch(() => undefined);
  if (current !== undefined && current.equals(typeof content === "string" ? Buffer.from(content) : content)) return;
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, content);
  await rename(temporary, path);
}

async function writeItems(dir: string, data: ReadonlyMap<string, Buffer>, items: readonly { key: string; path: string }[] | undefined): Promise<void> {
  if (items === undefined) {
    for (const [key, value] of data) await writeFileAt(dir, key, value);
    return;
  }
  for (const item of items) {
    const value = data.get(item.key);
    if (value !== undefined) await writeFileAt(dir, item.path, value);
  }
}
