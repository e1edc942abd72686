import { describe, expect, it } from "vitest";
import { compareContenders, outranks } from "../../src/vrrp/election.js";

describe("election", () => {
  it("RFC 5798 §6.4.3 MUST: the higher priority wins whatever the addresses", () => {
    expect(outranks({ priority: 101, address: "10.0.0.1" }, { priority: 100, address: "10.0.0.200" }, "ipv4")).toBe(true);
    expect(outranks({ priority: 99, address: "10.0.0.250" }, { priority: 100, address: "10.0.0.1" }, "ipv4")).toBe(false);
  });

  it("RFC 5798 §6.4.3 MUST: on equal priority the numerically higher primary IPv4 address wins", () => {
    // As text "10.0.0.9" > "10.0.0.10"; as numbers it is the other way round.
    expect(outranks({ priority: 100, address: "10.0.0.10" }, { priority: 100, address: "10.0.0.9" }, "ipv4")).toBe(true);
    expect(outranks({ priority: 100, address: "10.0.0.9" }, { priority: 100, address: "10.0.0.10" }, "ipv4")).toBe(false);
  });

  it("RFC 5798 §6.4.3 MUST: on equal priority the numerically higher primary IPv6 address wins", () => {
    expect(outranks({ priority: 100, address: "fe80::1:0" }, { priority: 100, address: "fe80::ffff" }, "ipv6")).toBe(true);
    expect(outranks({ priority: 100, address: "fe80::ffff" }, { priority: 100, address: "fe80::1:0" }, "ipv6")).toBe(false);
  });

  it("RFC 5798 §6.4.3 MUST: the same router neither wins nor loses against itself", () => {
    expect(compareContenders({ priority: 100, address: "2001:db8::1" }, { priority: 100, address: "2001:DB8:0::1" }, "ipv6")).toBe(0);
  });

  it("throws on a programmer error: an address of another family", () => {
    expect(() => compareContenders({ priority: 1, address: "10.0.0.1" }, { priority: 1, address: "fe80::1" }, "ipv4")).toThrow(TypeError);
  });
});
