import { describe, expect, it } from "vitest";
import { advertisedInterval, computeMasterDownInterval, computeSkewTime } from "../../src/vrrp/timers.js";
import { centiseconds, seconds } from "../../src/vrrp/units.js";

describe("timers", () => {
  it("RFC 5798 §6.1 MUST: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256", () => {
    // (256 - 100) * 1000 ms / 256 = 609.375 ms
    expect(computeSkewTime(3, 100, centiseconds(100))).toBe(609);
    // (256 - 200) * 500 ms / 256 = 109.375 ms
    expect(computeSkewTime(3, 200, centiseconds(50))).toBe(109);
    // (256 - 255) * 1000 ms / 256 = 3.9 ms
    expect(computeSkewTime(3, 255, centiseconds(100))).toBe(3);
  });

  it("RFC 5798 §6.1 MUST: a higher priority never has a longer Skew_Time", () => {
    for (let priority = 1; priority < 255; priority++) {
      expect(computeSkewTime(3, priority + 1, centiseconds(100))).toBeLessThanOrEqual(computeSkewTime(3, priority, centiseconds(100)));
    }
  });

  it("RFC 3768 §6.1 MUST: v2 Skew_Time = (256 - Priority) / 256 seconds, whatever the interval", () => {
    expect(computeSkewTime(2, 100, centiseconds(100))).toBe(609);
    expect(computeSkewTime(2, 100, centiseconds(300))).toBe(609);
  });

  it("RFC 5798 §6.1 MUST: Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_Time", () => {
    expect(computeMasterDownInterval(3, 100, centiseconds(100))).toBe(3609);
    expect(computeMasterDownInterval(3, 200, centiseconds(50))).toBe(1609);
    expect(computeMasterDownInterval(2, 100, centiseconds(200))).toBe(6609);
  });

  it("RFC 5798 §6.4.2 MUST: Master_Adver_Interval is read from a v2 advert in seconds and a v3 advert in centiseconds", () => {
    const addresses = ["192.0.2.1"];
    expect(advertisedInterval({ version: 2, vrid: 1, priority: 1, adverInterval: seconds(3), authentication: { type: "none" }, addresses })).toBe(300);
    expect(advertisedInterval({ version: 3, vrid: 1, priority: 1, maxAdverInterval: centiseconds(25), addresses })).toBe(25);
  });
});
