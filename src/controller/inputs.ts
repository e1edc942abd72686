import type { HaVipSpec } from "../api/v1alpha1/index.js";
import type { Taint } from "../api/v1alpha1/placement.js";

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
