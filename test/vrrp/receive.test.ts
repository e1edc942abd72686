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

  it("RFC 5798 §7.1 MUST: an advert that passes every check is accepted", () => {
    expect(classifyAdvert(advert, "10.0.0.12", config)).toEqual({ kind: "accepted" });
    expect(classifyAdvert(advert, "10.0.0.12", { ...config, peers: ["10.0.0.13", "10.0.0.12"] })).toEqual({ kind: "accepted" });
  });
});
