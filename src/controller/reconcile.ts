// reconcile(key): get → gather → plan → apply the differences → one status patch → events. Level-triggered: it
// reads the world from the watch caches and the resource itself, never from the event that woke it.
import type { KubernetesObject, V1DaemonSet, V1Node, V1Pod } from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { readHaVipStatus, validateHaVip, validateHaVipSpec, validateVipAddressPoolSpec, type HaVipSpec } from "../api/v1alpha1/index.js";
import { decideAdmission, type AddressPool } from "./admission.js";
import { AGENT_LABEL, AGENT_NAME, AGENT_REVISION_ANNOTATION, desiredAgentDaemonSet, nextAgentToReplace, type AgentSettings, type PasswordAccess } from "./agent-objects.js";
import { FINALIZER, finalize } from "./finalizer.js";
import type { AgentPodInfo, HavipInfo, NodeInfo, PeerResource } from "./plan-inputs.js";
import { Cluster, type HavipRef, type UncheckedHavip } from "./k8s/cluster.js";
import { apiStatusCode } from "../k8s/errors.js";
import { EventBudget } from "../k8s/event-budget.js";
import { passwordAccessName } from "./names.js";
import { computeDesired, selectNodes, type PlannedEvent } from "./plan.js";
import type { ReconcileOutcome } from "./queue.js";

/** The work queue key of the agent DaemonSet; a resource key always holds a slash. */
export const AGENTS_KEY = "agents";

/** On the DaemonSet: a hash of what the controller last applied, so an unchanged plan makes no write at all. */
export const APPLIED_HASH_ANNOTATION = "ha-nginx.io/applied-hash";

export interface ClusterView {
  havips(): readonly UncheckedHavip[];
  nodes(): readonly V1Node[];
  daemonSet(namespace: string, name: string): V1DaemonSet | undefined;
  pods(): readonly V1Pod[];
  /** VIPAddressPools, cluster-scoped. */
  pools(): readonly KubernetesObject[];
}

export interface ReconcilerOptions {
  readonly cluster: Cluster;
  readonly view: ClusterView;
  readonly agent: AgentSettings;
  readonly logger: Logger;
  readonly now?: () => number;
}

function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") === true;
}

function isReady(node: V1Node): boolean {
  return node.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") === true;
}

export function nodeInfo(node: V1Node): NodeInfo {
  return {
    name: node.metadata?.name ?? "",
    labels: node.metadata?.labels ?? {},
    taints: node.spec?.taints ?? [],
    isReady: isReady(node),
    isCordoned: node.spec?.unschedulable === true,
    internalAddresses: (node.status?.addresses ?? []).filter((address) => address.type === "InternalIP").map((address) => address.address),
  };
}

function timestampOf(value: Date | string | undefined): string {
  if (value === undefined) return "";
  return value instanceof Date ? value.toISOString() : value;
}

/** The status.nodes keys in stored order, which the guarded removal of entries needs. */
function entriesOf(object: UncheckedHavip): { node: string }[] {
  const nodes = (object.status as { nodes?: unknown } | undefined)?.nodes;
  return Array.isArray(nodes) ? nodes.map((entry: { node?: unknown }) => ({ node: typeof entry.node === "string" ? entry.node : "" })) : [];
}

function refOf(object: UncheckedHavip): HavipRef {
  return {
    namespace: object.metadata?.namespace ?? "",
    name: object.metadata?.name ?? "",
    uid: object.metadata?.uid ?? "",
    resourceVersion: object.metadata?.resourceVersion ?? "",
  };
}

/** A delete of something already gone has done its job. */
function unlessGone(error: unknown): void {
  if (apiStatusCode(error) !== 404) throw error;
}

function hashOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
}

export class Reconciler {
  /**
   * Per resource key, the VRID this controller last wrote into its status, until the watch cache shows it: in a burst
   * of creates the next resource's plan reads the cache, which lags these writes, and would pick the same VRID.
   */
  private readonly writtenVrids = new Map<string, number>();
  /** Per resource key, whether its password access was last applied or deleted. */
  private readonly appliedAccess = new Map<string, "applied" | "none">();
  /** Per resource key: the MASTER change Events it may still record. */
  private readonly masterEventBudgets = new Map<string, EventBudget>();
  /** Per resource key, per node: since when its agent has been seen gone (ms). */
  private readonly goneSince = new Map<string, Map<string, number>>();
  /** Pools (name and resourceVersion) already reported invalid, so a resync does not repeat the warning. */
  private readonly invalidPoolsLogged = new Set<string>();

  constructor(private readonly options: ReconcilerOptions) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  async reconcile(key: string): Promise<ReconcileOutcome> {
    if (key === AGENTS_KEY) return this.reconcileAgents();
    const [namespace = "", name = ""] = key.split("/");
    const { cluster, logger } = this.options;
    let object: UncheckedHavip;
    try {
      object = await cluster.getHavip(namespace, name);
    } catch (error) {
      if (apiStatusCode(error) !== 404) throw error;
      this.goneSince.delete(key);
      this.writtenVrids.delete(key);
      this.masterEventBudgets.delete(key);
      return { kind: "done" };
    }
    if (object.metadata?.deletionTimestamp !== undefined) {
      this.goneSince.delete(key);
      this.appliedAccess.delete(key);
      return finalize(object, { cluster, logger, pods: () => this.agentPods(), now: this.now() });
    }
    let ref = refOf(object);
    const finalizers = object.metadata?.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) {
      const updated = await cluster.setFinalizers(ref, [...finalizers, FINALIZER]);
      ref = refOf(updated);
    }

    const now = this.now();
    const nodes = this.options.view.nodes().map(nodeInfo);
    const agentPods = this.agentPods();
    const goneSince = this.goneSince.get(key) ?? new Map<string, number>();
    const pools = this.addressPools();
    const plan = computeDesired({
      object: this.havipInfo(object),
      others: this.peerResources(key, pools, nodes),
      pools,
      nodes,
      agentPods,
      agentGoneSince: goneSince,
      agent: this.options.agent,
      passwordSecretVersion: await this.passwordSecretVersion(object),
      now,
    });

    const nextGone = new Map<string, number>();
    for (const node of plan.agentsGone) nextGone.set(node, goneSince.get(node) ?? now);
    this.goneSince.set(key, nextGone);

    if (plan.agentObjects !== undefined) await this.applyPasswordAccess(key, plan.agentObjects.passwordAccess);
    if (plan.isStatusChanged) {
      await cluster.applyStatus(ref, plan.status);
      if (plan.status.virtualRouterID !== undefined) this.writtenVrids.set(key, plan.status.virtualRouterID);
    }
    if (plan.staleEntries.length > 0) {
      await cluster.removeStatusEntries(ref, entriesOf(object), plan.staleEntries);
    }
    for (const planned of plan.events) {
      const event = this.withinMasterEventBudget(key, planned, now);
      if (event === undefined) continue;
      await cluster.emit(ref, event, new Date(now)).catch((error: unknown) => {
        // An Event is a courtesy; failing to write one must not fail or repeat the reconcile.
        logger.warn({ havip: key, reason: event.reason, err: error }, "could not write an Event");
      });
    }
    return plan.requeueAt === undefined ? { kind: "done" } : { kind: "done", requeueAt: plan.requeueAt };
  }

  /** Read for every reconcile of a VRRPv2 resource; failures other than NotFound fail the reconcile, which retries. */
  private async passwordSecretVersion(object: UncheckedHavip): Promise<string | undefined> {
    const spec = object.spec as { vrrpVersion?: unknown; authentication?: { passwordSecretRef?: { name?: unknown } } } | undefined;
    const secret = spec?.authentication?.passwordSecretRef?.name;
    if (spec?.vrrpVersion !== 2 || typeof secret !== "string" || secret === "") return undefined;
    return this.options.cluster.secretVersion(object.metadata?.namespace ?? "", secret);
  }

  /** A MASTER that flaps would write an Event per change; past the budget they wait, and the next one counts them. */
  private withinMasterEventBudget(key: string, event: PlannedEvent, now: number): PlannedEvent | undefined {
    if (event.reason !== "MasterChanged" && event.reason !== "MasterLost") return event;
    const budget = this.masterEventBudgets.get(key) ?? new EventBudget();
    this.masterEventBudgets.set(key, budget);
    const { isAdmitted, suppressedBefore } = budget.admit(now);
    if (!isAdmitted) return undefined;
    return suppressedBefore === 0 ? event : { ...event, message: `${event.message}; ${suppressedBefore} earlier MASTER changes not recorded as Events (flapping)` };
  }

  private havipInfo(object: UncheckedHavip): HavipInfo {
    const metadata = object.metadata ?? {};
    return {
      metadata: {
        name: metadata.name ?? "",
        namespace: metadata.namespace ?? "",
        uid: metadata.uid ?? "",
        ...(metadata.generation === undefined ? {} : { generation: metadata.generation }),
        creationTimestamp: timestampOf(metadata.creationTimestamp),
      },
      spec: object.spec,
      status: object.status,
    };
  }

  /**
   * The valid pools. The API server checks a pool against the same rules, so an invalid one means a schema drift; it
   * admits nothing, and the controller says so once per version of it.
   */
  private addressPools(): AddressPool[] {
    return this.options.view.pools().flatMap((item) => {
      const name = item.metadata?.name ?? "";
      const validated = validateVipAddressPoolSpec((item as { spec?: unknown }).spec);
      if (validated.ok) return [{ name, spec: validated.value }];
      const version = `${name}@${item.metadata?.resourceVersion ?? ""}`;
      if (!this.invalidPoolsLogged.has(version)) {
        this.invalidPoolsLogged.add(version);
        this.options.logger.warn({ pool: name, issues: validated.issues }, "VIPAddressPool is invalid and admits nothing; fix its spec");
      }
      return [];
    });
  }

  /** Whether a pool admits a resource where it is placed now (NoSchedule taints included, as for its VRID claim). */
  private isAdmitted(namespace: string, spec: HaVipSpec, pools: readonly AddressPool[], nodes: readonly NodeInfo[]): boolean {
    const everyNode = new Set(nodes.map((node) => node.name));
    return decideAdmission({ namespace, spec, nodes: selectNodes(spec, nodes, everyNode) }, pools).isAdmitted;
  }

  /** The other resources that take part in VRID and address claims: a refused one must not block an admitted one. */
  private peerResources(selfKey: string, pools: readonly AddressPool[], nodes: readonly NodeInfo[]): PeerResource[] {
    return this.options.view.havips().flatMap((item) => {
      const namespace = item.metadata?.namespace ?? "";
      const name = item.metadata?.name ?? "";
      if (`${namespace}/${name}` === selfKey || item.metadata?.deletionTimestamp !== undefined) return [];
      // The spec alone decides whether it takes part; a malformed status entry must not hide its VRID from the others.
      const validated = validateHaVip({ apiVersion: item.apiVersion, kind: item.kind, metadata: { name, namespace }, spec: item.spec });
      if (!validated.ok || !this.isAdmitted(namespace, validated.value.spec, pools, nodes)) return [];
      return [{
        namespace,
        name,
        creationTimestamp: timestampOf(item.metadata?.creationTimestamp),
        spec: validated.value.spec,
        statusVirtualRouterID: this.vridOf(`${namespace}/${name}`, readHaVipStatus(item.status).virtualRouterID),
      }];
    });
  }

  /** The VRID in `key`'s status: the one this controller wrote, until the cache has caught up with it. */
  private vridOf(key: string, cached: number | undefined): number | undefined {
    const written = this.writtenVrids.get(key);
    if (written === undefined || written === cached) {
      this.writtenVrids.delete(key);
      return cached;
    }
    return written;
  }

  private agentPods(): AgentPodInfo[] {
    return this.agentPodObjects().flatMap((pod) => {
      const node = pod.spec?.nodeName;
      if (node === undefined) return [];
      return [{ name: pod.metadata?.name ?? "", node, isTerminating: pod.metadata?.deletionTimestamp !== undefined }];
    });
  }

  private agentPodObjects(): V1Pod[] {
    const { namespace } = this.options.agent;
    return this.options.view.pods().filter((pod) => pod.metadata?.namespace === namespace && pod.metadata.labels?.[AGENT_LABEL] === AGENT_NAME);
  }

  /** The password Role and RoleBinding: applied every time (nothing watches them, and one deleted by hand must come
   * back), deleted once when the resource has none, not on every reconcile. */
  private async applyPasswordAccess(key: string, access: PasswordAccess | undefined): Promise<void> {
    const { cluster } = this.options;
    const [namespace = "", name = ""] = key.split("/");
    if (access !== undefined) {
      // The Role first: binding a Role that does not exist yet fails the API server's escalation check.
      await cluster.applyRole(access.role);
      await cluster.applyRoleBinding(access.roleBinding);
    } else if (this.appliedAccess.get(key) !== "none") {
      const accessName = passwordAccessName(name);
      await cluster.deleteRoleBinding(namespace, accessName).catch(unlessGone);
      await cluster.deleteRole(namespace, accessName).catch(unlessGone);
    }
    this.appliedAccess.set(key, access === undefined ? "none" : "applied");
  }

  /** The one agent DaemonSet: placed on the union of every resource's nodes, gone when no resource is left. */
  private async reconcileAgents(): Promise<ReconcileOutcome> {
    const { cluster, logger, view, agent } = this.options;
    // Only admitted resources place agents: a refused one must not put privileged pods on the nodes it selects.
    const pools = this.addressPools();
    const nodes = view.nodes().map(nodeInfo);
    const specs = view.havips().flatMap((item) => {
      const validated = validateHaVipSpec(item.spec);
      return validated.ok && this.isAdmitted(item.metadata?.namespace ?? "", validated.value, pools, nodes) ? [validated.value] : [];
    });
    const existing = view.daemonSet(agent.namespace, AGENT_NAME);
    if (specs.length === 0) {
      if (existing !== undefined) {
        await cluster.deleteDaemonSet(agent.namespace, AGENT_NAME).catch(unlessGone);
        logger.info({ daemonSet: AGENT_NAME }, "no HighAvailabilityVIP left: deleted the agent DaemonSet");
      }
      return { kind: "done" };
    }
    const daemonSet = desiredAgentDaemonSet(specs, agent);
    const hash = hashOf(daemonSet);
    if (existing?.metadata?.annotations?.[APPLIED_HASH_ANNOTATION] !== hash) {
      await cluster.applyDaemonSet({ ...daemonSet, metadata: { ...daemonSet.metadata, annotations: { [APPLIED_HASH_ANNOTATION]: hash } } });
      logger.info({ daemonSet: AGENT_NAME, resources: specs.length, hash }, "applied the agent DaemonSet");
    }
    const revision = daemonSet.spec?.template.metadata?.annotations?.[AGENT_REVISION_ANNOTATION] ?? "";
    const pods = this.agentPodObjects().map((pod) => ({
      name: pod.metadata?.name ?? "",
      node: pod.spec?.nodeName,
      revision: pod.metadata?.annotations?.[AGENT_REVISION_ANNOTATION],
      isReady: isPodReady(pod),
      isTerminating: pod.metadata?.deletionTimestamp !== undefined,
    }));
    const next = nextAgentToReplace(pods, revision, existing?.status?.desiredNumberScheduled ?? pods.length);
    if (next !== undefined) {
      await cluster.deletePod(agent.namespace, next.name).catch(unlessGone);
      logger.info({ pod: next.name, node: next.node }, "replacing an agent that runs an older revision");
    } else if (pods.some((pod) => pod.revision !== revision)) {
      // Said at every look (pod changes, the resync), so a rollout held up by a node that never gets a Ready agent shows.
      const waitingOn = pods.filter((pod) => !pod.isReady || pod.isTerminating).map((pod) => `${pod.name} on ${pod.node ?? "?"}`);
      logger.info({ outdated: pods.filter((pod) => pod.revision !== revision).length, waitingOn }, "agent replacement waits until every node has a Ready agent");
    }
    return { kind: "done" };
  }
}
