// Whether a HighAvailabilityVIP runs on a node: the node matches spec.nodes.selector and its taints are tolerated, as
// a DaemonSet pod's would have to be. The node's one agent decides with it which resources it serves, and the
// controller which nodes it expects an agent entry from.

import { matchesSelector } from "./selector.js";
import type { HaVipSpec, Toleration } from "./schema.js";

/** core/v1 Taint, the fields placement reads. */
export interface Taint {
  readonly key: string;
  readonly value?: string;
  readonly effect: string;
}

export interface NodeView {
  readonly labels: Readonly<Record<string, string>>;
  readonly taints: readonly Taint[];
}

/** What placement reads of a core/v1 Node. Its status, which the kubelet rewrites with every heartbeat, is no part of it. */
export function nodeViewOf(node: { readonly metadata?: { readonly labels?: Record<string, string> }; readonly spec?: { readonly taints?: readonly Taint[] } }): NodeView {
  return { labels: node.metadata?.labels ?? {}, taints: node.spec?.taints ?? [] };
}

export function isSameNodeView(a: NodeView | undefined, b: NodeView | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

// A DaemonSet pod tolerates the node lifecycle taints (not-ready, unreachable, unschedulable, the pressure ones) by
// itself; a cordoned or failing node is the health verdict's business, not placement's.
const LIFECYCLE_TAINT_PREFIX = "node.kubernetes.io/";

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** core/v1 toleration matching: an empty effect matches every effect, Exists with no key every key. */
function tolerates(toleration: Toleration, taint: Taint): boolean {
  const effect = text(toleration.effect);
  if (effect !== undefined && effect !== taint.effect) return false;
  const key = text(toleration.key);
  if (text(toleration.operator) === "Exists") return key === undefined || key === taint.key;
  return key === taint.key && (text(toleration.value) ?? "") === (taint.value ?? "");
}

/**
 * As for a pod: a NoSchedule taint keeps a resource from starting on the node, and only a NoExecute one takes a
 * running resource off it, so tainting a node for new workloads does not move its VIPs.
 */
export function isPlacedOn(spec: HaVipSpec, node: NodeView, isRunning = false): boolean {
  if (!matchesSelector(spec.nodes.selector, node.labels)) return false;
  return node.taints.every(
    (taint) =>
      taint.effect === "PreferNoSchedule" ||
      (isRunning && taint.effect === "NoSchedule") ||
      taint.key.startsWith(LIFECYCLE_TAINT_PREFIX) ||
      spec.nodes.tolerations.some((toleration) => tolerates(toleration, taint)),
  );
}
