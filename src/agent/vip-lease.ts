import type { RouterConfig } from "../vrrp/config.js";
import { computeMasterDownInterval } from "../vrrp/timers.js";
import { seconds, type Seconds } from "../vrrp/units.js";

/** The worst lateness of a timer in the starvation bench (two busy cores): the lease absorbs a renewal this late. */
const RENEWAL_STALL_MS = 100;

/**
 * The lifetime a Master gives its VIPs, renewed with every advert it sends, after which the kernel deletes them by
 * itself: a SIGKILLed agent's address goes without waiting for the agent to come back.
 *
 * Lower bound: the longest any Backup waits for a silent Master, the Master_Down_Interval at priority 1 (RFC 5798
 * §6.1: 3 × interval + 255/256 × interval), which is also how long a leaving or faulty Master holds the VIPs without
 * advertising (RouterConfig.shutdownHold). A lease at least that long, plus a renewal that runs late on a starved
 * event loop, never lapses under a Master the Backups still count as alive, nor during a hand-over.
 * Upper bound: after a crash the address outlives the last advert by the lease plus the kernel's expiry lag (its
 * address-lifetime check runs on a timer rounded to whole seconds: 7 to 181 ms late in test/ns/adapters), while the
 * Backup takes over one Master_Down_Interval after that advert; the overlap is lease + lag − MDI. The kernel counts
 * whole seconds, so the lease is the bound rounded up, at least 1 s: at a 200 ms interval 1 s, an overlap of about
 * 0.3 s plus lag.
 *
 * An expiring IPv4 address takes the other addresses of its subnet with it when it is their primary, unless
 * net.ipv4.conf.<if>.promote_secondaries is set, exactly as an explicit removal does (both measured). A VIP in a
 * subnet of the node's own address is a secondary and a /32 has no secondaries; only a VIP that is the first address
 * of its subnet on the interface takes the ones added after it, usually sibling VIPs, which the next renewal puts back
 * if they are this agent's. The agent leaves the sysctl to the node: its pod cannot write /proc/sys (not privileged),
 * and keepalived sets it only on request.
 */
export function vipLease(config: RouterConfig): Seconds {
  const longestSilence = computeMasterDownInterval(config.version, 1, config.advertisementInterval) + RENEWAL_STALL_MS;
  return seconds(Math.max(1, Math.ceil(longestSilence / 1000)));
}
