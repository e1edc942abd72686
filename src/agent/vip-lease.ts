import type { RouterConfig } from "../vrrp/config.js";
import { computeMasterDownInterval } from "../vrrp/timers.js";
import { seconds, type Seconds } from "../vrrp/units.js";

/** How late a renewal may run on a starved event loop and still land within the lease (docs/design-notes/vip-lease.md). */
const RENEWAL_STALL_MS = 100;

/**
 * The lifetime a Master gives its VIPs, renewed with every advert, after which the kernel deletes them by itself: a
 * SIGKILLed agent's address goes without the agent. At least the longest a Backup waits for a silent Master (the
 * Master_Down_Interval at priority 1, also the shutdown hold) plus a late renewal, so it never lapses under a live
 * Master; whole seconds, because the kernel counts in seconds. docs/design-notes/vip-lease.md has the measured bounds.
 */
export function vipLease(config: RouterConfig): Seconds {
  const longestSilence = computeMasterDownInterval(config.version, 1, config.advertisementInterval) + RENEWAL_STALL_MS;
  return seconds(Math.max(1, Math.ceil(longestSilence / 1000)));
}
