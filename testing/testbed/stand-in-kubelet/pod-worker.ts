// One pod on one node, from start to removal: its configuration, its init containers in order, then its containers,
// its status in the API, and its termination as the kubelet does it.
import type { CoreV1Api, V1Pod } from "@kubernetes/client-node";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { apiCode, errorText, mergePatch } from "./api-calls.js";
import { ContainerRunner, maxBackoffMs, type ContainerContext, type LaunchSpec } from "./container-lifecycle.js";
import { imageKind, imageNotSupportedReason, oursCommand } from "./image-commands.js";
import { nginxConfig } from "./nginx-config.js";
import type { NodeState } from "./node-heartbeat.js";
import { ConfigError, envFor, expandVars, fillVolume, materializeVolumes, mountsFor, translatePaths, writePodKubeconfig, type PodSubject } from "./pod-config.js";
import { buildPodStatus, OwnedConditions } from "./pod-status.js";
import { rfc3339, sleep } from "./time.js";

// What a pod worker uses of the kubelet that runs it.
export interface PodWorkerKubelet {
  // The kubelet's folder; each pod gets one under its pods/.
  readonly dir: string;
  readonly repoDir: string;
  readonly caFile: string;
  readonly core: CoreV1Api;
  log(line: string): void;
  // The worker is done: its pod is gone from the node.
  forget(worker: PodWorker): void;
}

export interface PodProcess {
  readonly namespace: string;
  readonly pod: string;
  readonly uid: string;
  readonly container: string;
  readonly node: string;
  readonly pid: number;
}

const configRetryMs = 2_000;
const defaultGraceSeconds = 30;

export class PodWorker implements PodSubject {
  pod: V1Pod;
  readonly uid: string;
  readonly key: string;
  readonly dir: string;
  private readonly containers: ContainerRunner[] = [];
  private readonly initContainers: ContainerRunner[] = [];
  private phase = "Pending";
  private reason: string | undefined;
  private message: string | undefined;
  private isInitialized = false;
  private isTerminating = false;
  private isKilled = false;
  private readonly startTime = rfc3339();
  private readonly ownedConditions = new OwnedConditions();
  private lastPushed = "";
  private statusChain: Promise<void> = Promise.resolve();
  private isStatusQueued = false;
  private readonly abort = new AbortController();
  private kubeconfigPath: string | undefined;
  private isPrepared = false;
  private readonly nginxVolumes = new Set<string>();
  private done: Promise<void> = Promise.resolve();

  constructor(pod: V1Pod, private readonly kubelet: PodWorkerKubelet, readonly node: NodeState) {
    this.pod = pod;
    this.uid = pod.metadata?.uid ?? "";
    this.key = `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
    this.dir = join(kubelet.dir, "pods", `${pod.metadata?.namespace ?? ""}_${pod.metadata?.name ?? ""}_${this.uid.slice(0, 8)}`);
    const ctx: ContainerContext = {
      node,
      dir: this.dir,
      repoDir: kubelet.repoDir,
      restartPolicy: pod.spec?.restartPolicy ?? "Always",
      graceSeconds: () => this.graceSeconds(),
      onChange: () => this.queueStatus(),
      log: (line) => kubelet.log(line),
    };
    // A restartable init container is a sidecar: started in order, then kept running, restarted and probed.
    for (const spec of pod.spec?.initContainers ?? []) this.initContainers.push(new ContainerRunner(spec, this.uid, ctx, spec.restartPolicy !== "Always"));
    for (const spec of pod.spec?.containers ?? []) this.containers.push(new ContainerRunner(spec, this.uid, ctx, false));
    this.isInitialized = this.initContainers.length === 0;
  }

  get name(): string {
    return this.pod.metadata?.name ?? "";
  }

  get namespace(): string {
    return this.pod.metadata?.namespace ?? "";
  }

  processes(): PodProcess[] {
    return [...this.initContainers, ...this.containers].flatMap((container) =>
      container.pid === undefined
        ? []
        : [{ namespace: this.namespace, pod: this.name, uid: this.uid, container: container.spec.name, node: this.node.name, pid: container.pid }],
    );
  }

  start(): void {
    this.done = this.run().catch((error: unknown) => this.kubelet.log(`${this.key}: ${errorText(error)}`));
  }

  update(pod: V1Pod): void {
    this.pod = pod;
    // The node lifecycle controller marks pods of an unreachable node not Ready; once this node is back, its own view
    // must be written again even though it did not change here.
    if (this.ownedConditions.hasDrifted(pod.status?.conditions ?? [])) this.lastPushed = "";
    // Readiness gates live in the pod's conditions, which others write.
    this.queueStatus();
    if (pod.metadata?.deletionTimestamp !== undefined && !this.isTerminating) void this.terminate();
  }

  private graceSeconds(): number {
    return this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? defaultGraceSeconds;
  }

  private async run(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.queueStatus();
    if (this.refuseUnsupportedImages()) return;
    const all = [...this.initContainers, ...this.containers];
    let launches: Map<string, LaunchSpec> | undefined;
    while (launches === undefined && !this.abort.signal.aborted) {
      try {
        launches = await this.prepare();
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        for (const container of all) container.setWaiting("CreateContainerConfigError", error.message);
        await sleep(configRetryMs, this.abort.signal);
      }
    }
    if (launches === undefined) return;
    if (!(await this.runInitContainers(launches))) return;
    this.isInitialized = true;
    for (const container of this.containers) {
      const launch = launches.get(container.spec.name);
      if (launch !== undefined && !this.abort.signal.aborted) container.start(launch);
    }
    this.phase = "Running";
    this.queueStatus();
    if (this.pod.spec?.restartPolicy === "Never" || this.pod.spec?.restartPolicy === "OnFailure") {
      await Promise.all(this.containers.map((container) => container.waitDone()));
      if (this.isTerminating || this.abort.signal.aborted) return;
      this.phase = this.containers.every((container) => container.exitCode === 0) ? "Succeeded" : "Failed";
      this.queueStatus();
    }
  }

  // Returns true when some container's image cannot run here: a bare pod fails; a controller's pod stays Pending, like
  // an image that cannot be pulled, so a ReplicaSet does not spin creating replacements.
  private refuseUnsupportedImages(): boolean {
    const unsupported = [...this.initContainers, ...this.containers].filter((container) => imageKind(container.spec.image) === "unsupported");
    if (unsupported.length === 0) return false;
    const message = `${imageNotSupportedReason}: the test bed runs only images whose repository ends in ha-nginx or nginx; `
      + `container ${unsupported.map((container) => `${container.spec.name} (${container.spec.image ?? "no image"})`).join(", ")} cannot run`;
    this.kubelet.log(`${this.key}: ${message}`);
    for (const container of unsupported) container.setWaiting(imageNotSupportedReason, message);
    const hasController = (this.pod.metadata?.ownerReferences ?? []).some((owner) => owner.controller === true);
    if (!hasController) {
      this.phase = "Failed";
      this.reason = imageNotSupportedReason;
    }
    this.message = message;
    this.queueStatus();
    return true;
  }

  // In order, each to completion (retried with back-off) before the next; a sidecar is started and left running.
  // Returns false when the pod ends here: aborted, or failed under restartPolicy Never.
  private async runInitContainers(launches: ReadonlyMap<string, LaunchSpec>): Promise<boolean> {
    for (const init of this.initContainers) {
      if (this.abort.signal.aborted) return false;
      const launch = launches.get(init.spec.name);
      if (launch === undefined) continue;
      if (!init.isInit) {
        init.start(launch);
        continue;
      }
      for (;;) {
        init.start(launch);
        await init.waitDone();
        if (this.abort.signal.aborted) return false;
        if (init.exitCode === 0) break;
        if (this.pod.spec?.restartPolicy === "Never") {
          this.phase = "Failed";
          this.queueStatus();
          return false;
        }
        init.restartCount += 1;
        await sleep(Math.min(maxBackoffMs, 1_000 * init.restartCount), this.abort.signal);
      }
    }
    return true;
  }

  // ConfigMap and Secret volumes follow updates, as the kubelet's periodic sync does. Those mounted into nginx's
  // configuration are rewritten for the pod folder and left alone: nginx would need a reload to notice anyway.
  async refreshVolumes(): Promise<void> {
    if (!this.isPrepared || this.isTerminating) return;
    for (const volume of this.pod.spec?.volumes ?? []) {
      if ((volume.configMap === undefined && volume.secret === undefined) || this.nginxVolumes.has(volume.name)) continue;
      try {
        await fillVolume(this.kubelet.core, this, volume, join(this.dir, "volumes", volume.name));
      } catch (error) {
        this.kubelet.log(`${this.key}: refreshing volume ${volume.name}: ${errorText(error)}`);
      }
    }
  }

  // Volumes, environment, the service account kubeconfig and each container's command line.
  private async prepare(): Promise<Map<string, LaunchSpec>> {
    const { core, repoDir } = this.kubelet;
    for (const container of [...this.initContainers, ...this.containers]) {
      if (imageKind(container.spec.image) !== "nginx") continue;
      for (const mount of container.spec.volumeMounts ?? []) if (mount.mountPath.startsWith("/etc/nginx")) this.nginxVolumes.add(mount.name);
    }
    const volumeDirs = await materializeVolumes(core, this);
    if (this.pod.spec?.automountServiceAccountToken !== false) this.kubeconfigPath = await writePodKubeconfig(core, this.kubelet.caFile, this);
    const launches = new Map<string, LaunchSpec>();
    for (const container of [...this.initContainers, ...this.containers]) {
      const mounts = await mountsFor(container.spec, volumeDirs);
      const env = await envFor(core, this, container.spec, mounts, this.kubeconfigPath);
      const translate = (text: string): string => translatePaths(text, mounts);
      const expand = (text: string): string => translate(expandVars(text, env));
      const kind = imageKind(container.spec.image);
      if (kind === "nginx") {
        const conf = await nginxConfig(this.dir, this.node.name, mounts);
        launches.set(container.spec.name, {
          line: { cmd: "/usr/sbin/nginx", args: ["-e", "stderr", "-p", join(this.dir, "nginx"), "-c", conf] },
          env,
          stopSignal: "SIGQUIT",
          translate,
        });
        continue;
      }
      if (!existsSync(join(repoDir, "dist", "cli.js"))) {
        throw new ConfigError(`${join(repoDir, "dist", "cli.js")} is missing: run npm run build before the test bed`);
      }
      const line = oursCommand(repoDir, container.spec.command?.map(expand), (container.spec.args ?? []).map(expand));
      launches.set(container.spec.name, { line, env, stopSignal: "SIGTERM", translate });
    }
    this.isPrepared = true;
    return launches;
  }

  queueStatus(): void {
    if (this.isStatusQueued || this.isKilled) return;
    this.isStatusQueued = true;
    this.statusChain = this.statusChain.then(async () => {
      this.isStatusQueued = false;
      await this.pushStatus();
    });
  }

  private async pushStatus(): Promise<void> {
    if (this.isKilled) return;
    const status = buildPodStatus({
      pod: this.pod,
      address: this.node.host.address,
      phase: this.phase,
      reason: this.reason,
      message: this.message,
      startTime: this.startTime,
      isInitialized: this.isInitialized,
      isTerminating: this.isTerminating,
      initContainers: this.initContainers,
      containers: this.containers,
    }, this.ownedConditions);
    const text = JSON.stringify(status);
    if (text === this.lastPushed) return;
    try {
      await this.kubelet.core.patchNamespacedPodStatus({ name: this.name, namespace: this.namespace, body: { status } }, mergePatch);
      this.lastPushed = text;
    } catch (error) {
      if (apiCode(error) === 404) return;
      this.kubelet.log(`${this.key}: status patch failed: ${errorText(error)}`);
      await sleep(1_000, this.abort.signal);
      this.queueStatus();
    }
  }

  // The API asked for deletion: preStop, stop signal, grace, SIGKILL, then remove the object as the kubelet does.
  async terminate(): Promise<void> {
    if (this.isTerminating) return;
    this.isTerminating = true;
    const started = Date.now();
    const deadlineMs = started + this.graceSeconds() * 1_000;
    this.abort.abort();
    this.queueStatus();
    await Promise.all([...this.initContainers, ...this.containers].map((container) => container.stop(deadlineMs)));
    await this.done;
    this.kubelet.log(`${this.key}: containers stopped in ${Date.now() - started} ms`);
    this.isKilled = true;
    await this.statusChain;
    this.kubelet.forget(this);
    try {
      await this.kubelet.core.deleteNamespacedPod({ name: this.name, namespace: this.namespace, body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } } });
    } catch (error) {
      if (apiCode(error) !== 404) this.kubelet.log(`${this.key}: final delete failed: ${errorText(error)}`);
    }
  }

  // The object is gone (force-deleted, node removed, kubelet stopping): no hooks, no API writes.
  async kill(graceMs = 0): Promise<void> {
    this.isKilled = true;
    this.isTerminating = true;
    this.abort.abort();
    const deadline = Date.now() + graceMs;
    await Promise.all([...this.initContainers, ...this.containers].map((container) => (graceMs > 0 ? container.stop(deadline) : container.kill())));
    await this.done;
    this.kubelet.forget(this);
  }
}
