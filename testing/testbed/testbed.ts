// The e2e test bed: a real control plane (control-plane.ts), network-namespace nodes (testing/lab) and the stand-in
// kubelet (stand-in-kubelet.ts) acting as their kubelets. One call starts all three; stop() removes all three, whatever
// state they are in.
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { createLab } from "../lab/lab.js";
import type { Lab, LabHost } from "../lab/types.js";
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from "./control-plane.js";
import { startStandInKubelet, type StandInKubelet } from "./stand-in-kubelet.js";

export interface TestbedOptions {
  readonly nodes?: number;
  readonly nodeLabels?: Readonly<Record<string, string>>;
  readonly readyTimeoutMs?: number;
  // For example controllerManagerArgs: ["--node-monitor-grace-period=8s"] with heartbeatIntervalMs: 2000, for tests
  // that need a lost node noticed quickly.
  readonly controlPlane?: ControlPlaneOptions;
  readonly heartbeatIntervalMs?: number;
  readonly log?: (line: string) => void;
}

export interface KubectlResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export interface TestbedTimings {
  readonly controlPlaneAndLabMs: number;
  readonly nodesReadyMs: number;
  readonly totalMs: number;
}

export interface Testbed {
  readonly cp: ControlPlane;
  readonly lab: Lab;
  readonly runner: StandInKubelet;
  readonly nodeNames: readonly string[];
  // The image name that the stand-in kubelet maps to the built CLI.
  readonly imageForOurs: string;
  readonly kubeconfig: string;
  readonly timings: TestbedTimings;
  kubectl(args: readonly string[], opts?: { readonly input?: string; readonly kubeconfig?: string }): Promise<KubectlResult>;
  hostOf(nodeName: string): LabHost;
  // Creates a namespace and waits for its default ServiceAccount (without which pods are refused) and its root CA.
  createNamespace(name: string): Promise<void>;
  stop(): Promise<void>;
}

const defaultReadyTimeoutMs = 120_000;

export async function startTestbed(options: TestbedOptions = {}): Promise<Testbed> {
  const started = Date.now();
  const readyTimeoutMs = options.readyTimeoutMs ?? defaultReadyTimeoutMs;
  const [cpResult, labResult] = await Promise.allSettled([startControlPlane(options.controlPlane), createLab({ nodes: options.nodes ?? 3, idPrefix: "tb" })]);
  if (cpResult.status === "rejected" || labResult.status === "rejected") {
    if (cpResult.status === "fulfilled") await cpResult.value.stop();
    if (labResult.status === "fulfilled") await labResult.value.destroy();
    throw cpResult.status === "rejected" ? cpResult.reason : (labResult as PromiseRejectedResult).reason;
  }
  const cp = cpResult.value;
  const lab = labResult.value;
  const controlPlaneAndLabMs = Date.now() - started;
  let runner: StandInKubelet | undefined;
  try {
    runner = await startStandInKubelet({
      cp,
      hosts: lab.nodes,
      ...(options.nodeLabels === undefined ? {} : { nodeLabels: options.nodeLabels }),
      ...(options.log === undefined ? {} : { log: options.log }),
      ...(options.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
    });
    const kc = new KubeConfig();
    kc.loadFromFile(cp.adminKubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    await waitUntil(() => nodesReady(core, runner?.nodeNames ?? []), readyTimeoutMs, "test bed nodes Ready and untainted");
    await waitUntil(() => serviceAccountExists(core, "default"), readyTimeoutMs, "the default ServiceAccount in namespace default");
    const nodesReadyMs = Date.now() - started - controlPlaneAndLabMs;
    return makeTestbed(cp, lab, runner, core, { controlPlaneAndLabMs, nodesReadyMs, totalMs: Date.now() - started }, readyTimeoutMs);
  } catch (error) {
    await runner?.stop().catch(() => undefined);
    await lab.destroy().catch(() => undefined);
    await cp.stop().catch(() => undefined);
    throw error;
  }
}

function makeTestbed(cp: ControlPlane, lab: Lab, runner: StandInKubelet, core: CoreV1Api, timings: TestbedTimings, readyTimeoutMs: number): Testbed {
  let stopping: Promise<void> | undefined;
  const stopAll = async (): Promise<void> => {
    const failures: unknown[] = [];
    for (const step of [() => runner.stop(), () => lab.destroy(), () => cp.stop()]) {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, "test bed teardown had failures");
  };
  return {
    cp,
    lab,
    runner,
    nodeNames: runner.nodeNames,
    imageForOurs: "ha-nginx:dev",
    kubeconfig: cp.adminKubeconfig,
    timings,
    kubectl: (args, opts) => cp.kubectl(args, opts),
    hostOf: (nodeName) => {
      const index = runner.nodeNames.indexOf(nodeName);
      const host = lab.nodes[index];
      if (host === undefined) throw new Error(`no test bed node named ${nodeName}`);
      return host;
    },
    async createNamespace(name) {
      try {
        await core.createNamespace({ body: { metadata: { name } } });
      } catch (error) {
        if ((error as { code?: unknown }).code !== 409) throw error;
      }
      await waitUntil(() => serviceAccountExists(core, name), readyTimeoutMs, `the default ServiceAccount in namespace ${name}`);
      // Every pod's admission-injected token volume projects this ConfigMap; the stand-in kubelet would otherwise retry.
      await waitUntil(() => rootCaPublished(core, name), readyTimeoutMs, `kube-root-ca.crt in namespace ${name}`);
    },
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
  };
}

async function nodesReady(core: CoreV1Api, names: readonly string[]): Promise<boolean> {
  const list = await core.listNode();
  return names.every((name) => {
    const node = list.items.find((item) => item.metadata?.name === name);
    const isReady = node?.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") === true;
    const isTainted = (node?.spec?.taints ?? []).some((taint) => taint.key.startsWith("node.kubernetes.io/"));
    return isReady && !isTainted;
  });
}

async function serviceAccountExists(core: CoreV1Api, namespace: string): Promise<boolean> {
  try {
    await core.readNamespacedServiceAccount({ name: "default", namespace });
    return true;
  } catch {
    return false;
  }
}

async function rootCaPublished(core: CoreV1Api, namespace: string): Promise<boolean> {
  try {
    await core.readNamespacedConfigMap({ name: "kube-root-ca.crt", namespace });
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await predicate()) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 250));
  }
  const detail = lastError instanceof Error ? `: ${lastError.message}` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}
