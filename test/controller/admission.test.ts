import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadHaVipManifests, validateVipAddressPoolSpec, type VipAddressPoolSpecInput } from "../../src/api/v1alpha1/index.js";
import { decideAdmission, type AddressPool, type AdmissionRequest } from "../../src/controller/admission.js";

function aPool(name: string, spec: Partial<VipAddressPoolSpecInput> = {}): AddressPool {
  const validated = validateVipAddressPoolSpec({ addresses: ["192.168.10.0/24"], namespaces: ["ingress"], ...spec });
  if (!validated.ok) throw new Error(`fixture pool is invalid: ${JSON.stringify(validated.issues)}`);
  return { name, spec: validated.value };
}

const edgeNode = { name: "node-1", labels: { "ha-nginx.io/edge": "true" } };
const plainNode = { name: "node-9", labels: {} };

function aRequest(overrides: { namespace?: string; addresses?: string[]; interface?: string; nodes?: AdmissionRequest["nodes"] } = {}): AdmissionRequest {
  return {
    namespace: overrides.namespace ?? "ingress",
    spec: { addresses: overrides.addresses ?? ["192.168.10.50/24"], interface: overrides.interface },
    nodes: overrides.nodes ?? [edgeNode],
  };
}

interface Case {
  readonly name: string;
  readonly request: AdmissionRequest;
  readonly pools: readonly AddressPool[];
  /** The admitting pool, or the refusal message. */
  readonly expected: { readonly pool: string } | { readonly message: string };
}

const cases: readonly Case[] = [
  {
    name: "no pool at all: refused, and told to create one from the example",
    request: aRequest(),
    pools: [],
    expected: {
      message:
        'no VIPAddressPool exists, so no HighAvailabilityVIP may claim an address (it runs privileged agents on its nodes): ask a cluster admin to create a VIPAddressPool that admits 192.168.10.50/24 for namespace "ingress" (see examples/vip-address-pool.yaml)',
    },
  },
  { name: "address inside the CIDR, namespace listed: admitted", request: aRequest(), pools: [aPool("edge")], expected: { pool: "edge" } },
  {
    name: "address outside every CIDR: refused, naming the pool's range",
    request: aRequest({ addresses: ["10.0.0.50/24"] }),
    pools: [aPool("edge")],
    expected: {
      message:
        'no VIPAddressPool admits 10.0.0.50/24 for namespace "ingress": pool "edge" covers 192.168.10.0/24, not 10.0.0.50/24; ask a cluster admin to add a VIPAddressPool or widen one (see examples/vip-address-pool.yaml)',
    },
  },
  {
    name: "namespace not listed: refused, naming the pool's namespaces",
    request: aRequest({ namespace: "web" }),
    pools: [aPool("edge")],
    expected: {
      message:
        'no VIPAddressPool admits 192.168.10.50/24 for namespace "web": pool "edge" covers 192.168.10.0/24 for namespaces [ingress]; ask a cluster admin to add a VIPAddressPool or widen one (see examples/vip-address-pool.yaml)',
    },
  },
  { name: '"*" admits every namespace', request: aRequest({ namespace: "web" }), pools: [aPool("edge", { namespaces: ["*"] })], expected: { pool: "edge" } },
  {
    name: "one address of two outside: refused, as one pool must admit all of it",
    request: aRequest({ addresses: ["192.168.10.50/24", "192.168.11.50/24"] }),
    pools: [aPool("edge")],
    expected: {
      message:
        'no VIPAddressPool admits 192.168.10.50/24, 192.168.11.50/24 for namespace "ingress": pool "edge" covers 192.168.10.0/24, not 192.168.11.50/24; ask a cluster admin to add a VIPAddressPool or widen one (see examples/vip-address-pool.yaml)',
    },
  },
  {
    name: "two addresses in two pools: refused, no single pool admits all of it",
    request: aRequest({ addresses: ["192.168.10.50/24", "192.168.11.50/24"] }),
    pools: [aPool("a"), aPool("b", { addresses: ["192.168.11.0/24"] })],
    expected: {
      message:
        'no VIPAddressPool admits 192.168.10.50/24, 192.168.11.50/24 for namespace "ingress": pool "a" covers 192.168.10.0/24, not 192.168.11.50/24; pool "b" covers 192.168.11.0/24, not 192.168.10.50/24; ask a cluster admin to add a VIPAddressPool or widen one (see examples/vip-address-pool.yaml)',
    },
  },
  { name: "a plain address in the pool admits exactly that address", request: aRequest({ addresses: ["192.168.10.50"] }), pools: [aPool("one", { addresses: ["192.168.10.50"] })], expected: { pool: "one" } },
  {
    name: "a plain address in the pool admits no neighbour",
    request: aRequest({ addresses: ["192.168.10.51/24"] }),
    pools: [aPool("one", { addresses: ["192.168.10.50"] })],
    expected: {
      message:
        'no VIPAddressPool admits 192.168.10.51/24 for namespace "ingress": pool "one" covers 192.168.10.50, not 192.168.10.51/24; ask a cluster admin to add a VIPAddressPool or widen one (see examples/vip-address-pool.yaml)',
    },
  },
  { name: "IPv6 inside a /64: admitted", request: aRequest({ addresses: ["2001:db8:0:1::50/64"] }), pools: [aPool("v6", { addresses: ["2001:db8:0:1::/64"] })], expected: { pool: "v6" } },
  {
    name: "IPv6 in the neighbouring /64: refused",
    request: aRequest({ addresses: ["2001:db8:0:2::50/64"] }),
    pools: [aPool("v6", { addresses: ["2001:db8:0:1::/64"] })],
    expected: {
      message:
        'no VIPAddressPool admits 2001:db8:0:2::50/64 for namespace "ingress": pool "v6" covers 2001:db8:0:1::/64, not 2001:db8:0:2::50/64; ask a cluster admin to add a VIPAddressPool or widen one (see examples/vip-address-pool.yaml)',
    },
  },
  { name: "an IPv4 pool admits no IPv6 address, even ::/0 does not hold 0.0.0.0/0", request: aRequest(), pools: [aPool("v6", { addresses: ["::/0"] })], expected: { message: 'no VIPAddressPool admits 192.168.10.50/24 for namespace "ingress": pool "v6" covers ::/0, not 192.168.10.50/24; ask a cluster admin to add a VIPAddressPool or widen one (see examples/vip-address-pool.yaml)' } },
  {
    name: "placed on a node outside the pool's nodes.selector: refused, naming the node",
    request: aRequest({ nodes: [edgeNode, plainNode] }),
    pools: [aPool("edge", { nodes: { selector: { matchLabels: { "ha-nginx.io/edge": "true" } } } })],
    expected: {
      message:
        'no VIPAddressPool admits 192.168.10.50/24 for namespace "ingress": pool "edge" does not allow nodes [node-9] (its nodes.selector); ask a cluster admin to add a VIPAddressPool or widen one (see examples/vip-address-pool.yaml)',
    },
  },
  {
    name: "every node matches the pool's nodes.selector: admitted",
    request: aRequest(),
    pools: [aPool("edge", { nodes: { selector: { matchExpressions: [{ key: "ha-nginx.io/edge", operator: "Exists" }] } } })],
    expected: { pool: "edge" },
  },
  {
    name: "interfaces set and spec.interface unset: refused",
    request: aRequest(),
    pools: [aPool("edge", { interfaces: ["eth1"] })],
    expected: {
      message:
        'no VIPAddressPool admits 192.168.10.50/24 for namespace "ingress": pool "edge" allows interfaces [eth1], spec.interface is unset; ask a cluster admin to add a VIPAddressPool or widen one (see examples/vip-address-pool.yaml)',
    },
  },
  {
    name: "interfaces set and another interface named: refused",
    request: aRequest({ interface: "eth0" }),
    pools: [aPool("edge", { interfaces: ["eth1"] })],
    expected: {
      message:
        'no VIPAddressPool admits 192.168.10.50/24 for namespace "ingress": pool "edge" allows interfaces [eth1], not eth0; ask a cluster admin to add a VIPAddressPool or widen one (see examples/vip-address-pool.yaml)',
    },
  },
  { name: "interfaces set and one of them named: admitted", request: aRequest({ interface: "eth1" }), pools: [aPool("edge", { interfaces: ["eth0", "eth1"] })], expected: { pool: "edge" } },
  {
    name: "several pools admit: the first by name, so the status does not flip",
    request: aRequest(),
    pools: [aPool("zeta"), aPool("alpha", { namespaces: ["*"] })],
    expected: { pool: "alpha" },
  },
  {
    name: "a pool that refuses does not stop another that admits",
    request: aRequest({ namespace: "web" }),
    pools: [aPool("a-edge"), aPool("b-web", { namespaces: ["web"] })],
    expected: { pool: "b-web" },
  },
];

describe("decideAdmission: one VIPAddressPool must admit all of a HighAvailabilityVIP", () => {
  it.each(cases)("$name", ({ request, pools, expected }) => {
    const admission = decideAdmission(request, pools);
    if ("pool" in expected) expect(admission).toEqual({ isAdmitted: true, pool: expected.pool });
    else expect(admission).toEqual({ isAdmitted: false, message: expected.message });
  });

  it("describes five pools and counts the rest, so many pools still give a readable message", () => {
    const pools = ["a", "b", "c", "d", "e", "f", "g"].map((name) => aPool(name));
    const admission = decideAdmission(aRequest({ namespace: "web" }), pools);
    expect(admission.isAdmitted).toBe(false);
    if (admission.isAdmitted) return;
    expect(admission.message.match(/pool "/g)).toHaveLength(5);
    expect(admission.message).toContain('pool "e" covers');
    expect(admission.message).not.toContain('pool "f"');
    expect(admission.message).toContain("; and 2 more; ask a cluster admin");
  });

  it("examples/vip-address-pool.yaml is valid and admits examples/vip.yaml on the edge nodes", async () => {
    const poolDocument = parse(await readFile(new URL("../../examples/vip-address-pool.yaml", import.meta.url), "utf8")) as { metadata: { name: string }; spec: unknown };
    const pool = validateVipAddressPoolSpec(poolDocument.spec);
    expect(pool.ok).toBe(true);
    const [vip] = loadHaVipManifests(await readFile(new URL("../../examples/vip.yaml", import.meta.url), "utf8"));
    if (!pool.ok || vip === undefined || !vip.result.ok) throw new Error("the examples do not load");
    const resource = vip.result.value;
    const request: AdmissionRequest = { namespace: resource.metadata.namespace ?? "default", spec: resource.spec, nodes: [edgeNode] };
    expect(decideAdmission(request, [{ name: poolDocument.metadata.name, spec: pool.value }])).toEqual({ isAdmitted: true, pool: "edge" });
    expect(decideAdmission({ ...request, nodes: [edgeNode, plainNode] }, [{ name: poolDocument.metadata.name, spec: pool.value }]).isAdmitted).toBe(false);
  });
});
