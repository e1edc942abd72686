// The VIPAddressPool resource: its validation, the CIDR arithmetic admission relies on, and its generated CRD.
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  buildPoolCrd,
  hasHostBits,
  isInNetwork,
  parseIpAddress,
  parseVipAddress,
  POOL_CRD_FILE,
  renderPoolCrdYaml,
  validateVipAddressPoolSpec,
} from "../../src/api/v1alpha1/index.js";

function network(text: string) {
  const parsed = parseVipAddress(text);
  if (parsed === undefined) throw new Error(`fixture ${text} is not a network`);
  return parsed;
}

function address(text: string) {
  const parsed = parseIpAddress(text);
  if (parsed === undefined) throw new Error(`fixture ${text} is not an address`);
  return parsed;
}

describe("CIDR containment", () => {
  it.each([
    ["192.0.2.10", "192.0.2.0/24", true],
    ["192.0.3.10", "192.0.2.0/24", false],
    ["192.0.2.10", "192.0.2.10", true],
    ["192.0.2.11", "192.0.2.10", false],
    ["10.1.2.3", "0.0.0.0/0", true],
    ["10.1.2.3", "::/0", false],
    ["2001:db8:0:1::50", "2001:db8:0:1::/64", true],
    ["2001:db8:0:2::50", "2001:db8:0:1::/64", false],
    ["2001:db8::1", "2001:db8::/127", true],
    ["2001:db8::2", "2001:db8::/127", false],
    ["fe80::1", "::/0", true],
  ] as const)("%s in %s: %s", (ip, cidr, expected) => {
    expect(isInNetwork(address(ip), network(cidr))).toBe(expected);
  });

  it.each([
    ["192.0.2.0/24", false],
    ["192.0.2.10/24", true],
    ["192.0.2.10", false],
    ["2001:db8::/32", false],
    ["2001:db8::1/64", true],
    ["::/0", false],
  ] as const)("%s has host bits: %s", (cidr, expected) => {
    expect(hasHostBits(network(cidr))).toBe(expected);
  });
});

describe("VIPAddressPool validation", () => {
  it("accepts CIDRs of both families, single addresses, \"*\", a node selector and interfaces", () => {
    const result = validateVipAddressPoolSpec({
      addresses: ["192.168.10.0/24", "2001:db8::/64", "203.0.113.7"],
      namespaces: ["ingress", "*"],
      nodes: { selector: { matchLabels: { "ha-nginx.io/edge": "true" } } },
      interfaces: ["eth0"],
    });
    expect(result.ok).toBe(true);
  });

  it.each([
    ["no addresses", { addresses: [], namespaces: ["ingress"] }, "spec.addresses"],
    ["no namespaces", { addresses: ["192.168.10.0/24"], namespaces: [] }, "spec.namespaces"],
    ["a CIDR with host bits", { addresses: ["192.168.10.5/24"], namespaces: ["ingress"] }, "spec.addresses[0]"],
    ["not an address", { addresses: ["192.168.10.0/33"], namespaces: ["ingress"] }, "spec.addresses[0]"],
    ["a namespace that is no name", { addresses: ["192.168.10.0/24"], namespaces: ["In_gress"] }, "spec.namespaces[0]"],
    ["an empty interface list", { addresses: ["192.168.10.0/24"], namespaces: ["ingress"], interfaces: [] }, "spec.interfaces"],
    ["an unknown field", { addresses: ["192.168.10.0/24"], namespaces: ["ingress"], vlan: 5 }, "spec.vlan"],
  ])("refuses %s, naming the field", (_name, spec, path) => {
    const result = validateVipAddressPoolSpec(spec);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues.map((issue) => issue.path)).toContain(path);
  });
});

describe("the VIPAddressPool CRD", () => {
  const crd = buildPoolCrd();

  it(`the committed file equals what the generator writes (run npm run generate:crd when this fails)`, async () => {
    for (const file of [POOL_CRD_FILE, `charts/ha-nginx/${POOL_CRD_FILE}`]) {
      const committed = await readFile(new URL(`../../${file}`, import.meta.url), "utf8").catch(() => "<missing>");
      expect(committed === renderPoolCrdYaml(crd), `${file} is stale: run npm run generate:crd`).toBe(true);
    }
    expect(parse(renderPoolCrdYaml(crd))).toEqual(crd);
  });

  it("is cluster-scoped, named vipaddresspools.ha-nginx.io with short name vippool, and requires addresses and namespaces", () => {
    expect(crd).toMatchObject({
      metadata: { name: "vipaddresspools.ha-nginx.io" },
      spec: { group: "ha-nginx.io", scope: "Cluster", names: { kind: "VIPAddressPool", plural: "vipaddresspools", shortNames: ["vippool"] } },
    });
    const spec = (crd.spec as { versions: { schema: { openAPIV3Schema: { properties: { spec: { required: string[] } } } } }[] }).versions[0]?.schema.openAPIV3Schema.properties.spec;
    expect(spec?.required).toEqual(["addresses", "namespaces"]);
  });
});
