import { aRouterConfig } from "../fixtures/router-config.js";
import { describe, expect, it } from "vitest";
import type { RouterConfig } from "../../src/vrrp/config.js";
import { advertDestinations, buildAdvert, checkRouterConfig, computeEffectivePriority, encodeContextFor } from "../../src/vrrp/config.js";
import { passwordToAuthData } from "../../src/vrrp/codec.js";
import { centiseconds, milliseconds as ms } from "../../src/vrrp/units.js";

const aConfig = aRouterConfig;

describe("RouterConfig", () => {
  it("a sound configuration has no problems", () => {
    expect(checkRouterConfig(aConfig())).toEqual([]);
    expect(checkRouterConfig(aConfig({ version: 2, password: "12345678", advertisementInterval: centiseconds(300) }))).toEqual([]);
  });

  it("each rule the core relies on is reported by name", () => {
    const cases: ReadonlyArray<[Partial<RouterConfig>, string]> = [
      [{ vrid: 0 }, "vrid-out-of-range"],
      [{ priority: 0 }, "priority-out-of-range"],
      [{ advertisementInterval: centiseconds(4096) }, "interval-out-of-range"],
      [{ version: 2, advertisementInterval: centiseconds(150) }, "interval-out-of-range"],
      [{ addresses: [] }, "no-addresses"],
      [{ addresses: Array.from({ length: 256 }, (_, index) => ({ address: `10.1.${index >> 8}.${index & 255}`, prefixLength: 32 })) }, "too-many-addresses"],
      [{ addresses: [{ address: "2001:db8::1", prefixLength: 64 }] }, "address-wrong-family"],
      [{ addresses: [{ address: "192.168.0.150", prefixLength: 33 }] }, "prefix-out-of-range"],
      [{ primaryAddress: "fe80::1" }, "primary-address-wrong-family"],
      [{ peers: ["nonsense"] }, "peer-wrong-family"],
      [{ version: 2, family: "ipv6", primaryAddress: "fe80::1", addresses: [{ address: "2001:db8::1", prefixLength: 64 }] }, "v2-needs-ipv4"],
      [{ password: "secret" }, "password-needs-v2"],
      [{ preemption: { mode: "delayed", delay: ms(-1) } }, "preempt-delay-negative"],
      [{ garp: { repeat: -1, refresh: ms(0) } }, "garp-out-of-range"],
      [{ shutdownHold: ms(-1) }, "shutdown-hold-negative"],
      [{ healthWeight: 10 }, "health-weight-positive"],
    ];
    for (const [overrides, problem] of cases) expect(checkRouterConfig(aConfig(overrides))).toContain(problem);
  });

  it("RFC 5798 §6.4.3 MUST: an IPv6 router's primary address has the scope of its unicast peers, so the tie-break compares like with like", () => {
    const ipv6 = (primaryAddress: string, peers: readonly string[]): RouterConfig =>
      aConfig({ family: "ipv6", primaryAddress, peers, addresses: [{ address: "2001:db8::150", prefixLength: 64 }] });
    // A link-local primary against global sources: each of two Masters would find its own address the higher.
    expect(checkRouterConfig(ipv6("fe80::11", ["2001:db8::12"]))).toEqual(["primary-address-scope-mismatch"]);
    expect(checkRouterConfig(ipv6("2001:db8::11", ["fe80::12"]))).toEqual(["primary-address-scope-mismatch"]);
    expect(checkRouterConfig(ipv6("2001:db8::11", ["2001:db8::12", "fe80::13"]))).toEqual(["primary-address-scope-mismatch"]);
    expect(checkRouterConfig(ipv6("2001:db8::11", ["2001:db8::12"]))).toEqual([]);
    expect(checkRouterConfig(ipv6("fe80::11", ["FE80::12%eth0"]))).toEqual([]);
    expect(checkRouterConfig(ipv6("fe80::11", []))).toEqual([]);
  });

  it("RFC 5798 §5.1.1.2 MUST: adverts go to 224.0.0.18 or ff02::12 unless unicast peers are configured", () => {
    expect(advertDestinations(aConfig())).toEqual(["224.0.0.18"]);
    expect(advertDestinations(aConfig({ family: "ipv6" }))).toEqual(["ff02::12"]);
    expect(advertDestinations(aConfig({ peers: ["10.0.0.12", "10.0.0.13"] }))).toEqual(["10.0.0.12", "10.0.0.13"]);
    expect(encodeContextFor(aConfig(), "10.0.0.12")).toEqual({ family: "ipv4", source: "10.0.0.11", destination: "10.0.0.12", v3Ipv4Checksum: "pseudo-header" });
  });

  it("RFC 5798 §7.2 MUST: the advert carries VRID, priority, interval and every virtual address", () => {
    expect(buildAdvert(aConfig(), 100)).toEqual({ version: 3, vrid: 51, priority: 100, maxAdverInterval: 100, addresses: ["192.168.0.150"] });
    expect(buildAdvert(aConfig({ version: 2, password: "pw", advertisementInterval: centiseconds(200) }), 0)).toEqual({
      version: 2,
      vrid: 51,
      priority: 0,
      adverInterval: 2,
      authentication: { type: "simple-password", data: passwordToAuthData("pw") },
      addresses: ["192.168.0.150"],
    });
  });

  it("RFC 2338 §5.3.6.1: a password over 8 bytes is sent as its first 8, as keepalived cuts auth_pass", () => {
    const long = aConfig({ version: 2, password: "longpassword", advertisementInterval: centiseconds(100) });
    expect(checkRouterConfig(long)).toEqual([]);
    expect(buildAdvert(long, 100)).toMatchObject({ authentication: { type: "simple-password", data: passwordToAuthData("longpass") } });
  });

  it("keepalived weight: a negative weight lowers the priority while unhealthy, clamped to 1..254", () => {
    expect(computeEffectivePriority(aConfig({ healthWeight: -30 }), true)).toBe(100);
    expect(computeEffectivePriority(aConfig({ healthWeight: -30 }), false)).toBe(70);
    expect(computeEffectivePriority(aConfig({ healthWeight: -300 }), false)).toBe(1);
    expect(computeEffectivePriority(aConfig({ priority: 255, healthWeight: -1 }), false)).toBe(254);
    expect(computeEffectivePriority(aConfig({ healthWeight: 0 }), false)).toBe(100);
  });
});
