// This node's entry in status.nodes, and the server-side apply document that carries it. Pure.

import { HAVIP_API_VERSION, HAVIP_KIND, type NodeState, type NodeStatusEntry } from "../../api/v1alpha1/index.js";
import type { StateKind, TransitionReason } from "../../vrrp/machine.js";
import type { AgentSnapshot } from "../runtime.js";

const stateNames: Readonly<Record<StateKind, NodeState>> = {
  Initialize: "INIT",
  Backup: "BACKUP",
  Master: "MASTER",
  Fault: "FAULT",
};

const reasonTexts: Readonly<Record<TransitionReason, string>> = {
  started: "started",
  "address-owner": "address owner (priority 255)",
  "master-down-timer-expired": "master down timer expired",
  "priority-zero-received": "the master handed over (priority 0)",
  nominated: "the leaving master named this node its successor (hand-over extension)",
  unopposed: "no master, and every peer's candidacy outranked (hand-over extension)",
  preempted: "preempted a master with a lower priority",
  "higher-priority-advert": "a router with a higher priority is master",
  "health-failed": "health check failed",
  "health-recovered": "health check recovered",
  "link-down": "interface down",
  "link-up": "interface up",
  "config-changed": "configuration changed",
  "resumed-after-freeze": "resumed after a freeze longer than the backups wait; a backup has taken over",
  shutdown: "agent stopping",
};

export function describeReason(reason: TransitionReason): string {
  return reasonTexts[reason];
}

export interface EntryContext {
  readonly node: string;
  /** The node's primary address: its advert source. */
  readonly address: string;
  /** Why the node is (un)healthy, appended to the reason while it is not healthy. */
  readonly healthDetail: string;
  /** Before the first transition: when the agent started. */
  readonly startedAt: Date;
}

/** Seconds precision, as metav1.Time serialises. */
function rfc3339(at: Date): string {
  return `${at.toISOString().slice(0, 19)}Z`;
}

export function buildStatusEntry(snapshot: AgentSnapshot, context: EntryContext): NodeStatusEntry {
  const transition = snapshot.lastTransition;
  const base = transition === undefined ? "starting" : describeReason(transition.reason);
  const reason = snapshot.isHealthy ? base : `${base}; unhealthy: ${context.healthDetail}`;
  return {
    node: context.node,
    state: stateNames[snapshot.state],
    priority: snapshot.priority,
    effectivePriority: snapshot.effectivePriority,
    healthy: snapshot.isHealthy,
    reason: reason.slice(0, 1024),
    address: context.address,
    lastTransitionTime: rfc3339(transition?.at ?? context.startedAt),
  };
}

/** The apply configuration for the status subresource: only this node's list entry, so the field manager owns it. */
export function statusApplyBody(namespace: string, name: string, entry: NodeStatusEntry): Readonly<Record<string, unknown>> {
  return { apiVersion: HAVIP_API_VERSION, kind: HAVIP_KIND, metadata: { name, namespace }, status: { nodes: [entry] } };
}

/** Field by field: the API server returns an entry's keys in its own order. */
export function isSameEntry(a: NodeStatusEntry | undefined, b: NodeStatusEntry): boolean {
  const canonical = (entry: NodeStatusEntry): string => JSON.stringify(Object.entries(entry).sort(([x], [y]) => x.localeCompare(y)));
  return a !== undefined && canonical(a) === canonical(b);
}
