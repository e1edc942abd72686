// Deletion: the finalizer holds the resource until every running agent has stopped its router (the agents stop it when
// they see the deletionTimestamp, and say so with an INIT entry), so the VIP is released before the resource and its
// password access go. The wait is bounded: after FINALIZE_TIMEOUT_MS the finalizer goes anyway, with a Warning Event
// naming the nodes left behind. The agents themselves stay: they serve the other resources.
import type { Logger } from "pino";
import type { AgentPodInfo } from "./plan-inputs.js";
import type { Cluster, HavipRef, UncheckedHavip } from "./k8s/cluster.js";
import { apiStatusCode } from "../k8s/errors.js";
import { passwordAccessName } from "./names.js";
import { readHaVipStatus } from "../api/v1alpha1/index.js";
import type { ReconcileOutcome } from "./queue.js";

export const FINALIZER = "ha-nginx.io/release";
export const FINALIZE_TIMEOUT_MS = 60_000;

export interface FinalizeContext {
  readonly cluster: Pick<Cluster, "deleteRole" | "deleteRoleBinding" | "emit" | "setFinalizers">;
  readonly logger: Logger;
  readonly pods: () => readonly AgentPodInfo[];
  readonly now: number;
}

/** A delete of something already gone has done its job. */
function unlessGone(error: unknown): void {
  if (apiStatusCode(error) !== 404) throw error;
}

export async function finalize(object: UncheckedHavip, context: FinalizeContext): Promise<ReconcileOutcome> {
  const metadata = object.metadata ?? {};
  const finalizers = metadata.finalizers ?? [];
  if (!finalizers.includes(FINALIZER)) return { kind: "done" };
  const ref: HavipRef = { namespace: metadata.namespace ?? "", name: metadata.name ?? "", uid: metadata.uid ?? "", resourceVersion: metadata.resourceVersion ?? "" };
  const key = `${ref.namespace}/${ref.name}`;
  const running = new Set(context.pods().filter((pod) => !pod.isTerminating).map((pod) => pod.node));
  const left = readHaVipStatus(object.status).nodes?.filter((entry) => running.has(entry.node) && (entry.state === "MASTER" || entry.state === "BACKUP")) ?? [];
  const deletedAt = metadata.deletionTimestamp === undefined ? context.now : new Date(metadata.deletionTimestamp).getTime();
  const deadline = deletedAt + FINALIZE_TIMEOUT_MS;
  if (left.length > 0 && context.now < deadline) {
    // The agents' status writes wake this key through the resource watch; the deadline is the only time-based reason.
    return { kind: "done", requeueAt: deadline };
  }
  if (left.length > 0) {
    const names = left.map((entry) => `${entry.node} (${entry.state})`).join(", ");
    await context.cluster
      .emit(ref, { type: "Warning", reason: "ReleaseTimedOut", message: `agents still serving after ${FINALIZE_TIMEOUT_MS / 1000} s, removing the finalizer anyway: ${names}` }, new Date(context.now))
      .catch((error: unknown) => context.logger.warn({ havip: key, err: error }, "could not write an Event"));
  }
  // Deleted explicitly rather than left to the garbage collector, so nothing of ours outlives the resource. The password
  // Role may never have existed (no authentication): its 404 is as good as a delete.
  const passwordAccess = passwordAccessName(ref.name);
  await context.cluster.deleteRoleBinding(ref.namespace, passwordAccess).catch(unlessGone);
  await context.cluster.deleteRole(ref.namespace, passwordAccess).catch(unlessGone);
  // Gone already: someone else removed the last finalizer.
  await context.cluster.setFinalizers(ref, finalizers.filter((finalizer) => finalizer !== FINALIZER)).catch(unlessGone);
  context.logger.info({ havip: key, agentsLeft: left.length }, "released");
  return { kind: "done" };
}
