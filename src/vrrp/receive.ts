// RFC 5798 §7.1 checks that need this router's configuration. The codec has already dropped malformed packets;
// here an advert is either not for us (another virtual router, or our own looped back), rejected (a
// misconfiguration or a forgery, worth a log line) or accepted and handed to the state machine.

import type { AddressFamily, Advertisement, HandoverMessage } from "./advertisement.js";
import { HANDOVER_PROTOCOL, VRRP_MULTICAST_IPV4, VRRP_MULTICAST_IPV6, VRRP_PROTOCOL } from "./advertisement.js";
import type { DecodeContext, DecodeError, DecodeErrorCode } from "./codec.js";
import { decodeAdvertisement, decodeHandover, decodeIpv4Datagram, formatAddress, parseAddress, passwordToAuthData, sameBytes } from "./codec.js";
import type { RouterConfig } from "./config.js";
import { advertisedInterval } from "./timers.js";

/** A VRRP datagram as the router's socket delivered it. */
export interface ReceivedDatagram {
  readonly family: AddressFamily;
  /**
   * IPv4: the whole IP datagram, header included, as a raw socket hands it over. IPv6: the VRRP message only, because
   * the kernel never hands the IPv6 header to a raw socket, so the hop limit is not checked and the kernel verifies
   * the checksum (docs/design-notes/ipv6-receive.md).
   */
  readonly bytes: Uint8Array;
  readonly source: string;
}

/** What became of a datagram: an advert for the state machine, or a discard with its reason. */
export type Reception =
  | { readonly kind: "advert"; readonly advert: Advertisement; readonly source: string }
  | { readonly kind: "handover"; readonly message: HandoverMessage; readonly source: string }
  | { readonly kind: "discard"; readonly reason: DecodeErrorCode | "other-family"; readonly detail: string };

function describeDecodeError(error: DecodeError): string {
  const { code, rfc, ...details } = error;
  return `${code} (RFC ${rfc}) ${JSON.stringify(details)}`;
}

type IpLayer = { readonly ok: true; readonly payload: Uint8Array; readonly context: DecodeContext } | { readonly ok: false; readonly discard: Reception };

/**
 * RFC 5798 §7.1 checks that need the IP layer. The v3 checksum's pseudo-header takes the packet's destination, which an
 * IPv6 raw socket does not show, so there it is the one this router listens on. The TTL is checked for the group only:
 * keepalived skips it for unicast.
 */
function readIpLayer(datagram: ReceivedDatagram, config: RouterConfig, protocol: number): IpLayer {
  if (datagram.family !== config.family) return { ok: false, discard: { kind: "discard", reason: "other-family", detail: datagram.family } };
  let payload = datagram.bytes;
  let destination = config.peers.length > 0 ? config.primaryAddress : datagram.family === "ipv4" ? VRRP_MULTICAST_IPV4 : VRRP_MULTICAST_IPV6;
  let ttl: number | undefined;
  if (datagram.family === "ipv4") {
    const ip = decodeIpv4Datagram(datagram.bytes, protocol);
    if (!ip.ok) return { ok: false, discard: { kind: "discard", reason: ip.error.code, detail: describeDecodeError(ip.error) } };
    payload = ip.value.payload;
    destination = ip.value.destination;
    if (destination === VRRP_MULTICAST_IPV4) ttl = ip.value.ttl;
  }
  const context: DecodeContext = {
    family: config.family,
    source: datagram.source,
    destination,
    v3Ipv4Checksum: config.v3Ipv4Checksum,
    version: config.version,
    ...(ttl === undefined ? {} : { ttl }),
  };
  return { ok: true, payload, context };
}

/** A datagram from the VRRP socket (protocol 112). */
export function receiveDatagram(datagram: ReceivedDatagram, config: RouterConfig): Reception {
  const ip = readIpLayer(datagram, config, VRRP_PROTOCOL);
  if (!ip.ok) return ip.discard;
  const decoded = decodeAdvertisement(ip.payload, ip.context);
  if (!decoded.ok) return { kind: "discard", reason: decoded.error.code, detail: describeDecodeError(decoded.error) };
  return { kind: "advert", advert: decoded.value, source: datagram.source };
}

/** Extension, not in RFC 5798: a datagram from the hand-over socket (HANDOVER_PROTOCOL), checked as an advert is. */
export function receiveHandoverDatagram(datagram: ReceivedDatagram, config: RouterConfig): Reception {
  const ip = readIpLayer(datagram, config, HANDOVER_PROTOCOL);
  if (!ip.ok) return ip.discard;
  const decoded = decodeHandover(ip.payload, ip.context);
  if (!decoded.ok) return { kind: "discard", reason: decoded.error.code, detail: describeDecodeError(decoded.error) };
  return { kind: "handover", message: decoded.value, source: datagram.source };
}

export type NotForUsReason =
  /** RFC 5798 §7.1: "MUST verify that the VRID is configured on the receiving interface". */
  | "other-vrid"
  /** Our own advert, looped back by multicast: not a second router. */
  | "own-advert";

export type RejectReason =
  /** RFC 5798 §7.1: the version this router runs. */
  | "version-mismatch"
  /** keepalived `check_unicast_src`: in unicast mode only configured peers may speak. */
  | "unknown-peer"
  /** RFC 2338 §7.1: authentication type or password differs. */
  | "auth-mismatch"
  /** RFC 3768 §7.1: a v2 advert interval must equal ours. */
  | "interval-mismatch"
  /**
   * RFC 5798 §7.1: "MAY verify that "Count IPvX Addrs" and the list of IPvX address(es) match the IPvX Address(es)
   * configured for the VRID". keepalived does, and drops the advert ("ip address associated with VRID not present in
   * MASTER advert"): it comes from another virtual router that shares our VRID on the segment.
   */
  | "address-mismatch"
  /** RFC 5798 §7.1: the address owner (priority 255) discards adverts. */
  | "local-address-owner";

export type AdvertClassification =
  | { readonly kind: "accepted" }
  | { readonly kind: "not-for-us"; readonly reason: NotForUsReason; readonly ref: string }
  | { readonly kind: "rejected"; readonly reason: RejectReason; readonly ref: string };

export function isSameAddress(a: string, b: string, config: RouterConfig): boolean {
  const left = parseAddress(a, config.family);
  const right = parseAddress(b, config.family);
  return left !== undefined && right !== undefined && sameBytes(left, right);
}

/** Canonical text of each address, so a list compares as a set whatever its order and spelling. */
function addressSet(addresses: readonly string[], config: RouterConfig): Set<string> | undefined {
  const keys = new Set<string>();
  for (const address of addresses) {
    const bytes = parseAddress(address, config.family);
    if (bytes === undefined) return undefined;
    keys.add(formatAddress(bytes));
  }
  return keys;
}

/** Each configuration's own VIPs in canonical text, worked out once: a Backup checks them against every advert. */
const configuredAddressSets = new WeakMap<RouterConfig, Set<string> | undefined>();

function configuredAddressSet(config: RouterConfig): Set<string> | undefined {
  if (!configuredAddressSets.has(config)) configuredAddressSets.set(config, addressSet(config.addresses.map((vip) => vip.address), config));
  return configuredAddressSets.get(config);
}

function isSameAddressList(advertised: readonly string[], config: RouterConfig): boolean {
  const ours = configuredAddressSet(config);
  if (ours === undefined || advertised.length !== config.addresses.length) return false;
  // The codec writes canonical text, so a decoded advert matches without parsing its addresses again.
  if (new Set(advertised).size === ours.size && advertised.every((address) => ours.has(address))) return true;
  const theirs = addressSet(advertised, config);
  return theirs !== undefined && theirs.size === ours.size && [...ours].every((key) => theirs.has(key));
}

/** `source` is the IP source address of the packet (the sender's primary address). */
export function classifyAdvert(advert: Advertisement, source: string, config: RouterConfig): AdvertClassification {
  const sender = classifySender(advert, source, config);
  if (sender.kind !== "accepted") return sender;
  if (advert.version === 2 && advertisedInterval(advert) !== config.advertisementInterval) {
    return { kind: "rejected", reason: "interval-mismatch", ref: "3768 §7.1" };
  }
  // Whatever the priority: a leaving Master (priority 0) of the other virtual router must not start our Skew_Time. For
  // v2 this bends RFC 3768 §7.1, "If the packet was not generated by the address owner (Priority does not equal 255
  // (decimal)), the receiver MUST drop the packet, otherwise continue processing": like keepalived we drop the owner's
  // too, since an owner of other addresses owns the other virtual router, not ours.
  if (!isSameAddressList(advert.addresses, config)) return { kind: "rejected", reason: "address-mismatch", ref: "5798 §7.1" };
  if (config.priority === 255) return { kind: "rejected", reason: "local-address-owner", ref: "5798 §7.1" };
  return { kind: "accepted" };
}

/**
 * Extension, not in RFC 5798: a hand-over message passes the checks of an advert's sender (VRID, own, version, unicast
 * peer, VRRPv2 authentication). Its interval is the sender's candidacy interval and its one address a router, not our
 * VIPs, so those checks do not apply; nor does the owner's: an address owner is the Master that names a successor.
 */
export function classifyHandover(message: HandoverMessage, source: string, config: RouterConfig): AdvertClassification {
  return classifySender(message.header, source, config);
}

function classifySender(advert: Advertisement, source: string, config: RouterConfig): AdvertClassification {
  if (advert.vrid !== config.vrid) return { kind: "not-for-us", reason: "other-vrid", ref: "5798 §7.1" };
  if (isSameAddress(source, config.primaryAddress, config)) return { kind: "not-for-us", reason: "own-advert", ref: "5798 §7.1" };
  if (advert.version !== config.version) return { kind: "rejected", reason: "version-mismatch", ref: "5798 §7.1" };
  if (config.peers.length > 0 && !config.peers.some((peer) => isSameAddress(peer, source, config))) {
    return { kind: "rejected", reason: "unknown-peer", ref: "keepalived check_unicast_src" };
  }
  if (advert.version === 2) {
    const expected = config.password;
    const received = advert.authentication;
    const isAuthentic =
      expected === undefined
        ? received.type === "none"
        : received.type === "simple-password" && sameBytes(received.data, passwordToAuthData(expected));
    if (!isAuthentic) return { kind: "rejected", reason: "auth-mismatch", ref: "2338 §7.1" };
  }
  return { kind: "accepted" };
}
