// The controller process: startup checks, watches feeding the work queue, leader election, /metrics, /healthz
// and /readyz. Only the leader reconciles; standbys keep their caches warm so a takeover starts at once.
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubernetesObject, type V1DaemonSet, type V1Node, type V1Pod } from "@kubernetes/client-node";
import { createServer, type Server } from "node:http";
import { hostname } from "node:os";
import { pino, type Logger } from "pino";
import { HAVIP_GROUP, HAVIP_KIND, HAVIP_PLURAL, HAVIP_VERSION } from "../api/v1alpha1/index.js";
import { AGENT_LABEL, FIELD_MANAGER, type AgentResources, type AgentSettings } from "./agent-objects.js";
import { Cluster } from "./k8s/cluster.js";
import { describeApiError } from "./k8s/errors.js";
import { ResilientWatch } from "./k8s/informer.js";
import { LeaderElector } from "./leader.js";
import { createControllerMetrics } from "./metrics.js";
import { agentObjectName } from "./names.js";
import { WorkQueue } from "./queue.js";
import { Reconciler, nodeInfo } from "./reconcile.js";
import { checkCluster, loadKubeConfig } from "./startup.js";
import { makeBoundedApiClient } from "./k8s/bounded-client.js";

/** Every resource is looked at again this often, whatever the watches said: a missed event heals here. */
export const RESYNC_MS = 60_000;
const NODE_LIST_TIMEOUT_MS = 30_000;

export interface ControllerOptions {
  readonly namespace: string;
  readonly metricsPort: number;
  readonly isLeaderElect: boolean;
  readonly agentImage: string;
  readonly agentResources: AgentResources;
  readonly agentHttpAddress: string | undefined;
  readonly logLevel: string;
  readonly identity?: string;
}

export interface RunningController {
  readonly logger: Logger;
  stop(): Promise<void>;
}

const keyOf = (object: KubernetesObject): string => `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;

function nodeFingerprint(node: V1Node): string {
  const info = nodeInfo(node);
  return JSON.stringify([info.labels, info.isReady, info.isCordoned, info.internalAddresses]);
}

export async function runController(options: ControllerOptions): Promise<RunningController> {
  const identity = options.identity ?? `${hostname()}-${process.pid}`;
  const logger = pino({ level: options.logLevel, base: { component: "controller", identity } });
  const kubeConfig = loadKubeConfig();
  await checkCluster(kubeConfig, options.namespace, options.isLeaderElect);

  const metrics = createControllerMetrics();
  const cluster = new Cluster(kubeConfig, identity);
  const custom = makeBoundedApiClient(kubeConfig, CustomObjectsApi);
  const core = makeBoundedApiClient(kubeConfig, CoreV1Api);
  // Every Node, in full: on a large cluster that list alone may take longer than the bound for small calls.
  const nodeLister = makeBoundedApiClient(kubeConfig, CoreV1Api, NODE_LIST_TIMEOUT_MS);
  const apps = makeBoundedApiClient(kubeConfig, AppsV1Api);
  const agent: AgentSettings = { image: options.agentImage, logLevel: options.logLevel, resources: options.agentResources, httpAddress: options.agentHttpAddress };

  // The watches start before the queue exists (the queue's reconciler reads their caches); keys wait in it anyway.
  const queueRef: { current?: WorkQueue } = {};
  const enqueue = (key: string): void => queueRef.current?.add(key);
  const havipGenerations = new Map<string, number | undefined>();
  const nodeFingerprints = new Map<string, string>();
  const onWatchError = (resource: string) => (error: unknown): void => {
    metrics.watchErrors.inc({ resource });
    logger.warn({ resource, err: describeApiError(error) }, "watch failed; restarting it");
  };

  const havips: ResilientWatch<KubernetesObject> = new ResilientWatch<KubernetesObject>(kubeConfig, {
    path: `/apis/${HAVIP_GROUP}/${HAVIP_VERSION}/${HAVIP_PLURAL}`,
    list: () => custom.listClusterCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL }) as never,
    onChange: (object, isDeleted) => {
      const key = keyOf(object);
      const generation = object.metadata?.generation;
      // VRIDs and addresses are shared: a spec that appears, changes or goes may change another resource's plan.
      const isSpecChange = isDeleted || havipGenerations.get(key) !== generation || object.metadata?.deletionTimestamp !== undefined;
      if (isDeleted) havipGenerations.delete(key);
      else havipGenerations.set(key, generation);
      if (isSpecChange) for (const other of havips.list()) enqueue(keyOf(other));
      enqueue(key);
    },
    onError: onWatchError("highavailabilityvips"),
  });
  const nodes = new ResilientWatch<V1Node>(kubeConfig, {
    path: "/api/v1/nodes",
    list: () => nodeLister.listNode(),
    onChange: (node, isDeleted) => {
      const name = node.metadata?.name ?? "";
      const fingerprint = isDeleted ? "" : nodeFingerprint(node);
      // Kubelets rewrite their Node every few seconds; only labels, readiness and addresses matter here.
      if (nodeFingerprints.get(name) === fingerprint) return;
      if (isDeleted) nodeFingerprints.delete(name);
      else nodeFingerprints.set(name, fingerprint);
      for (const havip of havips.list()) enqueue(keyOf(havip));
    },
    onError: onWatchError("nodes"),
  });
  const managedBy = `app.kubernetes.io/managed-by=${FIELD_MANAGER}`;
  const daemonSets = new ResilientWatch<V1DaemonSet>(kubeConfig, {
    path: "/apis/apps/v1/daemonsets",
    list: () => apps.listDaemonSetForAllNamespaces({ labelSelector: managedBy }),
    labelSelector: managedBy,
    onChange: (daemonSet) => {
      const owner = daemonSet.metadata?.ownerReferences?.find((reference) => reference.kind === HAVIP_KIND && reference.controller === true);
      if (owner !== undefined) enqueue(`${daemonSet.metadata?.namespace ?? ""}/${owner.name}`);
    },
    onError: onWatchError("daemonsets"),
  });
  const agentPods = `app.kubernetes.io/name=ha-nginx-agent`;
  const pods = new ResilientWatch<V1Pod>(kubeConfig, {
    path: "/api/v1/pods",
    list: () => core.listPodForAllNamespaces({ labelSelector: agentPods }),
    labelSelector: agentPods,
    onChange: (pod) => {
      const label = pod.metadata?.labels?.[AGENT_LABEL];
      const namespace = pod.metadata?.namespace;
      for (const havip of havips.list()) {
        if (havip.metadata?.namespace === namespace && agentObjectName(havip.metadata?.name ?? "") === label) enqueue(keyOf(havip));
      }
    },
    onError: onWatchError("pods"),
  });
  const watches = [havips, nodes, daemonSets, pods];

  const reconciler = new Reconciler({
    cluster,
    agent,
    logger,
    view: {
      havips: () => havips.list(),
      nodes: () => nodes.list(),
      daemonSet: (namespace, name) => daemonSets.get(name, namespace),
      pods: () => pods.list(),
    },
  });
  const workQueue = new WorkQueue({
    process: async (key) => {
      const stopTimer = metrics.reconcileSeconds.startTimer();
      try {
        const outcome = await reconciler.reconcile(key);
        metrics.reconciles.inc({ result: "success" });
        return outcome;
      } catch (error) {
        metrics.reconciles.inc({ result: "error" });
        metrics.reconcileErrors.inc();
        throw error;
      } finally {
        stopTimer();
      }
    },
    onError: (key, error, retryInMs) => logger.warn({ havip: key, err: describeApiError(error), retryInMs }, "reconcile failed; retrying"),
    onDepth: (depth) => metrics.queueDepth.set(depth),
  });
  queueRef.current = workQueue;

  let isStopping = false;
  let resyncTimer: NodeJS.Timeout | undefined;
  const startWorking = (): void => {
    metrics.isLeader.set(1);
    clearInterval(resyncTimer);
    workQueue.start();
    for (const havip of havips.list()) workQueue.add(keyOf(havip));
    resyncTimer = setInterval(() => {
      for (const havip of havips.list()) workQueue.add(keyOf(havip));
    }, RESYNC_MS);
  };

  for (const watch of watches) await watch.start();
  logger.info({ havips: havips.list().length, nodes: nodes.list().length }, "caches synced");

  const server = await listen(options.metricsPort, async (path) => {
    if (path === "/metrics") return { status: 200, type: metrics.registry.contentType, body: await metrics.registry.metrics() };
    if (path === "/healthz") return { status: 200, type: "text/plain", body: "ok\n" };
    if (path === "/readyz") {
      const isReady = watches.every((watch) => watch.isSynced);
      return { status: isReady ? 200 : 503, type: "text/plain", body: isReady ? "ok\n" : "caches not synced\n" };
    }
    return { status: 404, type: "text/plain", body: "not found\n" };
  });

  let elector: LeaderElector | undefined;
  const stop = async (): Promise<void> => {
    if (isStopping) return;
    isStopping = true;
    clearInterval(resyncTimer);
    workQueue.stop();
    metrics.isLeader.set(0);
    await elector?.stop();
    await Promise.all(watches.map((watch) => watch.stop().catch(() => undefined)));
    await new Promise<void>((resolve) => server.close(() => resolve()));
    logger.info("stopped");
  };

  if (options.isLeaderElect) {
    elector = new LeaderElector({
      kubeConfig,
      namespace: options.namespace,
      identity,
      logger,
      onStartedLeading: startWorking,
      onStoppedLeading: () => {
        // Stop writing at once; the caches stay warm for when this replica wins the Lease again.
        metrics.isLeader.set(0);
        clearInterval(resyncTimer);
        workQueue.stop();
      },
    });
    elector.start();
  } else {
    startWorking();
  }
  logger.info({ metricsPort: options.metricsPort, leaderElect: options.isLeaderElect, namespace: options.namespace }, "controller started");
  return { logger, stop };
}

interface Reply {
  readonly status: number;
  readonly type: string;
  readonly body: string;
}

function listen(port: number, handle: (path: string) => Promise<Reply>): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0] ?? "/";
    handle(path)
      .then((reply) => response.writeHead(reply.status, { "Content-Type": reply.type }).end(reply.body))
      .catch(() => response.writeHead(500).end());
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, () => resolve(server));
  });
}
