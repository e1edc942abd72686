import type { Centiseconds, Seconds } from "./units.js";

/** RFC 5798 §5.2.1 (version 3), RFC 3768 §5.3.1 (version 2). */
export type VrrpVersion = 2 | 3;

export type AddressFamily = "ipv4" | "ipv6";

/** RFC 5798 §5.1.1.4 / §5.1.2.3: IP protocol number of VRRP. */
export const VRRP_PROTOCOL = 112;
/** RFC 5798 §5.1.1.3: multicast destination for IPv4. */
export const VRRP_MULTICAST_IPV4 = "224.0.0.18";
/** RFC 5798 §5.1.2.2: multicast destination for IPv6. */
export const VRRP_MULTICAST_IPV6 = "ff02::12";
/** RFC 5798 §5.1.1.3 / §5.1.2.3: TTL / Hop Limit of every advertisement. */
export const VRRP_TTL = 255;

/**
 * RFC 3768 §5.3.6. Type 1 is keepalived's `auth_type PASS`. The 8-byte field is kept as bytes: the comparison
 * with the configured password is byte for byte, and a password is not necessarily text.
 */
export type AdvertAuthentication =
  | { readonly type: "none" }
  | { readonly type: "simple-password"; readonly data: Uint8Array };

/** RFC 3768 §5.3: a VRRPv2 advertisement (IPv4 only). */
export interface AdvertisementV2 {
  readonly version: 2;
  /** RFC 3768 §5.3.3 */
  readonly vrid: number;
  /** RFC 3768 §5.3.4; 0 means the master is leaving. */
  readonly priority: number;
  /** RFC 3768 §5.3.7 */
  readonly adverInterval: Seconds;
  /** RFC 3768 §5.3.6 */
  readonly authentication: AdvertAuthentication;
  /** RFC 3768 §5.3.9, in text form (dotted quad). */
  readonly addresses: readonly string[];
}

/** RFC 5798 §5.2: a VRRPv3 advertisement (IPv4 or IPv6, the family comes from the IP layer). */
export interface AdvertisementV3 {
  readonly version: 3;
  /** RFC 5798 §5.2.3 */
  readonly vrid: number;
  /** RFC 5798 §5.2.4; 0 means the master is leaving. */
  readonly priority: number;
  /** RFC 5798 §5.2.7, 12 bits. */
  readonly maxAdverInterval: Centiseconds;
  /** RFC 5798 §5.2.9, in text form (dotted quad or RFC 5952 IPv6). */
  readonly addresses: readonly string[];
}

export type Advertisement = AdvertisementV2 | AdvertisementV3;

/**
 * Extension, not in RFC 5798: the IP protocol of ha-nginx's hand-over messages (see handover.ts), 253 of the two that
 * RFC 3692 and RFC 4727 set aside for experiments. VRRP routers open their raw sockets for protocol 112 only, so
 * keepalived and FRR vrrpd never receive a hand-over message, and never spend a timer or a log line on one.
 */
export const HANDOVER_PROTOCOL = 253;

/**
 * Extension, not in RFC 5798: ha-nginx's hand-over messages. Each is shaped as a VRRP header of an unassigned type:
 * - "candidacy": a Backup tells the group it can take over, and how well: `priority` is its effective priority, or 0
 *   when it cannot (unhealthy, leaving). Only the Master reads it, to choose a successor.
 * - "nomination": a Master that is leaving names the Backup that takes over at once on its priority-0 advert.
 */
export type HandoverKind = "candidacy" | "nomination";

export interface HandoverMessage {
  readonly kind: HandoverKind;
  /**
   * The fields shared with an advert, checked as an advert's are (VRID, version, VRRPv2 authentication). `addresses`
   * holds exactly one address: the sender's own (candidacy) or the nominee's (nomination). The interval field is the
   * sender's candidacy interval (candidacy), by which a receiver ages it, or its advertisement interval (nomination).
   */
  readonly header: Advertisement;
}
