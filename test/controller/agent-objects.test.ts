import { describe, expect, it } from "vitest";
import { AGENT_REVISION_ANNOTATION, desiredAgentDaemonSet, nextAgentToReplace, terminationGraceSeconds } from "../../src/controller/agent-objects.js";
import { boundedName, passwordAccessName } from "../../src/controller/names.js";
import { computeDesired } from "../../src/controller/plan.js";
import { matchesSelector } from "../../src/api/v1alpha1/selector.js";
import { validateHaVipSpec, type HaVipSpec } from "../../src/api/v1alpha1/index.js";
import { aHavip, anAgentSettings, aSpec, inputs } from "./builders.js";

function specOf(input: ReturnType<typeof aSpec>): HaVipSpec {
  const validated = validateHaVipSpec(input);
  if (!validated.ok) throw new Error("fixture invalid");
  return validated.value;
}

const edge = specOf(aSpec({
  nodes: {
    selector: { matchLabels: { "ha-nginx.io/edge": "true" }, matchExpressions: [{ key: "zone", operator: "In", values: ["a", "b"] }] },
    tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }],
  },
}));

describe("the one agent DaemonSet", () => {
  it("its shape: the controller's namespace, host network, narrow capabilities, one port, replaced only by the controller", () => {
    const daemonSet = desiredAgentDaemonSet([edge], anAgentSettings());
    expect(daemonSet.metadata).toMatchObject({ name: "ha-nginx-agent", namespace: "ha-nginx-system" });
    // Not owned by any one resource: it serves them all, and the controller deletes it with the last one.
    expect(daemonSet.metadata?.ownerReferences).toBeUndefined();
    expect(daemonSet.spec?.updateStrategy).toEqual({ type: "OnDelete" });
    const pod = daemonSet.spec?.template.spec;
    expect(pod).toMatchObject({ hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet", serviceAccountName: "ha-nginx-agent", terminationGracePeriodSeconds: 10 });
    const container = pod?.containers[0];
    // No --namespace or --name: the agent serves every resource placed on its node.
    expect(container?.args).toEqual(["agent", "--http-port", "9750", "--log-level", "info"]);
    expect(container?.env).toEqual([
      { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
      { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
      { name: "HOST_IPS", valueFrom: { fieldRef: { fieldPath: "status.hostIPs" } } },
      { name: "NODE_OPTIONS", value: "--max-semi-space-size=1" },
    ]);
    expect(container?.securityContext).toEqual({ capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] }, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(container?.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: 9750 });
    expect(container?.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: 9750 });
    expect(container?.resources).toEqual({ requests: { cpu: "20m", memory: "128Mi" }, limits: { cpu: "500m", memory: "256Mi" } });
    const exposed = desiredAgentDaemonSet([edge], anAgentSettings({ httpAddress: "0.0.0.0", httpPort: 9900 }));
    expect(exposed.spec?.template.spec?.containers[0]?.args).toEqual(["agent", "--http-port", "9900", "--log-level", "info", "--http-address", "0.0.0.0"]);
    expect(daemonSet.spec?.template.metadata?.annotations).toEqual({ [AGENT_REVISION_ANNOTATION]: expect.stringMatching(/^[0-9a-f]{16}$/) });
    const annotated = desiredAgentDaemonSet([edge], anAgentSettings({ scrapeAnnotations: true }));
    expect(annotated.spec?.template.metadata?.annotations).toMatchObject({ "prometheus.io/scrape": "true", "prometheus.io/port": "9750", "prometheus.io/path": "/metrics" });
  });

  it("is placed on the union of the resources' node selectors (terms are ORed) and tolerations, each once", () => {
    const other = specOf(aSpec({ nodes: { selector: { matchLabels: { role: "lb" } }, tolerations: [{ key: "dedicated", operator: "Equal", value: "lb", effect: "NoSchedule" }] } }));
    const pod = desiredAgentDaemonSet([edge, other, edge], anAgentSettings()).spec?.template.spec;
    expect(pod?.nodeSelector).toBeUndefined();
    expect(pod?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: "ha-nginx.io/edge", operator: "In", values: ["true"] }, { key: "zone", operator: "In", values: ["a", "b"] }] },
      { matchExpressions: [{ key: "role", operator: "In", values: ["lb"] }] },
    ]);
    expect(pod?.tolerations).toHaveLength(2);
    expect(pod?.tolerations).toEqual(expect.arrayContaining([
      { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" },
      { key: "dedicated", operator: "Equal", value: "lb", effect: "NoSchedule" },
    ]));
  });

  it("runs on every node once one resource selects every node", () => {
    const everywhere = specOf(aSpec({ nodes: {} }));
    expect(desiredAgentDaemonSet([edge, everywhere], anAgentSettings()).spec?.template.spec?.affinity).toBeUndefined();
  });

  it("a resource added, edited or deleted changes placement at most, never the revision that replaces agents", () => {
    const revision = (specs: readonly HaVipSpec[]) => desiredAgentDaemonSet(specs, anAgentSettings()).spec?.template.metadata?.annotations?.[AGENT_REVISION_ANNOTATION];
    const edited = specOf(aSpec({ nodes: { selector: { matchLabels: { role: "lb" } }, priorities: [{ node: "node-1", priority: 200 }] }, advertisementInterval: "500ms", transport: { peers: ["10.77.0.50"] } }));
    expect(revision([edge, edited])).toBe(revision([edge]));
    expect(revision([edited])).toBe(revision([edge]));
    // What the agent runs does: its image, arguments and resources.
    expect(desiredAgentDaemonSet([edge], anAgentSettings({ image: "ha-nginx:next" })).spec?.template.metadata?.annotations?.[AGENT_REVISION_ANNOTATION]).not.toBe(revision([edge]));
    expect(desiredAgentDaemonSet([edge], anAgentSettings({ logLevel: "debug" })).spec?.template.metadata?.annotations?.[AGENT_REVISION_ANNOTATION]).not.toBe(revision([edge]));
  });

  it("its termination grace covers the slowest resource's hand-over, and a longer one replaces the agents to reach them", () => {
    const slow = specOf(aSpec({ advertisementInterval: "5s" }));
    const template = (specs: readonly HaVipSpec[]) => desiredAgentDaemonSet(specs, anAgentSettings()).spec?.template;
    expect(template([edge, slow])?.spec?.terminationGracePeriodSeconds).toBe(25);
    expect(template([edge, slow])?.metadata?.annotations?.[AGENT_REVISION_ANNOTATION]).not.toBe(template([edge])?.metadata?.annotations?.[AGENT_REVISION_ANNOTATION]);
  });

  const graces = [
    { name: "1 s interval: the 10 s floor", interval: "1s", seconds: 10 },
    { name: "100 ms interval: the 10 s floor", interval: "100ms", seconds: 10 },
    { name: "5 s interval: 4 × 5 s + 5 s margin", interval: "5s", seconds: 25 },
    { name: "40.95 s interval: 164 s + 5 s margin", interval: "40950ms", seconds: 169 },
  ];
  it.each(graces)("termination grace covers the hand-over bound: $name", ({ interval, seconds }) => {
    expect(terminationGraceSeconds(specOf(aSpec({ advertisementInterval: interval })))).toBe(seconds);
  });
});

describe("replacing agents that run an older revision (the DaemonSet is OnDelete)", () => {
  const pod = (name: string, revision: string, state: { isReady?: boolean; isTerminating?: boolean } = {}) => ({ name, revision, isReady: state.isReady ?? true, isTerminating: state.isTerminating ?? false });

  it("none while every agent runs the current revision", () => {
    expect(nextAgentToReplace([pod("a", "r2"), pod("b", "r2")], "r2", 2)).toBeUndefined();
  });

  it("one outdated agent at a time, while every agent is Ready and none terminating", () => {
    expect(nextAgentToReplace([pod("a", "r2"), pod("b", "r1"), pod("c", "r1")], "r2", 3)?.name).toBe("b");
    expect(nextAgentToReplace([pod("a", "r2", { isReady: false }), pod("b", "r1")], "r2", 2)).toBeUndefined();
    expect(nextAgentToReplace([pod("a", "r1", { isTerminating: true }), pod("b", "r1")], "r2", 2)).toBeUndefined();
  });

  it("none while a replaced agent's pod is gone and its successor not created yet: the node counts, not the pods", () => {
    expect(nextAgentToReplace([pod("a", "r1"), pod("b", "r2")], "r2", 3)).toBeUndefined();
    expect(nextAgentToReplace([pod("a", "r1")], "r2", 2)).toBeUndefined();
  });

  it("an outdated agent that is not Ready goes at once: a fixed image replaces a broken one", () => {
    expect(nextAgentToReplace([pod("a", "r2", { isReady: false }), pod("b", "r2"), pod("c", "r3")], "r3", 3)?.name).toBe("a");
    expect(nextAgentToReplace([pod("a", "r2"), pod("b", "r2", { isReady: false })], "r3", 2)?.name).toBe("b");
  });
});

describe("the password Secret's Role", () => {
  const withPassword = aSpec({ vrrpVersion: 2, authentication: { passwordSecretRef: { name: "vrrp-pass", key: "password" } } });
  const accessFor = (spec: ReturnType<typeof aSpec>) => computeDesired(inputs({ object: aHavip({ spec: { ...spec, virtualRouterID: 51 } }) })).agentObjects?.passwordAccess;

  it("without authentication there is none, so the agents can read no Secret", () => {
    expect(accessFor(aSpec())).toBeUndefined();
  });

  it("with authentication: get on that one Secret, bound to the agents' ServiceAccount, owned by the resource", () => {
    const access = accessFor(withPassword);
    const ownerReferences = [{ apiVersion: "ha-nginx.io/v1alpha1", kind: "HighAvailabilityVIP", name: "edge", uid: "uid-edge", controller: true }];
    expect(access?.role).toMatchObject({
      kind: "Role",
      metadata: { name: "ha-nginx-password-edge", namespace: "default", ownerReferences },
      rules: [{ apiGroups: [""], resources: ["secrets"], resourceNames: ["vrrp-pass"], verbs: ["get"] }],
    });
    expect(access?.role.rules).toHaveLength(1);
    expect(access?.roleBinding).toMatchObject({
      kind: "RoleBinding",
      metadata: { name: "ha-nginx-password-edge", namespace: "default", ownerReferences },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "ha-nginx-password-edge" },
      subjects: [{ kind: "ServiceAccount", name: "ha-nginx-agent", namespace: "ha-nginx-system" }],
    });
  });
});

describe("names", () => {
  it("a short name is prefixed as is", () => {
    expect(passwordAccessName("edge")).toBe("ha-nginx-password-edge");
  });
  it("a long name is cut to 63 characters with a hash that tells two long names apart", () => {
    const a = passwordAccessName(`${"x".repeat(80)}-a`);
    const b = passwordAccessName(`${"x".repeat(80)}-b`);
    expect(a).toHaveLength(63);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^ha-nginx-password-x+-[0-9a-f]{8}$/);
    expect(boundedName("p-", "y".repeat(61))).toBe(`p-${"y".repeat(61)}`);
  });
});

describe("label selectors", () => {
  const labels = { role: "edge", zone: "a" };
  const cases = [
    { name: "absent selector matches every node", selector: undefined, matches: true },
    { name: "matchLabels pair present", selector: { matchLabels: { role: "edge" } }, matches: true },
    { name: "matchLabels pair differs", selector: { matchLabels: { role: "core" } }, matches: false },
    { name: "In holds", selector: { matchExpressions: [{ key: "zone", operator: "In" as const, values: ["a", "b"] }] }, matches: true },
    { name: "NotIn excludes", selector: { matchExpressions: [{ key: "zone", operator: "NotIn" as const, values: ["a"] }] }, matches: false },
    { name: "Exists", selector: { matchExpressions: [{ key: "zone", operator: "Exists" as const }] }, matches: true },
    { name: "DoesNotExist", selector: { matchExpressions: [{ key: "gpu", operator: "DoesNotExist" as const }] }, matches: true },
  ];
  it.each(cases)("$name", ({ selector, matches }) => {
    expect(matchesSelector(selector, labels)).toBe(matches);
  });
});
