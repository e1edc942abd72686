// `ha-nginx uninstall`, the chart's pre-delete hook (charts/ha-nginx/templates/uninstall-hook.yaml): it runs while the
// controller still does, so a plain `helm uninstall` leaves no VIP, agent or object behind. Every VIP in the cluster,
// not only the chart's: the controller serves all namespaces, and a VIP left behind would keep its address and a
// finalizer nobody removes.
import { AppsV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION } from "../api/v1alpha1/index.js";
import { FINALIZER } from "./finalizer.js";
import { Cluster } from "./k8s/cluster.js";
import { apiStatusCode } from "../k8s/errors.js";
import { LEASE_NAME } from "./leader.js";
import { AGENT_NAME } from "./agent-objects.js";
import { makeBoundedApiClient } from "../k8s/bounded-client.js";

const POLL_MS = 1_000;

export interface HavipName {
  readonly namespace: string;
  readonly name: string;
  readonly finalizers: readonly string[];
}

/** The HighAvailabilityVIPs of the whole cluster. */
export interface VipPort {
  list(): Promise<readonly HavipName[]>;
  delete(namespace: string, name: string): Promise<void>;
}

/** The controller's Deployment, its pods, its leader Lease and the agent DaemonSet, in the release namespace. */
export interface ControllerPort {
  scaleToZero(): Promise<void>;
  podNames(): Promise<readonly string[]>;
  deleteLease(): Promise<void>;
  deleteAgents(): Promise<void>;
}

export interface UninstallOptions {
  readonly namespace: string;
  readonly deployment: string;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

export interface UninstallReport {
  readonly vipsDeleted: number;
  readonly vipsGoneMs: number;
  readonly controllerStoppedMs: number;
  readonly isLeaseDeleted: boolean;
}

/** Something would not go in time; the message names it and says how to unblock it. */
export class UninstallTimeoutError extends Error {}

/** A delete or a list of something already gone (or of a CRD already deleted) has done its job. */
function unlessGone<T>(fallback: T): (error: unknown) => T {
  return (error) => {
    if (apiStatusCode(error) !== 404) throw error;
    return fallback;
  };
}

async function waitUntilEmpty<T>(read: () => Promise<readonly T[]>, deadline: number, options: UninstallOptions): Promise<readonly T[]> {
  for (;;) {
    const left = await read();
    if (left.length === 0 || options.now() >= deadline) return left;
    await options.sleep(POLL_MS);
  }
}

function stuckVipsMessage(left: readonly HavipName[], options: UninstallOptions): string {
  const seconds = Math.round(options.timeoutMs / 1000);
  const names = left.map((vip) => `${vip.namespace}/${vip.name} (finalizers: ${vip.finalizers.join(", ") || "none"})`).join("; ");
  const example = left[0] ?? { namespace: "<namespace>", name: "<name>" };
  return `${left.length} HighAvailabilityVIP(s) still present after ${seconds} s: ${names}. `
    + `The controller removes its ${FINALIZER} finalizer once a VIP's agents have stopped; check that it runs: `
    + `kubectl -n ${options.namespace} get deployment ${options.deployment}. If it cannot run, stop the agents and drop the finalizer by hand `
    + `(for each VIP): kubectl -n ${options.namespace} delete daemonset ${AGENT_NAME} && `
    + `kubectl -n ${example.namespace} patch havip ${example.name} --type=merge -p '{"metadata":{"finalizers":null}}', then run helm uninstall again.`;
}

export async function uninstall(vips: VipPort, controller: ControllerPort, options: UninstallOptions): Promise<UninstallReport> {
  const { logger } = options;
  const startedAt = options.now();
  const deadline = startedAt + options.timeoutMs;
  const listVips = (): Promise<readonly HavipName[]> => vips.list().catch(unlessGone([]));

  // First the VIPs, while the controller runs: its finalizer waits until their agents have given the addresses up.
  const present = await listVips();
  for (const vip of present) await vips.delete(vip.namespace, vip.name).catch(unlessGone(undefined));
  logger.info({ vips: present.map((vip) => `${vip.namespace}/${vip.name}`) }, "deleted the HighAvailabilityVIPs; waiting for the controller to release them");
  const vipsLeft = await waitUntilEmpty(listVips, deadline, options);
  if (vipsLeft.length > 0) throw new UninstallTimeoutError(stuckVipsMessage(vipsLeft, options));
  const vipsGoneAt = options.now();

  // Then the controller: a running leader recreates a missing Lease within RENEW_MS.
  await controller.scaleToZero().catch(unlessGone(undefined));
  const podsLeft = await waitUntilEmpty(() => controller.podNames(), deadline, options);
  if (podsLeft.length > 0) {
    throw new UninstallTimeoutError(
      `the controller's pods ${podsLeft.join(", ")} are still running ${Math.round(options.timeoutMs / 1000)} s after the uninstall began, `
      + `so its leader Lease ${LEASE_NAME} cannot be deleted yet (a running leader recreates it); see kubectl -n ${options.namespace} describe pod ${podsLeft[0] ?? ""}. `
      + `Every HighAvailabilityVIP is already gone: helm uninstall --no-hooks finishes the rest, then kubectl -n ${options.namespace} delete lease ${LEASE_NAME}.`,
    );
  }
  const controllerStoppedAt = options.now();

  // The Lease is the controller's own record, not a chart object; the DaemonSet, in case the controller stopped first.
  const isLeaseDeleted = await controller.deleteLease().then(() => true, unlessGone(false));
  await controller.deleteAgents().catch(unlessGone(undefined));
  const report: UninstallReport = {
    vipsDeleted: present.length,
    vipsGoneMs: vipsGoneAt - startedAt,
    controllerStoppedMs: controllerStoppedAt - vipsGoneAt,
    isLeaseDeleted,
  };
  logger.info({ ...report, totalMs: options.now() - startedAt }, "uninstalled: no HighAvailabilityVIP, controller, agent or Lease left");
  return report;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** The ports on the cluster; each method is one call, and uninstall() decides what a 404 means. */
export function clusterPorts(kubeConfig: KubeConfig, namespace: string, deployment: string, podSelector: string): { vips: VipPort; controller: ControllerPort } {
  const cluster = new Cluster(kubeConfig, "ha-nginx-uninstall");
  const custom = makeBoundedApiClient(kubeConfig, CustomObjectsApi);
  const apps = makeBoundedApiClient(kubeConfig, AppsV1Api);
  const core = makeBoundedApiClient(kubeConfig, CoreV1Api);
  const coordination = makeBoundedApiClient(kubeConfig, CoordinationV1Api);
  return {
    vips: {
      async list() {
        const { items } = await cluster.listHavips();
        return items.map((item) => {
          const metadata = (item as { metadata?: { namespace?: string; name?: string; finalizers?: string[] } }).metadata ?? {};
          return { namespace: metadata.namespace ?? "", name: metadata.name ?? "", finalizers: metadata.finalizers ?? [] };
        });
      },
      async delete(vipNamespace, name) {
        await custom.deleteNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL, namespace: vipNamespace, name });
      },
    },
    controller: {
      async scaleToZero() {
        await apps.patchNamespacedDeploymentScale({ name: deployment, namespace, body: { spec: { replicas: 0 } } }, mergePatch);
      },
      async podNames() {
        const pods = await core.listNamespacedPod({ namespace, labelSelector: podSelector });
        return pods.items.map((pod) => pod.metadata?.name ?? "");
      },
      async deleteLease() {
        await coordination.deleteNamespacedLease({ name: LEASE_NAME, namespace });
      },
      async deleteAgents() {
        await apps.deleteNamespacedDaemonSet({ name: AGENT_NAME, namespace });
      },
    },
  };
}
