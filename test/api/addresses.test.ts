import { describe, expect, it } from "vitest";
import { parseIpAddress, parseVipAddress } from "../../src/api/v1alpha1/index.js";

describe("parseVipAddress", () => {
  it.each([
    ["10.77.0.200", { address: "10.77.0.200", family: "ipv4", prefixLength: 32, hasPrefix: false }],
    ["10.77.0.200/24", { address: "10.77.0.200", family: "ipv4", prefixLength: 24, hasPrefix: true }],
    ["2001:DB8:0::10/64", { address: "2001:db8::10", family: "ipv6", prefixLength: 64, hasPrefix: true }],
    ["fe80::1", { address: "fe80::1", family: "ipv6", prefixLength: 128, hasPrefix: false }],
    ["0.0.0.0/0", { address: "0.0.0.0", family: "ipv4", prefixLength: 0, hasPrefix: true }],
  ])("reads %s", (text, expected) => {
    expect(parseVipAddress(text)).toEqual(expected);
  });

  it.each(["", "10.77.0", "10.77.0.256", "010.77.0.1", "10.77.0.1/33", "10.77.0.1/024", "10.77.0.1/", "10.77.0.1/a", "2001:db8::1/129", "fe80::1%eth0", "::ffff:10.0.0.1", "1:2:3:4:5:6:7:8:9", "vip"])(
    "refuses %j",
    (text) => {
      expect(parseVipAddress(text)).toBeUndefined();
    },
  );
});

describe("parseIpAddress", () => {
  it("writes IPv6 in canonical form so equal addresses compare equal", () => {
    expect(parseIpAddress("2001:0db8:0000:0000:0000:0000:0000:0001")).toEqual({ address: "2001:db8::1", family: "ipv6" });
  });

  it("refuses a prefix", () => {
    expect(parseIpAddress("10.77.0.1/32")).toBeUndefined();
  });
});
