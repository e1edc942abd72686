// The agent's calls besides watching: read the VRRP password, apply its status
// entry, record an Event. Each call ends within the shared bound (the status write within its publisher's deadline)
// and maps failures to a result; retries belong to the caller.

import { HAVIP_API_VERSION, HAVIP_GROUP, HAVIP_KIND, HAVIP_PLURAL, HAVIP_VERSION, type NodeStatusEntry } from "../../api/v1alpha1/index.js";
import { describeApiError } from "../../k8s/errors.js";
import type { KubernetesHttpClient } from "../../k8s/http-client.js";
import type { SecretKeyRef } from "./resolve.js";
import { statusApplyBody } from "./status-entry.js";
import type { WriteOutcome } from "./status-publisher.js";

export type SecretRead = { readonly ok: true; readonly value: string } | { readonly ok: false; readonly detail: string };

export class AgentApi {
  constructor(
    private readonly client: KubernetesHttpClient,
    private readonly namespace: string,
    private readonly name: string,
    private readonly fieldManager: string,
  ) {}

  async readPassword(ref: SecretKeyRef): Promise<SecretRead> {
    try {
      const secret = await this.client.call<{ data?: Record<string, string> }>("GET", `/api/v1/namespaces/${this.namespace}/secrets/${ref.name}`);
      const encoded = secret.data?.[ref.key];
      if (encoded === undefined) return { ok: false, detail: `Secret ${ref.name} has no key ${ref.key}` };
      return { ok: true, value: Buffer.from(encoded, "base64").toString("utf8").trim() };
    } catch (error) {
      return { ok: false, detail: `Secret ${ref.name}: ${describeApiError(error)}` };
    }
  }

  /** Bounded by `signal` instead of the client's bound: the status publisher owns this write's deadline. */
  async applyStatus(entry: NodeStatusEntry, signal: AbortSignal): Promise<WriteOutcome> {
    try {
      await this.client.call("PATCH", `/apis/${HAVIP_GROUP}/${HAVIP_VERSION}/namespaces/${this.namespace}/${HAVIP_PLURAL}/${this.name}/status`, {
        query: { fieldManager: this.fieldManager, force: "true" },
        body: statusApplyBody(this.namespace, this.name, entry),
        contentType: "application/apply-patch+yaml",
        signal,
      });
      return { ok: true };
    } catch (error) {
      return { ok: false, detail: describeApiError(error) };
    }
  }

  async recordEvent(event: { readonly uid: string | undefined; readonly node: string; readonly type: "Normal" | "Warning"; readonly reason: string; readonly message: string }): Promise<WriteOutcome> {
    const now = new Date();
    try {
      await this.client.call("POST", `/api/v1/namespaces/${this.namespace}/events`, {
        body: {
          apiVersion: "v1",
          kind: "Event",
          metadata: { generateName: `${this.name}.`, namespace: this.namespace },
          involvedObject: { apiVersion: HAVIP_API_VERSION, kind: HAVIP_KIND, name: this.name, namespace: this.namespace, ...(event.uid === undefined ? {} : { uid: event.uid }) },
          type: event.type,
          reason: event.reason,
          message: event.message,
          source: { component: "ha-nginx-agent", host: event.node },
          reportingComponent: "ha-nginx.io/agent",
          reportingInstance: event.node,
          firstTimestamp: now.toISOString(),
          lastTimestamp: now.toISOString(),
          count: 1,
        },
      });
      return { ok: true };
    } catch (error) {
      return { ok: false, detail: describeApiError(error) };
    }
  }
}
