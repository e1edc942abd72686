// What computeDesired (plan.ts) reads: plain data the reconciler distils from the API server and its watch caches,
// so the planner stays pure and never sees a client-node type. The resource itself goes through three shapes:
// UncheckedHavip (k8s/cluster.ts, as the API server returns it) → HavipInfo (here, plain metadata, still unchecked) →
// HighAvailabilityVIP (src/api, validated by the planner).
import type { HaVipSpec } from "../api/v1alpha1/index.js";
import type { Taint } from "../api/v1alpha1/placement.js";
import type { AddressPool } from "./admission.js";
import type { AgentSettings } from "./agent-objects.js";

export interface PlanInputs {
  /** The resource to plan for; the planner validates its spec and status. */
  readonly object: HavipInfo;
  /** Every other HighAvailabilityVIP in the cluster whose spec is valid and that a pool admits. */
  readonly others: readonly PeerResource[];
  /** Every VIPAddressPool whose spec is valid: a resource runs only if one of them admits it. */
  readonly pools: readonly AddressPool[];
  readonly nodes: readonly NodeInfo[];
  /** Pods of the agent DaemonSet, one per node. */
  readonly agentPods: readonly AgentPodInfo[];
  /** Since when (ms) the controller has seen each node's agent gone; kept by the caller between reconciles. */
  readonly agentGoneSince: ReadonlyMap<string, number>;
  readonly agent: AgentSettings;
  /** The resourceVersion of the password Secret the spec names, as just read; undefined without one or when it is missing. */
  readonly passwordSecretVersion: string | undefined;
  /** Wall clock, ms since the epoch. */
  readonly now: number;
}

/** What the planner needs to know about the resource it plans: plain metadata; spec and status as read, unchecked. */
export interface HavipInfo {
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly generation?: number;
    readonly creationTimestamp: string;
  };
  readonly spec?: unknown;
  readonly status?: unknown;
}

/** What the planner needs to know about a Node. */
export interface NodeInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly taints: readonly Taint[];
  readonly isReady: boolean;
  /** spec.unschedulable: kubectl cordon or drain. */
  readonly isCordoned: boolean;
  /** InternalIP addresses, as the kubelet reports them. */
  readonly internalAddresses: readonly string[];
}

/** A pod of the agent DaemonSet, one per node, serving every resource placed on that node. */
export interface AgentPodInfo {
  readonly name: string;
  readonly node: string;
  readonly isTerminating: boolean;
}

/** Another valid HighAvailabilityVIP in the cluster, as seen for VRID and address conflicts. */
export interface PeerResource {
  readonly namespace: string;
  readonly name: string;
  /** RFC 3339; the older resource keeps a contested allocated VRID. */
  readonly creationTimestamp: string;
  readonly spec: HaVipSpec;
  readonly statusVirtualRouterID: number | undefined;
}

/** "namespace/name", the way Events and conditions name another resource. */
export function keyOf(resource: { readonly namespace: string; readonly name: string }): string {
  return `${resource.namespace}/${resource.name}`;
}
