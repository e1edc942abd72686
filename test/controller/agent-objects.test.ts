import { describe, expect, it } from "vitest";
import { terminationGraceSeconds } from "../../src/controller/agent-objects.js";
import { agentObjectName, boundedName, passwordAccessName } from "../../src/controller/names.js";
import { computeDesired } from "../../src/controller/plan.js";
import { formatSelector, matchesSelector } from "../../src/api/v1alpha1/selector.js";
import { validateHaVipSpec } from "../../src/api/v1alpha1/index.js";
import { aHavip, aSpec, inputs } from "./builders.js";

function daemonSetFor(spec: ReturnType<typeof aSpec>, name = "edge") {
  const plan = computeDesired(inputs({ object: aHavip({ name, spec: { ...spec, virtualRouterID: 51 } }) }));
  const daemonSet = plan.agentObjects?.daemonSet;
  if (daemonSet === undefined) throw new Error("no DaemonSet planned");
  return { plan, daemonSet };
}

describe("the agent DaemonSet", () => {
  it("examples/vip.yaml's shape: host network, narrow capabilities, placement, args, probes, rolling one at a time", () => {
    const { plan, daemonSet } = daemonSetFor(aSpec({
      nodes: {
        selector: { matchLabels: { "ha-nginx.io/edge": "true" }, matchExpressions: [{ key: "zone", operator: "In", values: ["a", "b"] }] },
        tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }],
      },
    }));
    expect(daemonSet.metadata).toMatchObject({
      name: "ha-nginx-agent-edge",
      namespace: "default",
      ownerReferences: [{ apiVersion: "ha-nginx.io/v1alpha1", kind: "HighAvailabilityVIP", name: "edge", uid: "uid-edge", controller: true }],
    });
    expect(daemonSet.spec?.updateStrategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
    const pod = daemonSet.spec?.template.spec;
    expect(pod).toMatchObject({
      hostNetwork: true,
      dnsPolicy: "ClusterFirstWithHostNet",
      serviceAccountName: "ha-nginx-agent-edge",
      nodeSelector: { "ha-nginx.io/edge": "true" },
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "In", values: ["a", "b"] }] }] } } },
      tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }],
      terminationGracePeriodSeconds: 10,
    });
    const container = pod?.containers[0];
    expect(container?.args).toEqual(["agent", "--namespace", "default", "--name", "edge", "--http-port", "9851", "--log-level", "info"]);
    expect(container?.env).toEqual([
      { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
      { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
      { name: "HOST_IPS", valueFrom: { fieldRef: { fieldPath: "status.hostIPs" } } },
    ]);
    const exposed = computeDesired(inputs({ object: aHavip({ spec: { ...aSpec(), virtualRouterID: 51 } }), agent: { ...inputs().agent, httpAddress: "0.0.0.0" } }));
    expect(exposed.agentObjects?.daemonSet.spec?.template.spec?.containers[0]?.args?.slice(-2)).toEqual(["--http-address", "0.0.0.0"]);
    // Scrape annotations name the agent's own port, which only the controller knows; off, the template has none.
    expect(plan.agentObjects?.daemonSet.spec?.template.metadata?.annotations).toBeUndefined();
    const annotated = computeDesired(inputs({ object: aHavip({ spec: { ...aSpec(), virtualRouterID: 51 } }), agent: { ...inputs().agent, scrapeAnnotations: true } }));
    expect(annotated.agentObjects?.daemonSet.spec?.template.metadata?.annotations).toEqual({ "prometheus.io/scrape": "true", "prometheus.io/port": "9851", "prometheus.io/path": "/metrics" });
    expect(container?.securityContext).toEqual({
      capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
    });
    expect(container?.readinessProbe?.httpGet).toEqual({ path: "/healthz", port: 9851 });
    expect(container?.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: 9851 });
    expect(container?.resources?.requests).toBeDefined();
    expect(container?.resources?.limits).toBeDefined();
    expect(plan.agentObjects?.roleBinding).toMatchObject({
      roleRef: { kind: "ClusterRole", name: "ha-nginx-agent" },
      subjects: [{ kind: "ServiceAccount", name: "ha-nginx-agent-edge", namespace: "default" }],
    });
  });

  it("a priority or peer change leaves the pod template alone, so no agent restarts", () => {
    const before = daemonSetFor(aSpec()).daemonSet;
    const after = daemonSetFor(aSpec({ nodes: { selector: { matchLabels: { "ha-nginx.io/edge": "true" } }, priorities: [{ node: "node-1", priority: 200 }] }, transport: { peers: ["10.77.0.50"] } })).daemonSet;
    expect(after.spec?.template).toEqual(before.spec?.template);
  });

  it("an IPv6 resource with the same VRID gets another port than an IPv4 one", () => {
    const port = (spec: ReturnType<typeof aSpec>) => daemonSetFor(spec).daemonSet.spec?.template.spec?.containers[0]?.ports?.[0]?.containerPort;
    expect(port(aSpec())).toBe(9851);
    expect(port(aSpec({ addresses: ["fd00::10/64"] }))).toBe(10107);
  });

  const graces = [
    { name: "1 s interval: the 10 s floor", interval: "1s", seconds: 10 },
    { name: "100 ms interval: the 10 s floor", interval: "100ms", seconds: 10 },
    { name: "5 s interval: 4 × 5 s + 5 s margin", interval: "5s", seconds: 25 },
    { name: "40.95 s interval: 164 s + 5 s margin", interval: "40950ms", seconds: 169 },
  ];
  it.each(graces)("termination grace covers the hand-over bound: $name", ({ interval, seconds }) => {
    const spec = validateHaVipSpec(aSpec({ advertisementInterval: interval }));
    if (!spec.ok) throw new Error("fixture invalid");
    expect(terminationGraceSeconds(spec.value)).toBe(seconds);
  });
});

describe("the password Secret's Role", () => {
  const withPassword = aSpec({ vrrpVersion: 2, authentication: { passwordSecretRef: { name: "vrrp-pass", key: "password" } } });

  it("without authentication there is none, so the agents can read no Secret", () => {
    expect(daemonSetFor(aSpec()).plan.agentObjects?.passwordAccess).toBeUndefined();
  });

  it("with authentication: get on that one Secret, bound to the resource's agent ServiceAccount, owned by the resource", () => {
    const access = daemonSetFor(withPassword).plan.agentObjects?.passwordAccess;
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
      subjects: [{ kind: "ServiceAccount", name: "ha-nginx-agent-edge", namespace: "default" }],
    });
  });

  it("no resource name makes it collide with another resource's agent RoleBinding", () => {
    // The agent objects of a resource named "password-edge" and the password objects of "edge" share a namespace.
    expect(passwordAccessName("edge")).not.toBe(agentObjectName("password-edge"));
    expect(passwordAccessName("agent-edge")).not.toBe(agentObjectName("edge"));
    expect(passwordAccessName(`${"x".repeat(80)}`)).toHaveLength(63);
  });
});

describe("names", () => {
  it("a short name is prefixed as is", () => {
    expect(agentObjectName("edge")).toBe("ha-nginx-agent-edge");
  });
  it("a long name is cut to 63 characters with a hash that tells two long names apart", () => {
    const a = agentObjectName(`${"x".repeat(80)}-a`);
    const b = agentObjectName(`${"x".repeat(80)}-b`);
    expect(a).toHaveLength(63);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^ha-nginx-agent-x+-[0-9a-f]{8}$/);
    expect(boundedName("p-", "y".repeat(61))).toBe(`p-${"y".repeat(61)}`);
  });
});

describe("label selectors", () => {
  const labels = { role: "edge", zone: "a" };
  const cases = [
    { name: "absent selector matches every node", selector: undefined, matches: true, text: undefined },
    { name: "matchLabels pair present", selector: { matchLabels: { role: "edge" } }, matches: true, text: "role=edge" },
    { name: "matchLabels pair differs", selector: { matchLabels: { role: "core" } }, matches: false, text: "role=core" },
    { name: "In holds", selector: { matchExpressions: [{ key: "zone", operator: "In" as const, values: ["a", "b"] }] }, matches: true, text: "zone in (a,b)" },
    { name: "NotIn excludes", selector: { matchExpressions: [{ key: "zone", operator: "NotIn" as const, values: ["a"] }] }, matches: false, text: "zone notin (a)" },
    { name: "Exists", selector: { matchExpressions: [{ key: "zone", operator: "Exists" as const }] }, matches: true, text: "zone" },
    { name: "DoesNotExist", selector: { matchExpressions: [{ key: "gpu", operator: "DoesNotExist" as const }] }, matches: true, text: "!gpu" },
  ];
  it.each(cases)("$name", ({ selector, matches, text }) => {
    expect(matchesSelector(selector, labels)).toBe(matches);
    if (selector !== undefined) expect(formatSelector(selector)).toBe(text);
  });
});
