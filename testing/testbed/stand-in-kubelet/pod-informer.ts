// The kubelet's view of its pods: a watch on every pod, which starts a worker for each pod bound to a running node of
// this kubelet, passes updates to it, and stops it when the pod is gone.
import { makeInformer, type CoreV1Api, type Informer, type KubeConfig, type ObjectCache, type V1Pod } from "@kubernetes/client-node";
import { apiCode, errorText } from "./api-calls.js";
import { minStopAfterPreStopMs } from "./container-lifecycle.js";
import type { NodeState } from "./node-heartbeat.js";
import { PodWorker, type PodWorkerKubelet } from "./pod-worker.js";

export interface PodInformerOptions {
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly nodes: ReadonlyMap<string, NodeState>;
  // What each worker uses of the kubelet, but for forget(), which is the informer's.
  readonly kubelet: Omit<PodWorkerKubelet, "forget">;
  readonly log: (line: string) => void;
}

const resyncMs = 5_000;
const informerRestartMs = 1_000;

export class PodInformer {
  private readonly workersByUid = new Map<string, PodWorker>();
  private informer: (Informer<V1Pod> & ObjectCache<V1Pod>) | undefined;
  private resync: NodeJS.Timeout | undefined;
  private isStopped = false;
  private isResyncing = false;
  private readonly workerKubelet: PodWorkerKubelet;

  constructor(private readonly options: PodInformerOptions) {
    this.workerKubelet = { ...options.kubelet, forget: (worker) => this.forget(worker) };
  }

  workers(): readonly PodWorker[] {
    return [...this.workersByUid.values()];
  }

  async start(): Promise<void> {
    const { kc, core, log } = this.options;
    const informer = makeInformer<V1Pod>(kc, "/api/v1/pods", () => core.listPodForAllNamespaces());
    this.informer = informer;
    informer.on("add", (pod) => this.onPod(pod));
    informer.on("update", (pod) => this.onPod(pod));
    informer.on("delete", (pod) => this.onPodGone(pod));
    // client-node informers stop on any error but 410; the kubelet's watch never gives up, so neither does this one.
    informer.on("error", (error) => {
      if (this.isStopped) return;
      log(`pod watch failed (${errorText(error)}); restarting`);
      setTimeout(() => {
        if (!this.isStopped) informer.start().catch((startError: unknown) => log(`pod watch restart failed: ${errorText(startError)}`));
      }, informerRestartMs);
    });
    await informer.start();
    this.resync = setInterval(() => void this.resyncPods(), resyncMs);
  }

  // A node that starts again picks up the pods bound to it meanwhile.
  replay(): void {
    for (const pod of this.informer?.list() ?? []) this.onPod(pod);
  }

  private onPod(pod: V1Pod): void {
    if (this.isStopped) return;
    const node = this.options.nodes.get(pod.spec?.nodeName ?? "");
    const uid = pod.metadata?.uid;
    if (node === undefined || uid === undefined || !node.isRunning) return;
    const existing = this.workersByUid.get(uid);
    if (existing !== undefined) {
      existing.update(pod);
      return;
    }
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") return;
    if (pod.metadata?.deletionTimestamp !== undefined) {
      void this.options.core.deleteNamespacedPod({ name: pod.metadata.name ?? "", namespace: pod.metadata.namespace ?? "", body: { gracePeriodSeconds: 0, preconditions: { uid } } }).catch(() => undefined);
      return;
    }
    const worker = new PodWorker(pod, this.workerKubelet, node);
    this.workersByUid.set(uid, worker);
    this.options.log(`${worker.key}: starting on ${node.name} (${node.host.netns})`);
    worker.start();
  }

  private onPodGone(pod: V1Pod): void {
    const worker = this.workersByUid.get(pod.metadata?.uid ?? "");
    if (worker === undefined || !worker.node.isRunning) return;
    this.options.log(`${worker.key}: deleted from the API; stopping its processes`);
    void worker.kill(minStopAfterPreStopMs);
  }

  // Catches what a watch gap missed: pods that vanished and bound pods without a worker.
  private async resyncPods(): Promise<void> {
    const informer = this.informer;
    if (informer === undefined || this.isStopped || this.isResyncing) return;
    this.isResyncing = true;
    try {
      await this.resyncOnce(informer);
    } finally {
      this.isResyncing = false;
    }
  }

  private async resyncOnce(informer: Informer<V1Pod> & ObjectCache<V1Pod>): Promise<void> {
    for (const pod of informer.list()) this.onPod(pod);
    await Promise.all([...this.workersByUid.values()].map((worker) => worker.refreshVolumes()));
    for (const worker of [...this.workersByUid.values()]) {
      if (informer.get(worker.name, worker.namespace) !== undefined || !worker.node.isRunning) continue;
      try {
        const pod = await this.options.core.readNamespacedPod({ name: worker.name, namespace: worker.namespace });
        if (pod.metadata?.uid !== worker.uid) void worker.kill(minStopAfterPreStopMs);
      } catch (error) {
        if (apiCode(error) === 404) void worker.kill(minStopAfterPreStopMs);
      }
    }
  }

  private forget(worker: PodWorker): void {
    if (this.workersByUid.get(worker.uid) === worker) this.workersByUid.delete(worker.uid);
  }

  // Stops watching; the workers keep running until their owner kills them.
  async stop(): Promise<void> {
    this.isStopped = true;
    if (this.resync !== undefined) clearInterval(this.resync);
    await this.informer?.stop().catch(() => undefined);
  }
}
