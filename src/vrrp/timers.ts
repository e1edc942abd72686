// RFC 5798 §6.1 timer arithmetic. Unit conversions of the protocol happen here (and in units.ts) only.

import type { Advertisement, VrrpVersion } from "./advertisement.js";
import type { Centiseconds, Milliseconds, Seconds } from "./units.js";
import { centisecondsToMilliseconds, milliseconds, seconds, secondsToCentiseconds } from "./units.js";

/**
 * RFC 5798 §6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
 * RFC 3768 §6.1 (v2): Skew_Time = (256 - Priority) / 256 seconds, independent of the interval.
 * Rounded down to whole milliseconds: a higher priority then never waits longer than a lower one.
 */
export function computeSkewTime(version: VrrpVersion, priority: number, masterAdverInterval: Centiseconds): Milliseconds {
  const weight = 256 - priority;
  if (version === 2) return milliseconds(Math.floor((weight * 1000) / 256));
  return milliseconds(Math.floor((weight * centisecondsToMilliseconds(masterAdverInterval)) / 256));
}

/** RFC 5798 §6.1: Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_Time. */
export function computeMasterDownInterval(version: VrrpVersion, priority: number, masterAdverInterval: Centiseconds): Milliseconds {
  return milliseconds(3 * centisecondsToMilliseconds(masterAdverInterval) + computeSkewTime(version, priority, masterAdverInterval));
}

/** RFC 5798 §6.4.2 "Set Master_Adver_Interval to Adver Interval contained in the ADVERTISEMENT", in one unit for v2 and v3. */
export function advertisedInterval(advert: Advertisement): Centiseconds {
  return advert.version === 2 ? secondsToCentiseconds(advert.adverInterval) : advert.maxAdverInterval;
}


/** How late a renewal may run on a starved event loop and still land within the lease. */
const RENEWAL_STALL_MS = 100;

/**
 * The least lifetime a Master's VIPs may have left at any moment: the longest a Backup waits for a silent Master
 * (priority 1) plus a late renewal. Below it a stalled Master could lose its VIPs while no Backup may take over yet.
 */
export function computeVipLeaseFloor(version: VrrpVersion, advertisementInterval: Centiseconds): Milliseconds {
  return milliseconds(computeMasterDownInterval(version, 1, advertisementInterval) + RENEWAL_STALL_MS);
}

/**
 * The lifetime a Master gives its VIPs, so the kernel deletes a SIGKILLed agent's addresses by itself: the floor in
 * whole seconds, as the kernel counts. docs/design-notes/vip-lease.md has the measured bounds.
 */
export function computeVipLease(version: VrrpVersion, advertisementInterval: Centiseconds): Seconds {
  return seconds(Math.max(1, Math.ceil(computeVipLeaseFloor(version, advertisementInterval) / 1000)));
}

/**
 * The first multiple of `period` after `now` on the monotonic clock: a periodic timer reset there fires no later than
 * one reset to `now + period`, and every router of a process on the same period fires in the same instant.
 */
export function nextOnGrid(now: Milliseconds, period: Milliseconds): Milliseconds {
  return milliseconds((Math.floor(now / period) + 1) * period);
}
