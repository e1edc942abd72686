// A watch that survives: client-node's informers stop on any error but 410 and leave the restart to the caller
// (client-node issues #795, #1496). This one restarts with capped backoff, so a restarted API server or a dropped
// connection costs a relist, never the process.
import { makeInformer, type KubeConfig, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";

const RESTART_MIN_MS = 500;
// A failed restart costs one refused connection; a longer cap would only delay the catch-up after the API returns.
const RESTART_MAX_MS = 2_000;
const STABLE_MS = 10_000;

export interface WatchOptions<T extends KubernetesObject> {
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<T>>;
  readonly labelSelector?: string;
  /** Names what changed; the handler maps it to resource keys, it never decides what to do from the event kind. */
  readonly onChange: (object: T, isDeleted: boolean) => void;
  readonly onError: (error: unknown) => void;
}

export class ResilientWatch<T extends KubernetesObject> {
  private readonly informer;
  private isStopped = true;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private hasSynced = false;
  private connectedAt: number | undefined;

  constructor(kubeConfig: KubeConfig, private readonly options: WatchOptions<T>) {
    this.informer = makeInformer<T>(kubeConfig, options.path, options.list, options.labelSelector);
  }

  async start(): Promise<void> {
    this.isStopped = false;
    const onChange = (isDeleted: boolean) => (object: T): void => {
      this.failures = 0;
      this.options.onChange(object, isDeleted);
    };
    this.informer.on("add", onChange(false));
    this.informer.on("update", onChange(false));
    this.informer.on("delete", onChange(true));
    this.informer.on("connect", () => {
      this.connectedAt = Date.now();
      this.hasSynced = true;
    });
    this.informer.on("error", (error: unknown) => {
      // A watch that stayed up a while had recovered, whether or not anything changed meanwhile; one that fails right
      // after connecting (the watch verb denied, say) keeps backing off.
      if (this.connectedAt !== undefined && Date.now() - this.connectedAt >= STABLE_MS) this.failures = 0;
      this.options.onError(error);
      this.scheduleRestart();
    });
    await this.informer.start();
    this.hasSynced = true;
  }

  private scheduleRestart(): void {
    if (this.isStopped) return;
    clearTimeout(this.restartTimer);
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** this.failures);
    this.failures += 1;
    this.restartTimer = setTimeout(() => {
      if (this.isStopped) return;
      this.informer.start().catch((error: unknown) => {
        this.options.onError(error);
        this.scheduleRestart();
      });
    }, delay);
  }

  get isSynced(): boolean {
    return this.hasSynced;
  }

  list(): readonly T[] {
    return this.informer.list();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  async stop(): Promise<void> {
    this.isStopped = true;
    clearTimeout(this.restartTimer);
    await this.informer.stop();
  }
}
