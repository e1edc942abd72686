import { describe, expect, it } from "vitest";
import { observedStatusEntry, resolveHaVip } from "../../src/agent/k8s/resolve.js";
import { routerConfigFromSpec } from "../../src/agent/router-config.js";

function aHaVip(spec: Record<string, unknown> = {}, status?: Record<string, unknown>) {
  return {
    apiVersion: "ha-nginx.io/v1alpha1",
    kind: "HighAvailabilityVIP",
    metadata: { name: "edge", namespace: "ingress", uid: "u-1" },
    spec: { addresses: ["10.0.0.150/24"], ...spec },
    ...(status === undefined ? {} : { status }),
  };
}

describe("resolving the agent's configuration from its HighAvailabilityVIP", () => {
  const generation3 = (status: Record<string, unknown>) => ({ ...aHaVip({ virtualRouterID: 7 }, status), metadata: { name: "edge", namespace: "ingress", uid: "u-1", generation: 3 } });

  it("waits until the controller has seen the resource's generation (status.observedGeneration)", () => {
    const resolution = resolveHaVip(generation3({ observedGeneration: 2 }));
    expect(resolution).toEqual({ kind: "waiting", message: "waiting for the controller to see generation 3 (status.observedGeneration is 2)" });
    expect(resolveHaVip(generation3({})).kind).toBe("waiting");
    expect(resolveHaVip(generation3({ observedGeneration: 3 })).kind).toBe("ready");
  });

  it("waits while the controller refuses the generation: a Conflict, or too many nodes", () => {
    const conflict = resolveHaVip(generation3({ observedGeneration: 3, conditions: [{ type: "Conflict", status: "True", reason: "AddressConflict", message: "10.0.0.150 is claimed by ingress/other" }] }));
    expect(conflict).toEqual({ kind: "waiting", message: "the controller refuses it: Conflict (AddressConflict): 10.0.0.150 is claimed by ingress/other" });
    const tooMany = resolveHaVip(generation3({ observedGeneration: 3, conditions: [{ type: "Ready", status: "False", reason: "TooManyNodes", message: "130 nodes match" }] }));
    expect(tooMany).toEqual({ kind: "waiting", message: "the controller refuses it: 130 nodes match" });
    const noConflict = resolveHaVip(generation3({ observedGeneration: 3, conditions: [{ type: "Conflict", status: "False", reason: "NoConflict", message: "" }] }));
    expect(noConflict.kind).toBe("ready");
  });

  it("refuses, so a running router is withdrawn, while no VIPAddressPool admits it, whatever generation the condition was written for", () => {
    const notAdmitted = { type: "NotAdmitted", status: "True", reason: "NoPoolAdmits", message: "no VIPAddressPool exists" };
    expect(resolveHaVip(generation3({ observedGeneration: 3, conditions: [notAdmitted] }))).toEqual({
      kind: "refused",
      message: "the controller refuses it: NotAdmitted (NoPoolAdmits): no VIPAddressPool exists",
    });
    expect(resolveHaVip(generation3({ observedGeneration: 2, conditions: [notAdmitted] })).kind).toBe("refused");
    const admitted = { type: "NotAdmitted", status: "False", reason: "AdmittedByPool", message: 'VIPAddressPool "edge" admits it' };
    expect(resolveHaVip(generation3({ observedGeneration: 3, conditions: [admitted] })).kind).toBe("ready");
  });

  it("waits while neither the spec nor the status holds a VRID", () => {
    const resolution = resolveHaVip(aHaVip());
    expect(resolution.kind).toBe("waiting");
  });

  it("takes the VRID the controller allocated into status.virtualRouterID", () => {
    const resolution = resolveHaVip(aHaVip({}, { virtualRouterID: 42 }));
    expect(resolution.kind === "ready" && resolution.vrid).toBe(42);
  });

  it("prefers spec.virtualRouterID over the status", () => {
    const resolution = resolveHaVip(aHaVip({ virtualRouterID: 7 }, { virtualRouterID: 42 }));
    expect(resolution.kind === "ready" && resolution.vrid).toBe(7);
  });

  it("reads the published peers from status.peers, ignoring non-strings", () => {
    const resolution = resolveHaVip(aHaVip({}, { virtualRouterID: 42, peers: ["10.0.0.11", 5, "10.0.0.12"] }));
    expect(resolution.kind === "ready" && resolution.publishedPeers).toEqual(["10.0.0.11", "10.0.0.12"]);
  });

  it("reads the cordoned nodes from status.cordonedNodes, in any transport mode", () => {
    const resolution = resolveHaVip(aHaVip({ transport: { mode: "Multicast" } }, { virtualRouterID: 42, cordonedNodes: ["node-2", 7] }));
    expect(resolution.kind === "ready" && resolution.cordonedNodes).toEqual(["node-2"]);
  });

  it("ignores published peers in Multicast mode", () => {
    const resolution = resolveHaVip(aHaVip({ transport: { mode: "Multicast" } }, { virtualRouterID: 42, peers: ["10.0.0.11"] }));
    expect(resolution.kind === "ready" && resolution.publishedPeers).toEqual([]);
  });

  it("an odd status field does not stop the agent: an out-of-range VRID counts as absent", () => {
    expect(resolveHaVip(aHaVip({}, { virtualRouterID: 300, nodes: "garbage" })).kind).toBe("waiting");
  });

  it("reports an invalid spec with the field path", () => {
    const resolution = resolveHaVip(aHaVip({ addresses: [] }));
    expect(resolution.kind).toBe("invalid");
    expect(resolution.kind === "invalid" && resolution.message).toContain("spec.addresses");
  });

  it("asks for the Secret only with VRRPv2 authentication", () => {
    const resolution = resolveHaVip(aHaVip({ vrrpVersion: 2, advertisementInterval: "1s", virtualRouterID: 9, authentication: { passwordSecretRef: { name: "vrrp-auth", key: "password" } } }));
    expect(resolution.kind === "ready" && resolution.passwordRef).toEqual({ name: "vrrp-auth", key: "password" });
    const v3 = resolveHaVip(aHaVip({ virtualRouterID: 9 }));
    expect(v3.kind === "ready" && v3.passwordRef).toBeUndefined();
  });

  it("passes on the password Secret's resourceVersion the controller published, so a rotation is read again", () => {
    const spec = { vrrpVersion: 2, advertisementInterval: "1s", virtualRouterID: 9, authentication: { passwordSecretRef: { name: "vrrp-auth", key: "password" } } };
    const published = resolveHaVip(aHaVip(spec, { passwordSecretVersion: "1002" }));
    expect(published.kind === "ready" && published.passwordSecretVersion).toBe("1002");
    const notYet = resolveHaVip(aHaVip(spec));
    expect(notYet.kind === "ready" && notYet.passwordSecretVersion).toBeUndefined();
  });

  it("peers are status.peers plus spec.transport.peers, without the node's own addresses", () => {
    const resolution = resolveHaVip(aHaVip({ transport: { peers: ["10.0.0.99"] }, nodes: { priorities: [{ node: "node-1", priority: 150 }] } }, { virtualRouterID: 42, peers: ["10.0.0.11", "10.0.0.12", "10.0.0.13"] }));
    if (resolution.kind !== "ready") throw new Error(`expected ready, got ${resolution.kind}`);
    const config = routerConfigFromSpec(resolution.spec, {
      node: "node-1",
      primaryAddress: "10.0.0.11",
      ownAddresses: ["10.0.0.11", "127.0.0.1"],
      vrid: resolution.vrid,
      publishedPeers: resolution.publishedPeers,
      password: undefined,
    });
    if (!config.ok) throw new Error(config.problems.join(", "));
    expect([...config.config.peers].sort()).toEqual(["10.0.0.12", "10.0.0.13", "10.0.0.99"]);
    expect(config.config.priority).toBe(150);
    expect(config.config.vrid).toBe(42);
  });
});

describe("this node's entry as the API server holds it", () => {
  const entry = { node: "node-2", state: "FAULT", reason: "health check failed" };

  it("finds the entry by node name", () => {
    expect(observedStatusEntry(aHaVip({}, { nodes: [{ node: "node-1", state: "MASTER" }, entry] }), "node-2")).toEqual(entry);
  });

  it("is undefined when the entry is absent or malformed", () => {
    expect(observedStatusEntry(aHaVip({}, { nodes: [{ node: "node-1", state: "MASTER" }] }), "node-2")).toBeUndefined();
    expect(observedStatusEntry(aHaVip({}, { nodes: [{ node: "node-2", state: "BOGUS" }] }), "node-2")).toBeUndefined();
    expect(observedStatusEntry(aHaVip(), "node-2")).toBeUndefined();
  });
});
