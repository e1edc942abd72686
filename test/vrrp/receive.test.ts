import { aRouterConfig } from "../fixtures/router-config.js";
import { describe, expect, it } from "vitest";
import { classifyAdvert } from "../../src/vrrp/receive.js";
import { centiseconds } from "../../src/vrrp/units.js";

const config = aRouterConfig();
const advert = { version: 3, vrid: 51, priority: 150, maxAdverInterval: centiseconds(100), addresses: ["192.168.0.150"] } as const;

describe("classifyAdvert keeps not-for-us, rejected and accepted apart", () => {
  it("RFC 5798 §7.1 MUST: another VRID is not for us, and neither is our own advert", () => {
    expect(classifyAdvert({ ...advert, vrid: 52 }, "10.0.0.12", config)).toEqual({ kind: "not-for-us", reason: "other-vrid", ref: "5798 §7.1" });
    expect(classifyAdvert(advert, "10.0.0.11", config)).toEqual({ kind: "not-for-us", reason: "own-advert", ref: "5798 §7.1" });
  });

  it("RFC 5798 §7.1 MUST: a misconfiguration is rejected, not ignored", () => {
    expect(classifyAdvert(advert, "10.0.0.12", { ...config, version: 2 })).toMatchObject({ kind: "rejected", reason: "version-mismatch" });
    expect(classifyAdvert(advert, "10.0.0.12", { ...config, peers: ["10.0.0.13"] })).toMatchObject({ kind: "rejected", reason: "unknown-peer" });
    expect(classifyAdvert(advert, "10.0.0.12", { ...config, priority: 255 })).toMatchObject({ kind: "rejected", reason: "local-address-owner" });
  });

  it('RFC 5798 §7.1 MAY: verify that "Count IPvX Addrs" and the list of IPvX address(es) match ours, and reject an advert that differs', () => {
    // keepalived: "ip address associated with VRID not present in MASTER advert". Another virtual router on our VRID.
    const mismatch = { kind: "rejected", reason: "address-mismatch", ref: "5798 §7.1" };
    expect(classifyAdvert({ ...advert, addresses: ["192.168.0.151"] }, "10.0.0.12", config)).toEqual(mismatch);
    expect(classifyAdvert({ ...advert, addresses: ["192.168.0.150", "192.168.0.151"] }, "10.0.0.12", config)).toEqual(mismatch);
    const two = { ...config, addresses: [{ address: "192.168.0.150", prefixLength: 24 }, { address: "192.168.0.151", prefixLength: 24 }] };
    expect(classifyAdvert(advert, "10.0.0.12", two)).toEqual(mismatch);
    expect(classifyAdvert({ ...advert, addresses: ["192.168.0.150", "192.168.0.150"] }, "10.0.0.12", two)).toEqual(mismatch);
    // A leaving Master (priority 0) of the other virtual router is not ours either.
    expect(classifyAdvert({ ...advert, priority: 0, addresses: ["192.168.0.151"] }, "10.0.0.12", config)).toEqual(mismatch);
  });

  it("RFC 5798 §7.1 MAY: the address lists compare as sets of addresses, whatever their order or IPv6 spelling", () => {
    const two = { ...config, addresses: [{ address: "192.168.0.150", prefixLength: 24 }, { address: "192.168.0.151", prefixLength: 32 }] };
    expect(classifyAdvert({ ...advert, addresses: ["192.168.0.151", "192.168.0.150"] }, "10.0.0.12", two)).toEqual({ kind: "accepted" });
    const ipv6 = { ...config, family: "ipv6", primaryAddress: "fe80::11", addresses: [{ address: "2001:DB8:0:0::150", prefixLength: 64 }] } as const;
    expect(classifyAdvert({ ...advert, addresses: ["2001:db8::150"] }, "fe80::12", ipv6)).toEqual({ kind: "accepted" });
    expect(classifyAdvert({ ...advert, addresses: ["2001:db8::151"] }, "fe80::12", ipv6)).toMatchObject({ kind: "rejected", reason: "address-mismatch" });
  });

  it("RFC 5798 §7.1 MUST: an advert that passes every check is accepted", () => {
    expect(classifyAdvert(advert, "10.0.0.12", config)).toEqual({ kind: "accepted" });
    expect(classifyAdvert(advert, "10.0.0.12", { ...config, peers: ["10.0.0.13", "10.0.0.12"] })).toEqual({ kind: "accepted" });
  });
});
