// The controller process: startup checks, watches feeding the work queue, leader election, /metrics, /healthz
// and /readyz. Only the leader reconciles; standbys keep their caches warm so a takeover starts at once.
import { AppsV1Api, CoreV1Api, CustomObjectsApi, Watch, type KubernetesObject, type V1DaemonSet, type V1Node, type V1Pod } from "@kubernetes/client-node";
import { createServer, type Server } from "node:http";
import { hostname } from "node:os";
import { pino, type Logger } from "pino";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION, POOL_PLURAL } from "../api/v1alpha1/index.js";
import { makeBoundedApiClient } from "../k8s/bounded-client.js";
import { describeApiError } from "../k8s/errors.js";
import { Reflector, listedObjects, type ReflectorOptions, type ReflectorTiming } from "../k8s/reflector.js";
import { AGENT_LABEL, AGENT_NAME, type AgentResources, type AgentSettings } from "./agent-objects.js";
import { Cluster, type UncheckedHavip } from "./k8s/cluster.js";
import { LeaderElector } from "./leader.js";
import { createControllerMetrics } from "./metrics.js";
import { WorkQueue } from "./queue.js";
import { AGENTS_KEY, Reconciler, nodeInfo } from "./reconcile.js";
import { checkCluster, loadKubeConfig } from "./startup.js";

/** Every resource is looked at again this often, whatever the watches said: a missed event heals here. */
export const RESYNC_MS = 60_000;
const NODE_LIST_TIMEOUT_MS = 30_000;
// A failed relist costs one refused connection; a longer cap than 2 s would only delay the catch-up after the API
// server returns, and there is one controller, not one agent per node.
const WATCH_TIMING: ReflectorTiming = { initialBackoffMs: 500, maxBackoffMs: 2_000, watchSeconds: 240 };

export interface ControllerOptions {
  readonly namespace: string;
  readonly metricsPort: number;
  readonly isLeaderElect: boolean;
  readonly agentImage: string;
  readonly agentResources: AgentResources;
  readonly agentHttpPort: number;
  readonly agentServiceAccount: string;
  readonly agentHttpAddress: string | undefined;
  readonly agentScrapeAnnotations: boolean;
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
  return JSON.stringify([info.labels, info.taints, info.isReady, info.isCordoned, info.internalAddresses]);
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
  const agent: AgentSettings = {
    image: options.agentImage,
    logLevel: options.logLevel,
    resources: options.agentResources,
    namespace: options.namespace,
    serviceAccount: options.agentServiceAccount,
    httpPort: options.agentHttpPort,
    httpAddress: options.agentHttpAddress,
    scrapeAnnotations: options.agentScrapeAnnotations,
  };

  // The watches start before the queue exists (the queue's reconciler reads their caches); keys wait in it anyway.
  const queueRef: { current?: WorkQueue } = {};
  const enqueue = (key: string): void => queueRef.current?.add(key);
  const havipGenerations = new Map<string, number | undefined>();
  const nodeFingerprints = new Map<string, string>();
  const watcher = new Watch(kubeConfig);
  const makeReflector = <T extends KubernetesObject>(options: Omit<ReflectorOptions<T>, "onError">): Reflector<T> =>
    new Reflector<T>(watcher, { ...options, onError: () => metrics.watchErrors.inc({ resource: options.what }) }, logger, WATCH_TIMING);

  const havips: Reflector<UncheckedHavip> = makeReflector<UncheckedHavip>({
    what: HAVIP_PLURAL,
    path: `/apis/${HAVIP_GROUP}/${HAVIP_VERSION}/${HAVIP_PLURAL}`,
    query: {},
    list: async () => listedObjects(await custom.listClusterCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL })),
    onChange: (changes) => {
      let isSpecChange = false;
      for (const { object, isDeleted } of changes) {
        const key = keyOf(object);
        const generation = object.metadata?.generation;
        isSpecChange ||= isDeleted || havipGenerations.get(key) !== generation || object.metadata?.deletionTimestamp !== undefined;
        if (isDeleted) havipGenerations.delete(key);
        else havipGenerations.set(key, generation);
        enqueue(key);
      }
      // VRIDs and addresses are shared: a spec that appears, changes or goes may change another resource's plan, and
      // the agent DaemonSet's placement.
      if (isSpecChange) {
        for (const other of havips.items) enqueue(keyOf(other));
        enqueue(AGENTS_KEY);
      }
    },
  });
  const nodes = makeReflector<V1Node>({
    what: "nodes",
    path: "/api/v1/nodes",
    query: {},
    list: async () => listedObjects(await nodeLister.listNode()),
    onChange: (changes) => {
      let isRelevant = false;
      for (const { object: node, isDeleted } of changes) {
        const name = node.metadata?.name ?? "";
        const fingerprint = isDeleted ? "" : nodeFingerprint(node);
        // Kubelets rewrite their Node every few seconds; only labels, readiness and addresses matter here.
        if (nodeFingerprints.get(name) === fingerprint) continue;
        if (isDeleted) nodeFingerprints.delete(name);
        else nodeFingerprints.set(name, fingerprint);
        isRelevant = true;
      }
      if (!isRelevant) return;
      for (const havip of havips.items) enqueue(keyOf(havip));
      // A pool's nodes.selector reads node labels: a relabelled node may admit or refuse a resource, and so place or
      // remove agents.
      enqueue(AGENTS_KEY);
    },
  });
  // A pool created, changed or deleted may admit or refuse any resource, and so change where agents run.
  const pools = makeReflector<KubernetesObject>({
    what: POOL_PLURAL,
    path: `/apis/${HAVIP_GROUP}/${HAVIP_VERSION}/${POOL_PLURAL}`,
    query: {},
    list: async () => listedObjects(await custom.listClusterCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: POOL_PLURAL })),
    onChange: () => {
      for (const havip of havips.items) enqueue(keyOf(havip));
      enqueue(AGENTS_KEY);
    },
  });
  const { namespace } = options;
  const agentLabel = `${AGENT_LABEL}=${AGENT_NAME}`;
  const daemonSets = makeReflector<V1DaemonSet>({
    what: "daemonsets",
    path: `/apis/apps/v1/namespaces/${namespace}/daemonsets`,
    query: { labelSelector: agentLabel },
    list: async () => listedObjects(await apps.listNamespacedDaemonSet({ namespace, labelSelector: agentLabel })),
    onChange: () => enqueue(AGENTS_KEY),
  });
  // Every resource's agent on a node is that node's one agent pod: its coming and going matters to all of them.
  const pods = makeReflector<V1Pod>({
    what: "agent pods",
    path: `/api/v1/namespaces/${namespace}/pods`,
    query: { labelSelector: agentLabel },
    list: async () => listedObjects(await core.listNamespacedPod({ namespace, labelSelector: agentLabel })),
    onChange: () => {
      enqueue(AGENTS_KEY);
      for (const havip of havips.items) enqueue(keyOf(havip));
    },
  });
  const reflectors = [havips, nodes, pools, daemonSets, pods];

  const reconciler = new Reconciler({
    cluster,
    agent,
    logger,
    view: {
      havips: () => havips.items,
      nodes: () => nodes.items,
      daemonSet: (namespace, name) => daemonSets.get(name, namespace),
      pods: () => pods.items,
      pools: () => pools.items,
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
    const addAll = (): void => {
      workQueue.add(AGENTS_KEY);
      for (const havip of havips.items) workQueue.add(keyOf(havip));
    };
    addAll();
    resyncTimer = setInterval(addAll, RESYNC_MS);
  };

  // Work starts on full caches: a reconcile over a half-listed cluster would plan for nodes and pods that only seem absent.
  for (const reflector of reflectors) reflector.start();
  await Promise.all(reflectors.map((reflector) => reflector.untilSynced()));
  logger.info({ havips: havips.items.length, nodes: nodes.items.length, pools: pools.items.length }, "caches synced");

  const server = await listen(options.metricsPort, async (path) => {
    if (path === "/metrics") return { status: 200, type: metrics.registry.contentType, body: await metrics.registry.metrics() };
    if (path === "/healthz") return { status: 200, type: "text/plain", body: "ok\n" };
    if (path === "/readyz") {
      const isReady = reflectors.every((reflector) => reflector.hasSynced);
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
    for (const reflector of reflectors) reflector.stop();
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
