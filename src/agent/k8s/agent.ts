// `ha-nginx agent` in Kubernetes: one process per node serves every HighAvailabilityVIP placed on it, one router each,
// over shared watches (the resources, the node's pods, its Node); each resource's router, probe, password and status
// entry are its own (resource-agent.ts). The API server is never on a router's path: a failed call keeps the last
// known state and retries.

import type { KubernetesObject, V1Node, V1Pod } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION, validateHaVipSpec } from "../../api/v1alpha1/index.js";
import { isPlacedOn, isSameNodeView, nodeViewOf, type NodeView } from "../../api/v1alpha1/placement.js";
import type { VipBackend } from "../adapters/vips.js";
import { createSharedAdapters, untilSignalled, type SharedAdapters } from "../wiring.js";
import { AgentHttpServer } from "../http-server.js";
import { credentialsFromEnvironment, KubernetesHttpClient, type Query } from "../../k8s/http-client.js";
import { Reflector, listedObjects, type Change } from "../../k8s/reflector.js";
import { AgentApi } from "./client.js";
import { ResourceAgent } from "./resource-agent.js";
import { observedStatusEntry } from "./resolve.js";

export interface KubernetesAgentOptions {
  /** Only the resources of this namespace; undefined: every namespace. */
  readonly namespace: string | undefined;
  readonly node: string;
  /** The node's own address (the pod's status.hostIP): its interface is the default VRRP interface. */
  readonly nodeAddress: string | undefined;
  readonly httpPort: number;
  readonly httpAddresses: readonly string[];
  readonly logLevel: string;
  readonly vipBackend: VipBackend;
}

function keyOf(object: KubernetesObject): string {
  return `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
}

class KubernetesAgent {
  readonly #logger: Logger;
  readonly #startedAt = new Date();
  readonly #shared: SharedAdapters;
  readonly #havips: Reflector<KubernetesObject>;
  /** This node's Node, for its labels and taints. */
  readonly #nodeObject: Reflector<V1Node>;
  /** The node's labels and taints when every resource was last placed. */
  #placedOn: NodeView | undefined;
  #pods: Reflector<V1Pod> | undefined;
  readonly #resources = new Map<string, ResourceAgent>();
  /** Routers stopping, by resource: a resource served again meanwhile waits for its old router. */
  readonly #stopping = new Map<string, Promise<void>>();
  #isStopping = false;

  constructor(
    private readonly client: KubernetesHttpClient,
    private readonly options: KubernetesAgentOptions,
    logger: Logger,
  ) {
    this.#logger = logger;
    this.#shared = createSharedAdapters(options.vipBackend, options.node);
    const { namespace, node } = options;
    const havipsPath = namespace === undefined ? `/apis/${HAVIP_GROUP}/${HAVIP_VERSION}/${HAVIP_PLURAL}` : `/apis/${HAVIP_GROUP}/${HAVIP_VERSION}/namespaces/${namespace}/${HAVIP_PLURAL}`;
    this.#havips = this.#reflector<KubernetesObject>(
      `highavailabilityvips${namespace === undefined ? "" : ` in ${namespace}`}`,
      havipsPath,
      {},
      (changes) => this.#onHavipChanges(changes),
    );
    this.#nodeObject = this.#reflector<V1Node>(`node ${node}`, "/api/v1/nodes", { fieldSelector: `metadata.name=${node}` }, () => this.#onNodeChanges());
  }

  #reflector<T extends KubernetesObject>(what: string, path: string, query: Query, onChange: (changes: readonly Change<T>[]) => void): Reflector<T> {
    return new Reflector<T>(this.client, { what, path, query, list: async () => listedObjects<T>(await this.client.call("GET", path, { query })), onChange }, this.#logger);
  }

  get metricsRegistry() {
    return this.#shared.metrics.registry;
  }

  /** The /state document: the standalone agent's shape, one router per resource served. */
  state(): unknown {
    const parts = [...this.#resources.values()].map((resource) => ({ havip: resource.key, ...resource.state() }));
    return {
      node: this.options.node,
      counters: Object.fromEntries(this.#shared.unclaimed),
      routers: parts.flatMap((part) => (part.router === undefined ? [] : [part.router])),
      problems: parts.flatMap((part) => (part.problem === undefined ? [] : [{ havip: part.havip, problem: part.problem }])),
    };
  }

  /** Ready for the kubelet (and so for the controller's rollout): every resource placed here runs or says why not. */
  isReady(): boolean {
    if (!this.#havips.hasSynced || !this.#nodeObject.hasSynced) return false;
    return [...this.#resources.values()].every((resource) => resource.isSettled);
  }

  start(): void {
    this.#logger.info({ namespace: this.options.namespace ?? "(all)" }, "agent starting: watching HighAvailabilityVIPs");
    this.#nodeObject.start();
    this.#havips.start();
  }

  async stop(): Promise<void> {
    this.#isStopping = true;
    this.#havips.stop();
    this.#nodeObject.stop();
    this.#pods?.stop();
    await Promise.all([...[...this.#resources.values()].map((resource) => resource.stop()), ...this.#stopping.values()]);
  }

  #onHavipChanges(changes: readonly Change<KubernetesObject>[]): void {
    for (const change of changes) this.#sync(change.object, change.isDeleted);
  }

  // The kubelet rewrites its Node's status every few seconds, and placing every resource again validates each spec.
  // Only labels and taints place them, as the controller's node fingerprint also reasons.
  #onNodeChanges(): void {
    const node = this.#nodeObject.items[0];
    const view = node === undefined ? undefined : nodeViewOf(node);
    if (isSameNodeView(view, this.#placedOn)) return;
    this.#placedOn = view;
    for (const object of this.#havips.items) this.#sync(object, false);
  }

  /** Brings one resource's router to the resource: started, updated, or stopped when deleted or no longer placed here. */
  #sync(object: KubernetesObject, isDeleted: boolean): void {
    if (this.#isStopping) return;
    const key = keyOf(object);
    const existing = this.#resources.get(key);
    const isWanted = !isDeleted && object.metadata?.deletionTimestamp == null && this.#isPlaced(object, existing !== undefined);
    if (!isWanted) {
      if (existing === undefined) return;
      this.#resources.delete(key);
      this.#logger.info({ havip: key, isDeleted }, isDeleted || object.metadata?.deletionTimestamp != null ? "the HighAvailabilityVIP is deleted; releasing its VIP" : "the HighAvailabilityVIP no longer selects this node; releasing its VIP");
      const stopped = existing
        .stop()
        .catch((error: unknown) => this.#logger.error({ havip: key, error: error instanceof Error ? error.message : String(error) }, "stopping the router failed"))
        .finally(() => {
          if (this.#stopping.get(key) === stopped) this.#stopping.delete(key);
        });
      this.#stopping.set(key, stopped);
      return;
    }
    const resource = existing ?? this.#serve(object);
    resource.update(object);
  }

  /**
   * An invalid spec cannot say where it runs: a router already running keeps going, and none starts. A resource whose
   * status holds this node's entry ran here before this process (a restart), and a NoSchedule taint does not take it off.
   */
  #isPlaced(object: KubernetesObject, isServing: boolean): boolean {
    const isRunning = isServing || observedStatusEntry(object, this.options.node) !== undefined;
    const node = this.#nodeObject.items[0];
    if (node === undefined) return isServing;
    const validated = validateHaVipSpec((object as { spec?: unknown }).spec);
    if (!validated.ok) return isServing;
    return isPlacedOn(validated.value, nodeViewOf(node), isRunning);
  }

  #serve(object: KubernetesObject): ResourceAgent {
    const namespace = object.metadata?.namespace ?? "";
    const name = object.metadata?.name ?? "";
    const { node, nodeAddress } = this.options;
    const resource = new ResourceAgent(namespace, name, {
      node,
      nodeAddress,
      shared: this.#shared,
      api: new AgentApi(this.client, namespace, name, `ha-nginx-agent-${node}`),
      logger: this.#logger.child({ havip: `${namespace}/${name}` }),
      startedAt: this.#startedAt,
      previousStopped: this.#stopping.get(`${namespace}/${name}`) ?? Promise.resolve(),
      podsOnNode: () => this.#podsOnNode(),
    });
    this.#resources.set(resource.key, resource);
    return resource;
  }

  // Started on first use: an agent whose resources name no nginx pods watches none.
  #podsOnNode(): readonly V1Pod[] | undefined {
    if (this.#pods === undefined) {
      const { namespace, node } = this.options;
      this.#pods = this.#reflector<V1Pod>(
        `pods on ${node}${namespace === undefined ? "" : ` in ${namespace}`}`,
        namespace === undefined ? "/api/v1/pods" : `/api/v1/namespaces/${namespace}/pods`,
        { fieldSelector: `spec.nodeName=${node}` },
        () => {
          for (const resource of this.#resources.values()) resource.podsChanged();
        },
      );
      this.#pods.start();
    }
    return this.#pods.hasSynced ? this.#pods.items : undefined;
  }
}

export async function runKubernetesAgent(options: KubernetesAgentOptions): Promise<void> {
  const logger = pino({ level: options.logLevel, base: { node: options.node } });
  const agent = new KubernetesAgent(new KubernetesHttpClient(credentialsFromEnvironment()), options, logger);
  const http = new AgentHttpServer(
    {
      registry: agent.metricsRegistry,
      state: () => agent.state(),
      isAlive: () => true,
      isReady: () => agent.isReady(),
    },
    options.httpPort,
    options.httpAddresses,
  );
  const port = await http.start();
  logger.info({ httpPort: port, httpAddresses: http.addressesServed }, "serving /metrics, /healthz and /state");
  agent.start();
  await untilSignalled(logger, async () => {
    await agent.stop();
    await http.stop();
  });
  // The API client's keep-alive sockets would hold the process open; nothing is left to do once the VIP is handed over.
  setTimeout(() => process.exit(0), 500).unref();
}
