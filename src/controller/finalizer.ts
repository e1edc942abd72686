// Deletion: the finalizer holds the resource until every agent pod is gone, because an agent releases the VIP on
// SIGTERM and a resource that vanished first would leave nobody to see the hand-over through. The wait is bounded:
// after FINALIZE_TIMEOUT_MS the finalizer goes anyway, with a Warning Event naming the pods left behind.
import type { Logger } from "pino";
import type { AgentPodInfo } from "./inputs.js";
import type { Cluster, HavipRef } from "./k8s/cluster.js";
import { apiStatusCode } from "../k8s/errors.js";
import { agentObjectName, passwordAccessName } from "./names.js";
import type { ReconcileOutcome } from "./queue.js";
import type { RawHavip } from "./reconcile.js";

export const FINALIZER = "ha-nginx.io/release";
export const FINALIZE_TIMEOUT_MS = 60_000;

export interface FinalizeContext {
  readonly cluster: Pick<Cluster, "deleteDaemonSet" | "deleteRole" | "deleteRoleBinding" | "deleteServiceAccount" | "emit" | "setFinalizers">;
  readonly logger: Logger;
  readonly pods: () => readonly AgentPodInfo[];
  readonly now: number;
}

/** A delete of something already gone has done its job. */
function unlessGone(error: unknown): void {
  if (apiStatusCode(error) !== 404) throw error;
}

export async function finalize(object: RawHavip, context: FinalizeContext): Promise<ReconcileOutcome> {
  const metadata = object.metadata ?? {};
  const finalizers = metadata.finalizers ?? [];
  if (!finalizers.includes(FINALIZER)) return { kind: "done" };
  const ref: HavipRef = { namespace: metadata.namespace ?? "", name: metadata.name ?? "", uid: metadata.uid ?? "", resourceVersion: metadata.resourceVersion ?? "" };
  const key = `${ref.namespace}/${ref.name}`;
  const agents = agentObjectName(ref.name);
  await context.cluster.deleteDaemonSet(ref.namespace, agents).then(
    () => context.logger.info({ havip: key }, "deleted the agent DaemonSet; waiting for its pods to release the VIP"),
    unlessGone,
  );
  const left = context.pods();
  const deletedAt = metadata.deletionTimestamp === undefined ? context.now : new Date(metadata.deletionTimestamp).getTime();
  const deadline = deletedAt + FINALIZE_TIMEOUT_MS;
  if (left.length > 0 && context.now < deadline) {
    // Pod deletions wake this key through the pod watch; the deadline is the only time-based reason to come back.
    return { kind: "done", requeueAt: deadline };
  }
  if (left.length > 0) {
    const names = left.map((pod) => `${pod.name} on ${pod.node}`).join(", ");
    await context.cluster
      .emit(ref, { type: "Warning", reason: "ReleaseTimedOut", message: `agent pods still present after ${FINALIZE_TIMEOUT_MS / 1000} s, removing the finalizer anyway: ${names}` }, new Date(context.now))
      .catch((error: unknown) => context.logger.warn({ havip: key, err: error }, "could not write an Event"));
  }
  // Deleted explicitly rather than left to the garbage collector, so nothing of ours outlives the resource, and only
  // now, because a terminating agent still uses its token for its last status write. The password Role may never
  // have existed (no authentication): its 404 is as good as a delete.
  const passwordAccess = passwordAccessName(ref.name);
  await context.cluster.deleteRoleBinding(ref.namespace, passwordAccess).catch(unlessGone);
  await context.cluster.deleteRole(ref.namespace, passwordAccess).catch(unlessGone);
  await context.cluster.deleteRoleBinding(ref.namespace, agents).catch(unlessGone);
  await context.cluster.deleteServiceAccount(ref.namespace, agents).catch(unlessGone);
  // Gone already: someone else removed the last finalizer.
  await context.cluster.setFinalizers(ref, finalizers.filter((finalizer) => finalizer !== FINALIZER)).catch(unlessGone);
  context.logger.info({ havip: key, podsLeft: left.length }, "released");
  return { kind: "done" };
}
