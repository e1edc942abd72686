import { describe, expect, it } from "vitest";
import { computeMasterDownInterval, computeVipLease } from "../../src/vrrp/timers.js";
import { centiseconds } from "../../src/vrrp/units.js";

describe("computeVipLease", () => {
  it.each([
    // 3 × 200 + 199 = 799 ms at priority 1, + 100 ms: 1 s, the kernel's least.
    [3, 20, 1],
    [3, 1, 1],
    // 3 × 1000 + 996 + 100 ms.
    [3, 100, 5],
    // v2 skew is 255/256 s whatever the interval: 3 × 3 s + 996 ms + 100 ms.
    [2, 300, 11],
  ] as const)("VRRPv%i at %i cs: %i s", (version, interval, expected) => {
    expect(computeVipLease(version, centiseconds(interval))).toBe(expected);
  });

  it.each([1, 5, 20, 37, 100, 250, 1000])("outlasts the longest silence any Backup waits out, plus a 100 ms late renewal, at %i cs", (interval) => {
    for (const version of [2, 3] as const) {
      const lease = computeVipLease(version, centiseconds(interval));
      const longestMasterDown = Math.max(...[1, 100, 254].map((priority) => computeMasterDownInterval(version, priority, centiseconds(interval))));
      expect(lease * 1000).toBeGreaterThanOrEqual(longestMasterDown + 100);
      expect(lease * 1000).toBeLessThan(Math.max(1000, longestMasterDown + 1100));
      expect(Number.isInteger(lease)).toBe(true);
    }
  });
});
