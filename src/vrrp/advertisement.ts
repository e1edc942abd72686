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
