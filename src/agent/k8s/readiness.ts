// nginx readiness on this node, from the pods the API server reports. Pure: the watch feeds it pod lists.

import type { V1Pod } from "@kubernetes/client-node";

export interface Readiness {
  readonly isHealthy: boolean;
  /** Why, for logs and the status entry's reason. */
  readonly detail: string;
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") === true;
}

/**
 * Healthy while at least one of the node's nginx pods is Ready and not terminating. A deletionTimestamp counts as
 * unhealthy at once, although the pod still serves: a planned move (rollout, eviction, drain) hands the VIP to a
 * backup while this nginx still answers, which is what the chart's preStop sleep buys time for.
 */
export function nodeReadiness(pods: readonly V1Pod[]): Readiness {
  const serving = pods.filter((pod) => isReady(pod) && pod.metadata?.deletionTimestamp == null);
  if (serving.length > 0) return { isHealthy: true, detail: `nginx pod ${serving[0]?.metadata?.name ?? "?"} is Ready` };
  if (pods.length === 0) return { isHealthy: false, detail: "no nginx pod on this node" };
  const terminating = pods.filter((pod) => pod.metadata?.deletionTimestamp != null);
  if (terminating.length === pods.length) return { isHealthy: false, detail: `nginx pod ${terminating[0]?.metadata?.name ?? "?"} is terminating` };
  return { isHealthy: false, detail: `no nginx pod on this node is Ready (${pods.length} not Ready)` };
}

/** A cordoned node (kubectl cordon or drain) gives the VIP away as a failed check does, and says why. */
export function cordonReadiness(cordonedNodes: readonly string[], node: string): Readiness | undefined {
  return cordonedNodes.includes(node) ? { isHealthy: false, detail: "this node is cordoned (kubectl cordon or drain); uncordon it to rejoin" } : undefined;
}

/** The node's verdict: every configured check must pass. `undefined` means that check is not configured. */
export function combineHealth(...verdicts: readonly (Readiness | undefined)[]): Readiness {
  const checks = verdicts.filter((check): check is Readiness => check !== undefined);
  const failing = checks.find((check) => !check.isHealthy);
  if (failing !== undefined) return failing;
  return { isHealthy: true, detail: checks.map((check) => check.detail).join("; ") || "no health check configured" };
}
