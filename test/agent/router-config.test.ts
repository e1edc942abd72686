import { describe, expect, it } from "vitest";
import { haVipSpecSchema, type HaVipSpecInput } from "../../src/api/v1alpha1/schema.js";
import { routerConfigFromSpec, type NodeContext } from "../../src/agent/router-config.js";

function configFor(spec: Partial<HaVipSpecInput>, context: Partial<NodeContext> = {}) {
  return routerConfigFromSpec(haVipSpecSchema.parse({ addresses: ["fd77::200/64"], virtualRouterID: 51, ...spec }), {
    node: "n1",
    // What the agent locates for IPv6: the interface's link-local address (RFC 5798 §5.1.2.1).
    primaryAddress: "fe80::11",
    // Loopback, IPv4, the link-local, a VIP left by a crashed run, an address on another interface and the node's own.
    ownAddresses: ["127.0.0.1", "::1", "10.77.0.11", "fe80::11", "fd77::200", "fd00:cafe::1", "fd77::11"],
    vrid: 51,
    publishedPeers: [],
    password: undefined,
    ...context,
  });
}

describe("routerConfigFromSpec: the primary address is the source of this router's adverts", () => {
  it("RFC 5798 §6.4.3: IPv6 unicast adverts to a global peer leave from the node's global address, so that is the primary address the tie-break compares", () => {
    const result = configFor({ transport: { mode: "Unicast", peers: ["fd77::12"] } });
    expect(result).toMatchObject({ ok: true, config: { primaryAddress: "fd77::11", peers: ["fd77::12"] } });
  });

  it("RFC 5798 §5.1.2.1: IPv6 multicast adverts leave from the link-local address, which stays the primary address", () => {
    expect(configFor({ transport: { mode: "Multicast" } })).toMatchObject({ ok: true, config: { primaryAddress: "fe80::11" } });
    // Unicast peers given by their link-local addresses are reached from ours.
    expect(configFor({ transport: { mode: "Unicast", peers: ["fe80::12"] } })).toMatchObject({ ok: true, config: { primaryAddress: "fe80::11" } });
  });

  it("RFC 5798 §6.4.3: an IPv6 unicast node without a global address of its own is refused rather than left to compare unlike addresses", () => {
    const result = configFor({ transport: { mode: "Unicast", peers: ["fd77::12"] } }, { ownAddresses: ["::1", "fe80::11"] });
    expect(result).toEqual({ ok: false, problems: ["primary-address-scope-mismatch"] });
  });

  it("RFC 5798 §7.2: an IPv4 router keeps the address it was given", () => {
    const result = configFor({ addresses: ["10.77.0.200/24"], transport: { mode: "Unicast", peers: ["10.77.0.12"] } }, { primaryAddress: "10.77.0.11" });
    expect(result).toMatchObject({ ok: true, config: { primaryAddress: "10.77.0.11" } });
  });
});

describe("routerConfigFromSpec: the advertisement interval a spec leaves out", () => {
  it("RFC 5798 §6.1: VRRPv3 advertises every 250 ms, so a Backup's Master_Down_Interval stays under 1 s at any priority", () => {
    const result = configFor({});
    expect(result).toMatchObject({ ok: true, config: { advertisementInterval: 25 } });
  });

  it("RFC 3768 §5.3.7: VRRPv2 counts whole seconds, so it advertises every second", () => {
    const result = configFor({ addresses: ["10.77.0.200/24"], vrrpVersion: 2 }, { primaryAddress: "10.77.0.11" });
    expect(result).toMatchObject({ ok: true, config: { advertisementInterval: 100 } });
  });

  it("a written interval wins over the default", () => {
    expect(configFor({ advertisementInterval: "1s" })).toMatchObject({ ok: true, config: { advertisementInterval: 100 } });
  });
});

describe("routerConfigFromSpec: successor naming (extension, not in RFC 5798)", () => {
  it("is on by default: the Backup repeats its candidacy every 5 s", () => {
    expect(configFor({ transport: { mode: "Multicast" } })).toMatchObject({ ok: true, config: { candidacyInterval: 5000 } });
  });

  it("transport.successorNaming Disabled leaves RFC 5798 alone: no candidacy, so no Master ever names this router", () => {
    const result = configFor({ transport: { mode: "Multicast", successorNaming: "Disabled" } });
    expect(result.ok && result.config.candidacyInterval).toBeUndefined();
  });
});
