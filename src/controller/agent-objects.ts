// The desired agent objects of one HighAvailabilityVIP: its DaemonSet, ServiceAccount and RoleBinding, and with a
// VRRPv2 password a Role and RoleBinding for that one Secret. Everything the agent needs to know about the VIP
// (priorities, interval, peers) it reads from the resource itself, so the pod template holds only what placement and
// the kubelet need; changing a priority or a peer never restarts an agent.
import type { V1DaemonSet, V1NodeAffinity, V1Role, V1RoleBinding, V1ServiceAccount, V1Toleration } from "@kubernetes/client-node";
import { addressFamilyOf, HAVIP_API_VERSION, HAVIP_KIND, parseDuration, type HaVipSpec } from "../api/v1alpha1/index.js";
import { agentObjectName, passwordAccessName } from "./names.js";

/** Label on every agent object; its value is the object name, which (unlike a HAVIP name) fits a label value. */
export const AGENT_LABEL = "ha-nginx.io/agent";
/** The ClusterRole the chart installs for agents (charts/ha-nginx/templates/rbac-agent.yaml). */
export const AGENT_CLUSTER_ROLE = "ha-nginx-agent";
/** Field manager of every server-side apply the controller makes. */
export const FIELD_MANAGER = "ha-nginx-controller";

// Agents use the host network, so two resources on one node need different ports. A VRID is unique per family on a
// node (conflicts are refused), so the port derives from both: 9801..10055 for IPv4, 10057..10311 for IPv6.
const AGENT_PORT_BASE = 9800;
const IPV6_PORT_OFFSET = 256;

export function agentHttpPort(spec: HaVipSpec, virtualRouterID: number): number {
  return agentPortFor(addressFamilyOf(spec), virtualRouterID);
}

function agentPortFor(family: 4 | 6, virtualRouterID: number): number {
  return AGENT_PORT_BASE + (family === 6 ? IPV6_PORT_OFFSET : 0) + virtualRouterID;
}

// The kubelet (10248, 10250, 10255), kube-proxy (10249, 10256), the controller-manager (10257), the scheduler (10259)
// and ingress-nginx (10254) listen in this range on every node, and an agent on one of these ports crash-loops.
const KUBERNETES_NODE_PORTS = { first: 10248, last: 10259 } as const;

/** Whether an agent of this family and VRID would listen where a Kubernetes node component does (IPv6 VRIDs 192-203). */
export function isAgentPortTaken(family: 4 | 6, virtualRouterID: number): boolean {
  const port = agentPortFor(family, virtualRouterID);
  return port >= KUBERNETES_NODE_PORTS.first && port <= KUBERNETES_NODE_PORTS.last;
}

// A terminating master sends priority 0 and the best backup takes over after Skew_Time (RFC 5798 §6.4.3); with
// the backup already gone quiet it takes Master_Down_Interval = 3 × interval + Skew_Time < 4 × interval. Grace
// covers that bound plus a margin for the agent to remove the addresses and write its status.
const HANDOVER_INTERVALS = 4;
const GRACE_MARGIN_SECONDS = 5;
const MIN_GRACE_SECONDS = 10;

export function terminationGraceSeconds(spec: HaVipSpec): number {
  const handoverSeconds = Math.ceil((HANDOVER_INTERVALS * parseDuration(spec.advertisementInterval)) / 1000);
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
  /** Where agents serve /metrics, /healthz and /state; undefined: the node's own addresses. */
  readonly httpAddress: string | undefined;
  /** prometheus.io/scrape, /port and /path on the pods: the port is the agent's, which only the controller knows. */
  readonly scrapeAnnotations: boolean;
}

function ownerReference(owner: Owner) {
  return [{ apiVersion: HAVIP_API_VERSION, kind: HAVIP_KIND, name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true }];
}

function nodeAffinity(spec: HaVipSpec): V1NodeAffinity | undefined {
  const expressions = spec.nodes.selector?.matchExpressions ?? [];
  if (expressions.length === 0) return undefined;
  return {
    requiredDuringSchedulingIgnoredDuringExecution: {
      nodeSelectorTerms: [{ matchExpressions: expressions.map((expression) => ({ key: expression.key, operator: expression.operator, ...(expression.values === undefined ? {} : { values: [...expression.values] }) })) }],
    },
  };
}

export function desiredServiceAccount(owner: Owner): V1ServiceAccount {
  const name = agentObjectName(owner.name);
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name, namespace: owner.namespace, labels: { [AGENT_LABEL]: name }, ownerReferences: ownerReference(owner) },
  };
}

export function desiredRoleBinding(owner: Owner): V1RoleBinding {
  const name = agentObjectName(owner.name);
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name, namespace: owner.namespace, labels: { [AGENT_LABEL]: name }, ownerReferences: ownerReference(owner) },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: AGENT_CLUSTER_ROLE },
    subjects: [{ kind: "ServiceAccount", name, namespace: owner.namespace }],
  };
}

export interface PasswordAccess {
  readonly role: V1Role;
  readonly roleBinding: V1RoleBinding;
}

/**
 * `get` on exactly the Secret that spec.authentication names, for the agents' VRRPv2 password; undefined without
 * authentication, so an agent that needs no password can read no Secret at all. A Role per resource, because only
 * the resource knows the Secret's name, and resourceNames narrows the get to that one object.
 */
export function desiredPasswordAccess(owner: Owner, spec: HaVipSpec): PasswordAccess | undefined {
  const secret = spec.authentication?.passwordSecretRef.name;
  if (secret === undefined) return undefined;
  const name = passwordAccessName(owner.name);
  const metadata = { name, namespace: owner.namespace, labels: { [AGENT_LABEL]: agentObjectName(owner.name) }, ownerReferences: ownerReference(owner) };
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
      subjects: [{ kind: "ServiceAccount", name: agentObjectName(owner.name), namespace: owner.namespace }],
    },
  };
}

// The agent runs as root (the image's default user), with every capability dropped except NET_ADMIN and NET_RAW.
// Non-root cannot use those two: Kubernetes adds capabilities to the bounding and permitted sets but has no field for
// ambient ones, so a non-root process's effective set is empty after exec unless the binary carries file capabilities.
// No-new-privileges (allowPrivilegeEscalation: false) makes the kernel ignore file capabilities, and setcap on `node`
// would hand them to every script it runs, the controller included. A user namespace (hostUsers: false) is refused
// with hostNetwork. Root on a read-only root file system, with two capabilities and no way to gain more, is the
// narrowest of the options that work.
export function desiredDaemonSet(owner: Owner, spec: HaVipSpec, virtualRouterID: number, settings: AgentSettings): V1DaemonSet {
  const name = agentObjectName(owner.name);
  const labels = { [AGENT_LABEL]: name, "app.kubernetes.io/name": "ha-nginx-agent", "app.kubernetes.io/managed-by": FIELD_MANAGER };
  const port = agentHttpPort(spec, virtualRouterID);
  const affinity = nodeAffinity(spec);
  const probe = { httpGet: { path: "/healthz", port }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3 };
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace: owner.namespace, labels, ownerReferences: ownerReference(owner) },
    spec: {
      selector: { matchLabels: { [AGENT_LABEL]: name } },
      // One node at a time and never two agents of one node at once: a rolling agent hands the VIP over on SIGTERM,
      // and the others stay up to take it.
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      template: {
        metadata: {
          labels,
          ...(settings.scrapeAnnotations ? { annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": String(port), "prometheus.io/path": "/metrics" } } : {}),
        },
        spec: {
          serviceAccountName: name,
          hostNetwork: true,
          dnsPolicy: "ClusterFirstWithHostNet",
          terminationGracePeriodSeconds: terminationGraceSeconds(spec),
          ...(spec.nodes.selector?.matchLabels === undefined ? {} : { nodeSelector: { ...spec.nodes.selector.matchLabels } }),
          ...(affinity === undefined ? {} : { affinity: { nodeAffinity: affinity } }),
          tolerations: spec.nodes.tolerations.map((toleration) => ({ ...toleration }) as V1Toleration),
          containers: [
            {
              name: "agent",
              image: settings.image,
              args: [
                "agent", "--namespace", owner.namespace, "--name", owner.name, "--http-port", String(port), "--log-level", settings.logLevel,
                ...(settings.httpAddress === undefined ? [] : ["--http-address", settings.httpAddress]),
              ],
              env: [
                { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                // The node's InternalIP: the agent's default VRRP interface is the one holding it, not a CNI bridge.
                { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
                // Every family's node address: the agent serves HTTP there, where the kubelet probes, and not on the VIP.
                { name: "HOST_IPS", valueFrom: { fieldRef: { fieldPath: "status.hostIPs" } } },
              ],
              ports: [{ name: "http", containerPort: port, protocol: "TCP" }],
              readinessProbe: probe,
              livenessProbe: { ...probe, initialDelaySeconds: 10 },
              resources: { requests: { ...settings.resources.requests }, limits: { ...settings.resources.limits } },
              securityContext: {
                capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
              },
            },
          ],
        },
      },
    },
  };
}
