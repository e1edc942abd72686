// The controller's writes and reads that are not watches, on @kubernetes/client-node 1.4.0. Each method makes one
// call and lets ApiException through; deciding what a 404 or a 409 means is the reconciler's job.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  V1MicroTime,
  type KubeConfig,
  type KubernetesObject,
  type V1DaemonSet,
  type V1Role,
  type V1RoleBinding,
} from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { HAVIP_API_VERSION, HAVIP_GROUP, HAVIP_KIND, HAVIP_PLURAL, HAVIP_VERSION } from "../../api/v1alpha1/index.js";
import { FIELD_MANAGER } from "../agent-objects.js";
import type { ControllerStatus, PlannedEvent } from "../plan.js";
import { makeBoundedApiClient } from "../../k8s/bounded-client.js";
import { apiStatusCode } from "../../k8s/errors.js";

const serverSideApply = setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply);
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const jsonPatch = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);

/** A HighAvailabilityVIP as the API server returns it: Kubernetes metadata; spec and status not validated yet. */
export interface UncheckedHavip extends KubernetesObject {
  readonly spec?: unknown;
  readonly status?: unknown;
}

export interface HavipRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
}

export class Cluster {
  private readonly custom: CustomObjectsApi;
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly rbac: RbacAuthorizationV1Api;
  private readonly events: EventsV1Api;

  constructor(kubeConfig: KubeConfig, private readonly reportingInstance: string) {
    this.custom = makeBoundedApiClient(kubeConfig, CustomObjectsApi);
    this.apps = makeBoundedApiClient(kubeConfig, AppsV1Api);
    this.core = makeBoundedApiClient(kubeConfig, CoreV1Api);
    this.rbac = makeBoundedApiClient(kubeConfig, RbacAuthorizationV1Api);
    this.events = makeBoundedApiClient(kubeConfig, EventsV1Api);
  }

  getHavip(namespace: string, name: string): Promise<UncheckedHavip> {
    return this.custom.getNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL, namespace, name });
  }

  /** A Secret's resourceVersion, asked for as metadata only so that the controller never receives the password. */
  async secretVersion(namespace: string, name: string): Promise<string | undefined> {
    try {
      const secret = await this.core.readNamespacedSecret({ namespace, name }, setHeaderOptions("Accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"));
      return secret.metadata?.resourceVersion;
    } catch (error) {
      if (apiStatusCode(error) === 404) return undefined;
      throw error;
    }
  }

  listHavips(): Promise<{ items: unknown[] }> {
    return this.custom.listClusterCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL }) as Promise<{ items: unknown[] }>;
  }

  /**
   * Server-side apply of the status fields the controller owns. It carries no resourceVersion and no nodes entry, so
   * an agent writing its entry at the same moment neither fails this write nor is undone by it.
   */
  applyStatus(ref: HavipRef, status: ControllerStatus): Promise<unknown> {
    const body = { apiVersion: HAVIP_API_VERSION, kind: HAVIP_KIND, metadata: { name: ref.name, namespace: ref.namespace }, status };
    return this.custom.patchNamespacedCustomObjectStatus(
      { group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL, namespace: ref.namespace, name: ref.name, body, fieldManager: FIELD_MANAGER, force: true },
      serverSideApply,
    );
  }

  /**
   * Removes the status.nodes entries of `nodes`, each guarded by a JSON patch test of its key at its index in
   * `entries` (the list as last read), so a list that moved meanwhile fails the patch with 422 instead of losing an
   * agent's entry.
   */
  removeStatusEntries(ref: HavipRef, entries: readonly { readonly node: string }[], nodes: readonly string[]): Promise<unknown> {
    const indices = entries.flatMap((entry, index) => (nodes.includes(entry.node) ? [index] : [])).reverse();
    const body = indices.flatMap((index) => [
      { op: "test", path: `/status/nodes/${index}/node`, value: entries[index]?.node },
      { op: "remove", path: `/status/nodes/${index}` },
    ]);
    return this.custom.patchNamespacedCustomObjectStatus(
      { group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL, namespace: ref.namespace, name: ref.name, body, fieldManager: FIELD_MANAGER },
      jsonPatch,
    );
  }

  /** Sets metadata.finalizers, guarded by resourceVersion; returns the updated object. */
  setFinalizers(ref: HavipRef, finalizers: readonly string[]): Promise<UncheckedHavip> {
    return this.custom.patchNamespacedCustomObject(
      { group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL, namespace: ref.namespace, name: ref.name, body: { metadata: { resourceVersion: ref.resourceVersion, finalizers: [...finalizers] } }, fieldManager: FIELD_MANAGER },
      mergePatch,
    );
  }

  applyDaemonSet(daemonSet: V1DaemonSet): Promise<V1DaemonSet> {
    const { name = "", namespace = "" } = daemonSet.metadata ?? {};
    return this.apps.patchNamespacedDaemonSet({ name, namespace, body: daemonSet, fieldManager: FIELD_MANAGER, force: true }, serverSideApply);
  }

  applyRoleBinding(binding: V1RoleBinding): Promise<V1RoleBinding> {
    const { name = "", namespace = "" } = binding.metadata ?? {};
    return this.rbac.patchNamespacedRoleBinding({ name, namespace, body: binding, fieldManager: FIELD_MANAGER, force: true }, serverSideApply);
  }

  applyRole(role: V1Role): Promise<V1Role> {
    const { name = "", namespace = "" } = role.metadata ?? {};
    return this.rbac.patchNamespacedRole({ name, namespace, body: role, fieldManager: FIELD_MANAGER, force: true }, serverSideApply);
  }

  async deleteRole(namespace: string, name: string): Promise<void> {
    await this.rbac.deleteNamespacedRole({ namespace, name });
  }

  async deleteDaemonSet(namespace: string, name: string): Promise<void> {
    await this.apps.deleteNamespacedDaemonSet({ namespace, name, propagationPolicy: "Background" });
  }

  async deleteRoleBinding(namespace: string, name: string): Promise<void> {
    await this.rbac.deleteNamespacedRoleBinding({ namespace, name });
  }

  async deletePod(namespace: string, name: string): Promise<void> {
    await this.core.deleteNamespacedPod({ namespace, name });
  }

  /** An events.k8s.io/v1 Event on the resource, as `kubectl describe havip` shows it. */
  async emit(ref: HavipRef, event: PlannedEvent, now: Date): Promise<void> {
    await this.events.createNamespacedEvent({
      namespace: ref.namespace,
      body: {
        // kubectl's naming (<object>.<unique hex>); kube-apiserver 1.37 refuses a generateName that ends in ".".
        metadata: { name: `${ref.name.slice(0, 230)}.${now.getTime().toString(16)}${randomBytes(4).toString("hex")}`, namespace: ref.namespace },
        // MicroTime: the API server wants exactly six fractional digits.
        eventTime: new V1MicroTime(now.getTime()),
        type: event.type,
        reason: event.reason,
        action: "Reconcile",
        note: event.message.slice(0, 1024),
        reportingController: "ha-nginx.io/controller",
        reportingInstance: this.reportingInstance,
        regarding: { apiVersion: HAVIP_API_VERSION, kind: HAVIP_KIND, namespace: ref.namespace, name: ref.name, uid: ref.uid, resourceVersion: ref.resourceVersion },
      },
    });
  }
}
