import type { HaVipSpecInput, NodeStatusEntry } from "../../src/api/v1alpha1/index.js";
import { validateHaVipSpec } from "../../src/api/v1alpha1/index.js";
import type { AgentPodInfo, HavipInfo, NodeInfo, PeerResource, PlanInputs } from "../../src/controller/plan-inputs.js";
import type { AddressPool } from "../../src/controller/admission.js";
import type { AgentSettings } from "../../src/controller/agent-objects.js";
import { pino } from "pino";
import type { Cluster } from "../../src/controller/k8s/cluster.js";
import { Reconciler, type ClusterView } from "../../src/controller/reconcile.js";

export const NOW = Date.parse("2026-11-23T10:00:00Z");
export const EARLIER = "2026-11-23T09:00:00Z";

export function aSpec(overrides: Partial<HaVipSpecInput> = {}): HaVipSpecInput {
  return {
    addresses: ["10.77.0.200/24"],
    nodes: { selector: { matchLabels: { "ha-nginx.io/edge": "true" } } },
    ...overrides,
  };
}

export function aNode(name: string, options: { labels?: Record<string, string>; taints?: NodeInfo["taints"]; isReady?: boolean; isCordoned?: boolean; address?: string } = {}): NodeInfo {
  return {
    name,
    labels: options.labels ?? { "ha-nginx.io/edge": "true" },
    taints: options.taints ?? [],
    isReady: options.isReady ?? true,
    isCordoned: options.isCordoned ?? false,
    internalAddresses: [options.address ?? `10.77.0.${name.replace(/\D/g, "") || "9"}`],
  };
}

export function anEntry(node: string, state: NodeStatusEntry["state"], overrides: Partial<NodeStatusEntry> = {}): NodeStatusEntry {
  return { node, state, healthy: true, ...overrides };
}

export function aPod(node: string): AgentPodInfo {
  return { name: `ha-nginx-agent-${node}`, node, isTerminating: false };
}

export function aHavip(options: { name?: string; spec?: unknown; status?: unknown; generation?: number; created?: string } = {}): HavipInfo {
  return {
    metadata: {
      name: options.name ?? "edge",
      namespace: "default",
      uid: `uid-${options.name ?? "edge"}`,
      generation: options.generation ?? 1,
      creationTimestamp: options.created ?? EARLIER,
    },
    spec: options.spec ?? aSpec(),
    ...(options.status === undefined ? {} : { status: options.status }),
  };
}

export function aPeer(name: string, spec: HaVipSpecInput, options: { statusVrid?: number; created?: string } = {}): PeerResource {
  const parsed = validateHaVipSpec(spec);
  if (!parsed.ok) throw new Error(`fixture spec is invalid: ${JSON.stringify(parsed.issues)}`);
  return { namespace: "default", name, creationTimestamp: options.created ?? EARLIER, spec: parsed.value, statusVirtualRouterID: options.statusVrid };
}

export function anAgentSettings(overrides: Partial<AgentSettings> = {}): AgentSettings {
  return {
    image: "ha-nginx:dev",
    logLevel: "info",
    resources: { requests: { cpu: "20m", memory: "128Mi" }, limits: { cpu: "500m", memory: "256Mi" } },
    namespace: "ha-nginx-system",
    serviceAccount: "ha-nginx-agent",
    httpPort: 9750,
    httpAddress: undefined,
    scrapeAnnotations: false,
    ...overrides,
  };
}

/** A VIPAddressPool that admits everything, so tests about other things run as in a cluster with one. */
export function aPermissivePool(name = "everything"): AddressPool {
  return { name, spec: { addresses: ["0.0.0.0/0", "::/0"], namespaces: ["*"] } };
}

export function inputs(overrides: Partial<PlanInputs> = {}): PlanInputs {
  const nodes = overrides.nodes ?? [aNode("node-1"), aNode("node-2"), aNode("node-3")];
  return {
    object: aHavip(),
    others: [],
    pools: [aPermissivePool()],
    nodes,
    agentPods: nodes.map((node) => aPod(node.name)),
    agentGoneSince: new Map(),
    agent: anAgentSettings(),
    passwordSecretVersion: undefined,
    now: NOW,
    ...overrides,
  };
}

/** A Reconciler on a stand-in API (only the calls a test expects) and stand-in watch caches: the default agent
 * settings, silent logs, a fixed clock unless `now` is given. */
export function aReconciler(cluster: object, view: Partial<ClusterView>, now: () => number = () => Date.parse("2026-12-05T10:00:05Z")): Reconciler {
  return new Reconciler({
    cluster: cluster as Cluster,
    agent: anAgentSettings(),
    logger: pino({ level: "silent" }),
    now,
    view: { havips: () => [], nodes: () => [], daemonSet: () => undefined, pods: () => [], pools: () => [], ...view },
  });
}
