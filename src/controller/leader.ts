// Leader election on a Lease, as client-go's: the holder renews every RENEW_MS, a candidate takes it once it expires,
// and every write is guarded by resourceVersion so two candidates cannot both win. A killed holder is replaced within
// LEASE_DURATION_S + RETRY_MS. A leader that cannot renew stops working before anyone else may start and stays a
// candidate, so an API server restart costs a pause, not the process.
import { CoordinationV1Api, PatchStrategy, setHeaderOptions, V1MicroTime, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiStatusCode, describeApiError } from "../k8s/errors.js";
import { makeBoundedApiClient } from "../k8s/bounded-client.js";

export const LEASE_NAME = "ha-nginx-controller";
export const LEASE_DURATION_S = 8;
export const RENEW_MS = 2_000;
export const RETRY_MS = 2_000;

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export interface LeaderElectorOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly identity: string;
  readonly logger: Logger;
  readonly onStartedLeading: () => void;
  /** Called when a held Lease is lost; the elector then keeps trying as a candidate. */
  readonly onStoppedLeading: () => void;
}

function microTime(ms: number): string {
  return new V1MicroTime(ms).toISOString();
}

function timeOf(value: Date | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  return (value instanceof Date ? value : new Date(value)).getTime();
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private timer: NodeJS.Timeout | undefined;
  private isLeading = false;
  private isStopped = false;
  private lastRenewOk = 0;

  constructor(private readonly options: LeaderElectorOptions) {
    this.api = makeBoundedApiClient(options.kubeConfig, CoordinationV1Api);
  }

  get leading(): boolean {
    return this.isLeading;
  }

  start(): void {
    void this.tick();
  }

  private schedule(ms: number): void {
    if (this.isStopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    try {
      const acquired = await this.tryAcquireOrRenew(now);
      if (acquired) {
        this.lastRenewOk = now;
        if (!this.isLeading) {
          this.isLeading = true;
          this.options.logger.info({ lease: LEASE_NAME, identity: this.options.identity }, "became leader");
          this.options.onStartedLeading();
        }
      } else if (this.isLeading) {
        this.lose("another replica holds the Lease");
      }
    } catch (error) {
      this.options.logger.warn({ lease: LEASE_NAME, err: describeApiError(error) }, "could not reach the Lease");
      // Without a successful renew for a whole lease duration another replica may lead; stop before that.
      if (this.isLeading && now - this.lastRenewOk >= (LEASE_DURATION_S * 1000) - RENEW_MS) {
        this.lose("could not renew the Lease in time");
      }
    }
    this.schedule(this.isLeading ? RENEW_MS : RETRY_MS);
  }

  private lose(why: string): void {
    this.isLeading = false;
    this.options.logger.error({ lease: LEASE_NAME, why }, "lost leadership");
    this.options.onStoppedLeading();
  }

  private async tryAcquireOrRenew(now: number): Promise<boolean> {
    const { namespace, identity } = this.options;
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name: LEASE_NAME, namespace });
    } catch (error) {
      if (apiStatusCode(error) !== 404) throw error;
      try {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name: LEASE_NAME, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: LEASE_DURATION_S, acquireTime: new V1MicroTime(now), renewTime: new V1MicroTime(now), leaseTransitions: 0 },
          },
        });
        return true;
      } catch (createError) {
        if (apiStatusCode(createError) === 409) return false;
        throw createError;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const renewedAt = timeOf(spec.renewTime) ?? 0;
    const isExpired = holder === "" || renewedAt + (spec.leaseDurationSeconds ?? LEASE_DURATION_S) * 1000 < now;
    if (holder !== identity && !isExpired) return false;
    const isTakeover = holder !== identity;
    const patch = {
      metadata: { resourceVersion: lease.metadata?.resourceVersion },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: LEASE_DURATION_S,
        renewTime: microTime(now),
        ...(isTakeover ? { acquireTime: microTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
      },
    };
    try {
      await this.api.patchNamespacedLease({ name: LEASE_NAME, namespace, body: patch }, mergePatch);
      return true;
    } catch (error) {
      if (apiStatusCode(error) === 409) return false;
      throw error;
    }
  }

  /** Stops renewing; a leader gives the Lease up so the next replica need not wait for it to expire. */
  async stop(): Promise<void> {
    this.isStopped = true;
    clearTimeout(this.timer);
    if (!this.isLeading) return;
    this.isLeading = false;
    const { namespace } = this.options;
    try {
      const lease = await this.api.readNamespacedLease({ name: LEASE_NAME, namespace });
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      await this.api.patchNamespacedLease(
        { name: LEASE_NAME, namespace, body: { metadata: { resourceVersion: lease.metadata?.resourceVersion }, spec: { holderIdentity: "", leaseDurationSeconds: 1 } } },
        mergePatch,
      );
    } catch (error) {
      this.options.logger.warn({ lease: LEASE_NAME, err: describeApiError(error) }, "could not release the Lease");
    }
  }
}
