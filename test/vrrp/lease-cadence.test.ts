import { describe, expect, it } from "vitest";
import { initialState, nextDeadline, step, type RouterState } from "../../src/vrrp/machine.js";
import { computeVipLease, computeVipLeaseFloor } from "../../src/vrrp/timers.js";
import { centiseconds, milliseconds as ms } from "../../src/vrrp/units.js";
import { aRouterConfig } from "../fixtures/router-config.js";

/** Runs an address owner (Master at once) through `seconds` of adverts, each timer fired `lateBy` ms late. */
function runMaster(intervalCs: number, seconds: number, lateBy = 0): { adverts: number; renewals: number; leastLeft: number } {
  const config = aRouterConfig({ priority: 255, advertisementInterval: centiseconds(intervalCs) });
  const lease = computeVipLease(config.version, config.advertisementInterval) * 1000;
  let { state } = step(initialState(config), { kind: "started", now: ms(0) });
  let grantedAt = 0;
  let adverts = 0;
  let renewals = 0;
  let leastLeft = Infinity;
  while (true) {
    const deadline = nextDeadline(state);
    if (deadline === undefined || deadline > seconds * 1000) break;
    const now = deadline + lateBy;
    const result = step(state as RouterState, { kind: "timer-expired", now: ms(now) });
    state = result.state;
    adverts += result.actions.filter((action) => action.kind === "send-advert").length;
    if (result.actions.some((action) => action.kind === "renew-vip-lease")) {
      renewals += 1;
      grantedAt = now;
    }
    // Backups time the silence from this advert: the lease must outlast the longest of their waits from here.
    leastLeft = Math.min(leastLeft, grantedAt + lease - now);
  }
  return { adverts, renewals, leastLeft };
}

describe("the VIP lease a Master renews (extension, not in RFC 5798)", () => {
  it("at 1 s adverts every advert renews it: the lease is the floor rounded up to whole seconds, less than an interval over it", () => {
    const { adverts, renewals } = runMaster(100, 30);
    expect(adverts).toBeGreaterThanOrEqual(29);
    expect(renewals).toBe(adverts);
  });

  it.each([
    [25, 4],
    [10, 6],
    [5, 15],
  ])("at %i cs adverts it renews with one advert in %i, never leaving less than the floor after an advert", (intervalCs, everyNth) => {
    const { adverts, renewals, leastLeft } = runMaster(intervalCs, 30);
    expect(leastLeft).toBeGreaterThanOrEqual(computeVipLeaseFloor(3, centiseconds(intervalCs)));
    expect(Math.round(adverts / renewals)).toBe(everyNth);
  });

  it("a Master whose timers fire late renews sooner, so a slow loop still keeps the floor", () => {
    const { leastLeft } = runMaster(25, 30, 90);
    expect(leastLeft).toBeGreaterThanOrEqual(computeVipLeaseFloor(3, centiseconds(25)));
  });
});
