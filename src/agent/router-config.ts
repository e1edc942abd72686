import { parseDuration } from "../api/v1alpha1/duration.js";
import { parseIpAddress, parseVipAddress } from "../api/v1alpha1/ip.js";
import { addressFamilyOf, advertisementIntervalOf, priorityOf, type HaVipSpec } from "../api/v1alpha1/schema.js";
import { formatAddress, isLinkLocalAddress, parseAddress } from "../vrrp/codec.js";
import { checkRouterConfig, type RouterConfig } from "../vrrp/config.js";
import { computeMasterDownInterval } from "../vrrp/timers.js";
import { milliseconds, millisecondsToCentiseconds } from "../vrrp/units.js";

export interface NodeContext {
  readonly node: string;
  /**
   * The node's own address on the VRRP interface: the advert source and the tie-breaker (RFC 5798 §7.2); for IPv6 its
   * link-local address, which unicast to global peers replaces (see advertSource).
   */
  readonly primaryAddress: string;
  /** Every address the node holds, so it never lists itself as a unicast peer. */
  readonly ownAddresses: readonly string[];
  /** From the spec, or allocated by the controller and read from status. */
  readonly vrid: number;
  /** Unicast peers the controller publishes (the selected nodes' addresses); the spec's extra peers are added. */
  readonly publishedPeers: readonly string[];
  /** VRRPv2 PASS password, read from a Secret or a file; never logged. */
  readonly password: string | undefined;
}

/**
 * After hearing its successor, a leaving Master keeps the VIPs this long: enough for the successor's first gratuitous
 * ARP (it follows the first advert by the time to add the address and send it), and shorter than its burst of
 * `garp.repeat` ARPs 100 ms apart, so a client that asked the old Master in between is corrected.
 */
const RELEASE_LINGER = milliseconds(200);

/**
 * Extension, not in RFC 5798 (src/vrrp/handover.ts): how often each Backup repeats its candidacy, whatever the
 * advertisement interval. A change of health is sent at once, so the repeat only ages out Backups that vanished
 * without a word; naming one costs what RFC 5798 costs anyway (Skew_Time), so it can be slow and cheap.
 */
const CANDIDACY_INTERVAL = milliseconds(5000);

/** keepalived warns when it cuts a long auth_pass to the 8 bytes RFC 2338 §5.3.6.1 carries; so does the agent. */
export function passwordLengthWarning(password: string): string | undefined {
  const length = new TextEncoder().encode(password).length;
  return length > 8 ? `the VRRPv2 password is ${length} bytes; only its first 8 are sent and compared, as keepalived does` : undefined;
}

export type RouterConfigResult =
  | { readonly ok: true; readonly config: RouterConfig }
  | { readonly ok: false; readonly problems: readonly string[] };

// A Master that is asked to leave keeps the VIPs until it hears the new Master; if none speaks, it gives up after the
// time a Backup needs to notice a silent Master, so the address is never held longer than a crash would hold it.
function shutdownHoldFor(config: Omit<RouterConfig, "shutdownHold">): number {
  return computeMasterDownInterval(config.version, 1, config.advertisementInterval);
}

/** RFC 4291 §2.5.3: ::1. */
function isLoopback(bytes: Uint8Array): boolean {
  return bytes.every((byte, index) => byte === (index === bytes.length - 1 ? 1 : 0));
}

function commonPrefixBits(a: Uint8Array, b: Uint8Array): number {
  for (let index = 0; index < a.length; index++) {
    const difference = (a[index] ?? 0) ^ (b[index] ?? 0);
    if (difference !== 0) return index * 8 + Math.clz32(difference) - 24;
  }
  return a.length * 8;
}

/**
 * RFC 5798 §6.4.3 compares the source of a received advert with our primary address, so ours must be the source of
 * our own adverts. IPv6 multicast adverts leave from the link-local address the agent located (§5.1.2.1); unicast
 * adverts to global peers leave from the global address the kernel picks for them: the node's own address sharing the
 * longest prefix with a peer (RFC 6724 rule 8), never a VIP, which the VIP adapters deprecate (rule 3). Without such
 * an address the located one stays, and checkRouterConfig refuses the mismatch.
 */
function advertSource(located: string, peers: readonly string[], ownAddresses: readonly string[], vips: readonly string[]): string {
  const globalPeers = peers.flatMap((peer) => {
    const bytes = parseAddress(peer, "ipv6");
    return bytes === undefined || isLinkLocalAddress(bytes) ? [] : [bytes];
  });
  if (globalPeers.length === 0) return located;
  const isVip = new Set(vips.flatMap((vip) => {
    const bytes = parseAddress(vip, "ipv6");
    return bytes === undefined ? [] : [formatAddress(bytes)];
  }));
  let best: { readonly address: string; readonly matched: number } | undefined;
  for (const address of ownAddresses) {
    const bytes = parseAddress(address, "ipv6");
    if (bytes === undefined || isLinkLocalAddress(bytes) || isLoopback(bytes) || isVip.has(formatAddress(bytes))) continue;
    const matched = Math.max(...globalPeers.map((peer) => commonPrefixBits(bytes, peer)));
    if (best === undefined || matched > best.matched) best = { address, matched };
  }
  return best?.address ?? located;
}

/** Builds the state machine's configuration for one node from a validated spec. */
export function routerConfigFromSpec(spec: HaVipSpec, context: NodeContext): RouterConfigResult {
  const family = addressFamilyOf(spec);
  const own = new Set(context.ownAddresses.map((text) => parseIpAddress(text)?.address ?? text));
  const peers =
    spec.transport.mode === "Multicast"
      ? []
      : [...new Set([...context.publishedPeers, ...spec.transport.peers].map((text) => parseIpAddress(text)?.address ?? text))].filter(
          (peer) => !own.has(peer),
        );
  const addresses = spec.addresses.flatMap((text) => {
    const vip = parseVipAddress(text);
    return vip === undefined ? [] : [{ address: vip.address, prefixLength: vip.prefixLength }];
  });
  const primaryAddress =
    family === "ipv6" ? advertSource(context.primaryAddress, peers, context.ownAddresses, addresses.map((vip) => vip.address)) : context.primaryAddress;
  const withoutHold = {
    vrid: context.vrid,
    version: spec.vrrpVersion,
    family,
    priority: priorityOf(spec, context.node),
    addresses,
    primaryAddress,
    advertisementInterval: millisecondsToCentiseconds(milliseconds(parseDuration(advertisementIntervalOf(spec)))),
    preemption: {
      mode: spec.preemption.mode === "Always" ? "always" : spec.preemption.mode === "Never" ? "never" : "delayed",
      delay: milliseconds(spec.preemption.delay === undefined ? 0 : parseDuration(spec.preemption.delay)),
    },
    peers,
    password: spec.vrrpVersion === 2 ? context.password : undefined,
    garp: { repeat: spec.garp.repeat, refresh: milliseconds(parseDuration(spec.garp.refresh)) },
    v3Ipv4Checksum: "pseudo-header",
    healthWeight: spec.healthCheck?.weight ?? 0,
    releaseLinger: RELEASE_LINGER,
    ...(spec.transport.successorNaming === "Enabled" ? { candidacyInterval: CANDIDACY_INTERVAL } : {}),
  } as const satisfies Omit<RouterConfig, "shutdownHold">;
  const config: RouterConfig = { ...withoutHold, shutdownHold: milliseconds(shutdownHoldFor(withoutHold)) };
  const problems = checkRouterConfig(config);
  return problems.length === 0 ? { ok: true, config } : { ok: false, problems };
}
