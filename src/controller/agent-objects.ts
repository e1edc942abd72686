// The desired agent objects: one DaemonSet for every HighAvailabilityVIP, in the controller's namespace, whose pods
// serve each resource placed on their node; and, per resource with a VRRPv2 password, a Role and RoleBinding for that
// one Secret. Everything an agent needs to know about a VIP (priorities, interval, peers) it reads from the resource
// itself, so the pod template holds only what placement and the kubelet need.
import { createHash } from "node:crypto";
import type { V1DaemonSet, V1NodeSelectorTerm, V1Role, V1RoleBinding, V1Toleration } from "@kubernetes/client-node";
import { HAVIP_API_VERSION, HAVIP_KIND, advertisementIntervalOf, parseDuration, type HaVipSpec } from "../api/v1alpha1/index.js";
import { passwordAccessName } from "./names.js";

/** Label on every agent object: the DaemonSet's name, or the resource a password Role belongs to. */
export const AGENT_LABEL = "ha-nginx.io/agent";
/** The agent DaemonSet, and the label value of its pods. */
export const AGENT_NAME = "ha-nginx-agent";
/** Field manager of every server-side apply the controller makes. */
export const FIELD_MANAGER = "ha-nginx-controller";
/** On the pod template: a hash of what the running agent depends on (image, arguments, resources), not of placement. */
export const AGENT_REVISION_ANNOTATION = "ha-nginx.io/agent-revision";

// A terminating master sends priority 0 and the best backup takes over after Skew_Time (RFC 5798 §6.4.3); with
// the backup already gone quiet it takes Master_Down_Interval = 3 × interval + Skew_Time < 4 × interval. Grace
// covers that bound plus a margin for the agent to remove the addresses and write its status.
const HANDOVER_INTERVALS = 4;
const GRACE_MARGIN_SECONDS = 5;
const MIN_GRACE_SECONDS = 10;

export function terminationGraceSeconds(spec: HaVipSpec): number {
  const handoverSeconds = Math.ceil((HANDOVER_INTERVALS * parseDuration(advertisementIntervalOf(spec))) / 1000);
  return Math.max(MIN_GRACE_SECONDS, handoverSeconds + GRACE_MARGIN_SECONDS);
}

export interface Owner {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

export interface AgentResources {
  readonly requests: { readonly cpu: string; readonly memory: string };
  readonly limits: { readonly cpu: string; readonly memory: string };
}

export interface AgentSettings {
  readonly image: string;
  readonly logLevel: string;
  readonly resources: AgentResources;
  /** The controller's namespace, where the agent DaemonSet runs. */
  readonly namespace: string;
  /** The agents' ServiceAccount there, which the chart binds to the ha-nginx-agent ClusterRole. */
  readonly serviceAccount: string;
  /** Where agents serve /metrics, /healthz and /state on the host network. */
  readonly httpPort: number;
  /** Their --http-address; undefined: the node's own addresses. */
  readonly httpAddress: string | undefined;
  /** prometheus.io/scrape, /port and /path on the pods, for a Prometheus without the Operator. */
  readonly scrapeAnnotations: boolean;
}

function ownerReference(owner: Owner) {
  return [{ apiVersion: HAVIP_API_VERSION, kind: HAVIP_KIND, name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true }];
}

export interface PasswordAccess {
  readonly role: V1Role;
  readonly roleBinding: V1RoleBinding;
}

/**
 * `get` on exactly the Secret that spec.authentication names, for the agents' VRRPv2 password; undefined without
 * authentication. A Role per resource, because only the resource knows the Secret's name, and resourceNames narrows
 * the get to that one object.
 */
export function desiredPasswordAccess(owner: Owner, spec: HaVipSpec, settings: AgentSettings): PasswordAccess | undefined {
  const secret = spec.authentication?.passwordSecretRef.name;
  if (secret === undefined) return undefined;
  const name = passwordAccessName(owner.name);
  const metadata = { name, namespace: owner.namespace, labels: { [AGENT_LABEL]: AGENT_NAME }, ownerReferences: ownerReference(owner) };
  return {
    role: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata,
      rules: [{ apiGroups: [""], resources: ["secrets"], resourceNames: [secret], verbs: ["get"] }],
    },
    roleBinding: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name: settings.serviceAccount, namespace: settings.namespace }],
    },
  };
}

/** One node selector term per resource (terms are ORed); none at all once one resource runs on every node. */
function nodeTerms(specs: readonly HaVipSpec[]): V1NodeSelectorTerm[] | undefined {
  const terms = new Map<string, V1NodeSelectorTerm>();
  for (const spec of specs) {
    const selector = spec.nodes.selector;
    const expressions = [
      ...Object.entries(selector?.matchLabels ?? {}).map(([key, value]) => ({ key, operator: "In", values: [value] })),
      ...(selector?.matchExpressions ?? []).map((expression) => ({ key: expression.key, operator: expression.operator, ...(expression.values === undefined ? {} : { values: [...expression.values] }) })),
    ];
    if (expressions.length === 0) return undefined;
    const term = { matchExpressions: expressions };
    terms.set(JSON.stringify(term), term);
  }
  return [...terms.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, term]) => term);
}

function unionOfTolerations(specs: readonly HaVipSpec[]): V1Toleration[] {
  const tolerations = new Map<string, V1Toleration>();
  for (const spec of specs) for (const toleration of spec.nodes.tolerations) tolerations.set(JSON.stringify(toleration), { ...toleration } as V1Toleration);
  return [...tolerations.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, toleration]) => toleration);
}

/** What the rollout reads of an agent pod. */
export interface AgentPodRevision {
  readonly name: string;
  readonly node?: string;
  readonly revision: string | undefined;
  readonly isReady: boolean;
  readonly isTerminating: boolean;
}

/**
 * The agent pod to replace now, as a rolling update with maxUnavailable 1 would: an outdated agent that is not Ready
 * first (it serves nothing; a fixed image must replace a broken one), else one outdated agent while every node that
 * should run one (`scheduled`) has a Ready one, so the others can take its VIPs. Counting nodes, not pods, covers a
 * deleted pod whose replacement is not created yet.
 */
export function nextAgentToReplace(pods: readonly AgentPodRevision[], revision: string, scheduled: number): AgentPodRevision | undefined {
  const outdated = pods.filter((pod) => pod.revision !== revision && !pod.isTerminating);
  const broken = outdated.find((pod) => !pod.isReady);
  if (broken !== undefined) return broken;
  const serving = pods.filter((pod) => pod.isReady && !pod.isTerminating).length;
  return serving >= scheduled && pods.every((pod) => !pod.isTerminating) ? outdated[0] : undefined;
}

function hashOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
}

// Root with only NET_ADMIN and NET_RAW on a read-only root file system: the narrowest set that works, as a non-root
// process keeps no capability across exec here (docs/design-notes/agent-privileges.md says why).
// OnDelete: a resource added or edited changes the placement and must restart no agent; the controller replaces agents
// itself, one node at a time, only when what they run changes (AGENT_REVISION_ANNOTATION).
export function desiredAgentDaemonSet(specs: readonly HaVipSpec[], settings: AgentSettings): V1DaemonSet {
  const labels = { [AGENT_LABEL]: AGENT_NAME, "app.kubernetes.io/name": AGENT_NAME, "app.kubernetes.io/managed-by": FIELD_MANAGER };
  const port = settings.httpPort;
  const probe = { periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3 };
  const container = {
    name: "agent",
    image: settings.image,
    args: ["agent", "--http-port", String(port), "--log-level", settings.logLevel, ...(settings.httpAddress === undefined ? [] : ["--http-address", settings.httpAddress])],
    env: [
      { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
      // The node's InternalIP: the agent's default VRRP interface is the one holding it, not a CNI bridge.
      { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
      // Every family's node address: the agent serves HTTP there, where the kubelet probes, and not on the VIP.
      { name: "HOST_IPS", valueFrom: { fieldRef: { fieldPath: "status.hostIPs" } } },
      // A 1 MiB young generation: at 100 routers the default one let RSS peak at 107-118 MiB, this holds it near 87 MiB
      // for about 0.1 % of a core more (docs/design-notes/agent-footprint.md).
      { name: "NODE_OPTIONS", value: "--max-semi-space-size=1" },
    ],
    ports: [{ name: "http", containerPort: port, protocol: "TCP" }],
    // Ready once every resource placed on the node runs or says why not, so the rollout replaces the next agent only
    // after this one can take VIPs over; alive as long as its loop answers.
    readinessProbe: { ...probe, httpGet: { path: "/readyz", port } },
    livenessProbe: { ...probe, httpGet: { path: "/healthz", port }, initialDelaySeconds: 10 },
    resources: { requests: { ...settings.resources.requests }, limits: { ...settings.resources.limits } },
    securityContext: {
      capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
    },
  };
  const terms = nodeTerms(specs);
  // A running pod keeps the grace it was created with: a slower resource must replace the agents to reach them.
  const grace = Math.max(MIN_GRACE_SECONDS, ...specs.map(terminationGraceSeconds));
  const annotations: Record<string, string> = { [AGENT_REVISION_ANNOTATION]: hashOf([container, settings.serviceAccount, grace]) };
  if (settings.scrapeAnnotations) Object.assign(annotations, { "prometheus.io/scrape": "true", "prometheus.io/port": String(port), "prometheus.io/path": "/metrics" });
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: AGENT_NAME, namespace: settings.namespace, labels },
    spec: {
      selector: { matchLabels: { [AGENT_LABEL]: AGENT_NAME } },
      updateStrategy: { type: "OnDelete" },
      template: {
        metadata: { labels, annotations },
        spec: {
          serviceAccountName: settings.serviceAccount,
          hostNetwork: true,
          dnsPolicy: "ClusterFirstWithHostNet",
          terminationGracePeriodSeconds: grace,
          ...(terms === undefined ? {} : { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } } }),
          tolerations: unionOfTolerations(specs),
          containers: [container],
        },
      },
    },
  };
}
