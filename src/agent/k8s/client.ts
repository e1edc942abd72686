// Thin adapters over client-node for what the agent does besides watching: read the VRRP password, apply its status
// entry, record an Event. Each maps failures to a result; retries belong to the caller.

import {
  CoreV1Api,
  CustomObjectsApi,
  Observable,
  PatchStrategy,
  setHeaderOptions,
  type ConfigurationOptions,
  type KubeConfig,
  type RequestContext,
  type ResponseContext,
} from "@kubernetes/client-node";
import { HAVIP_API_VERSION, HAVIP_GROUP, HAVIP_KIND, HAVIP_PLURAL, HAVIP_VERSION, type NodeStatusEntry } from "../../api/v1alpha1/index.js";
import type { SecretKeyRef } from "./resolve.js";
import { statusApplyBody } from "./status-entry.js";
import type { WriteOutcome } from "./status-publisher.js";

export type SecretRead = { readonly ok: true; readonly value: string } | { readonly ok: false; readonly detail: string };

export function describeApiError(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "number") {
    const body = "body" in error && typeof error.body === "string" ? error.body : "";
    let message = "";
    try {
      const parsed: unknown = JSON.parse(body);
      if (typeof parsed === "object" && parsed !== null && "message" in parsed && typeof parsed.message === "string") message = parsed.message;
    } catch {
      message = body.slice(0, 200);
    }
    const hint = error.code === 403 ? " (RBAC: check the agent's ClusterRole ha-nginx-agent)" : "";
    return `HTTP ${error.code}${hint}: ${message}`;
  }
  return error instanceof Error ? error.message.split("\n")[0] ?? error.name : String(error);
}

/** Request options that end the request when `signal` aborts; client-node takes a signal only through middleware. */
function abortable(signal: AbortSignal, options: ConfigurationOptions): ConfigurationOptions {
  const middleware = {
    pre: (context: RequestContext): Observable<RequestContext> => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (context: ResponseContext): Observable<ResponseContext> => new Observable(Promise.resolve(context)),
  };
  return { ...options, middleware: [...(options.middleware ?? []), middleware], middlewareMergeStrategy: "append" };
}

export class AgentApi {
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;

  constructor(
    kubeConfig: KubeConfig,
    private readonly namespace: string,
    private readonly name: string,
    private readonly fieldManager: string,
  ) {
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    this.#custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async readPassword(ref: SecretKeyRef): Promise<SecretRead> {
    try {
      const secret = await this.#core.readNamespacedSecret({ name: ref.name, namespace: this.namespace });
      const encoded = secret.data?.[ref.key];
      if (encoded === undefined) return { ok: false, detail: `Secret ${ref.name} has no key ${ref.key}` };
      return { ok: true, value: Buffer.from(encoded, "base64").toString("utf8").trim() };
    } catch (error) {
      return { ok: false, detail: `Secret ${ref.name}: ${describeApiError(error)}` };
    }
  }

  async applyStatus(entry: NodeStatusEntry, signal: AbortSignal): Promise<WriteOutcome> {
    try {
      await this.#custom.patchNamespacedCustomObjectStatus(
        {
          group: HAVIP_GROUP,
          version: HAVIP_VERSION,
          namespace: this.namespace,
          plural: HAVIP_PLURAL,
          name: this.name,
          body: statusApplyBody(this.namespace, this.name, entry),
          fieldManager: this.fieldManager,
          force: true,
        },
        abortable(signal, setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply)),
      );
      return { ok: true };
    } catch (error) {
      return { ok: false, detail: describeApiError(error) };
    }
  }

  async recordEvent(event: { readonly uid: string | undefined; readonly node: string; readonly type: "Normal" | "Warning"; readonly reason: string; readonly message: string }): Promise<WriteOutcome> {
    const now = new Date();
    try {
      await this.#core.createNamespacedEvent({
        namespace: this.namespace,
        body: {
          metadata: { generateName: `${this.name}.`, namespace: this.namespace },
          involvedObject: { apiVersion: HAVIP_API_VERSION, kind: HAVIP_KIND, name: this.name, namespace: this.namespace, ...(event.uid === undefined ? {} : { uid: event.uid }) },
          type: event.type,
          reason: event.reason,
          message: event.message,
          source: { component: "ha-nginx-agent", host: event.node },
          reportingComponent: "ha-nginx.io/agent",
          reportingInstance: event.node,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
      return { ok: true };
    } catch (error) {
      return { ok: false, detail: describeApiError(error) };
    }
  }
}
