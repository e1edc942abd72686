// Wire format of VRRP advertisements (RFC 5798 §5, RFC 3768 §5) and of the IPv4 header a raw socket hands us.
// Byte order lives here and nowhere else. Decoding is total: any byte string yields a value or a DecodeError.

import type { AddressFamily, Advertisement, AdvertisementV2, AdvertisementV3, AdvertAuthentication, HandoverKind, HandoverMessage, VrrpVersion } from "./advertisement.js";
import { HANDOVER_PROTOCOL, VRRP_PROTOCOL, VRRP_TTL } from "./advertisement.js";
import { internetChecksum, ipv4PseudoHeader, ipv6PseudoHeader } from "./checksum.js";
import { centiseconds, seconds } from "./units.js";

/**
 * How a VRRPv3 IPv4 checksum is computed. keepalived (default) includes the IPv4 pseudo-header;
 * RFC 9568 §5.2.8 computes it over the VRRP message alone for IPv4. IPv6 always uses the pseudo-header.
 */
export type V3Ipv4ChecksumMode = "pseudo-header" | "rfc9568";

export interface EncodeContext {
  readonly family: AddressFamily;
  /** Source address of the IP packet (the sender's primary address), text form. */
  readonly source: string;
  /**
   * Destination address (multicast group or unicast peer), text form: part of the v3 pseudo-header. keepalived since
   * 1.3.6 puts the real unicast peer here; its `old_unicast_checksum` compatibility mode (the multicast group even
   * for unicast) is not supported.
   */
  readonly destination: string;
  readonly v3Ipv4Checksum?: V3Ipv4ChecksumMode;
}

export interface DecodeContext extends EncodeContext {
  /** IPv4 TTL or IPv6 Hop Limit as received. Omit to skip the check (keepalived skips it for unicast). */
  readonly ttl?: number;
  /** The version this router runs; a packet of the other version is `bad-version` (RFC 5798 §7.1). */
  readonly version?: VrrpVersion;
}

/** RFC 5798 §5.2, RFC 3768 §5.3: each error says which field, what was expected and what arrived. */
export type DecodeError =
  | { readonly code: "truncated"; readonly expected: number; readonly actual: number; readonly offset: number; readonly rfc: "5798 §7.1" }
  | { readonly code: "too-long"; readonly expected: number; readonly actual: number; readonly offset: number; readonly rfc: "5798 §5.2.5" }
  | { readonly code: "bad-version"; readonly expected: VrrpVersion; readonly actual: number; readonly offset: 0; readonly rfc: "5798 §5.2.1" }
  | { readonly code: "bad-type"; readonly expected: 1; readonly actual: number; readonly offset: 0; readonly rfc: "5798 §5.2.2" }
  /** Extension, not in RFC 5798: a hand-over message carries exactly one address. */
  | { readonly code: "handover-address-count"; readonly expected: 1; readonly actual: number; readonly offset: 3; readonly rfc: "extension" }
  | { readonly code: "bad-checksum"; readonly expected: number; readonly actual: number; readonly offset: 6; readonly rfc: "5798 §5.2.8" }
  | { readonly code: "no-addresses"; readonly actual: 0; readonly offset: 3; readonly rfc: "5798 §5.2.5" }
  | { readonly code: "address-count-mismatch"; readonly expected: number; readonly actual: number; readonly offset: 3; readonly rfc: "5798 §5.2.5" }
  | { readonly code: "wrong-family-length"; readonly expected: AddressFamily; readonly actual: AddressFamily; readonly offset: 8; readonly rfc: "5798 §5.2.9" }
  | { readonly code: "unsupported-family"; readonly expected: "ipv4"; readonly actual: AddressFamily; readonly rfc: "3768 §1" }
  | { readonly code: "ttl-not-255"; readonly expected: 255; readonly actual: number; readonly rfc: "5798 §7.1" }
  | { readonly code: "bad-auth-type"; readonly expected: "0 or 1"; readonly actual: number; readonly offset: 4; readonly rfc: "2338 §5.3.6" }
  | { readonly code: "bad-interval"; readonly actual: 0; readonly offset: number; readonly rfc: "5798 §5.2.7" | "3768 §5.3.7" }
  | { readonly code: "bad-ip-header"; readonly field: "version" | "header-length" | "total-length"; readonly actual: number; readonly offset: number; readonly rfc: "791 §3.1" }
  | { readonly code: "not-vrrp-protocol"; readonly expected: number; readonly actual: number; readonly offset: 9; readonly rfc: "5798 §5.1.1.4" };

export type DecodeErrorCode = DecodeError["code"];

export type DecodeResult<T> =
  | { readonly ok: true; readonly value: T; readonly bytesRead: number }
  | { readonly ok: false; readonly error: DecodeError };

export interface Ipv4Datagram {
  readonly ttl: number;
  readonly source: string;
  readonly destination: string;
  readonly protocol: number;
  readonly payload: Uint8Array;
}

const HEADER_LENGTH = 8;
const V2_AUTH_LENGTH = 8;
const ADVERTISEMENT_TYPE = 1; // RFC 5798 §5.2.2
/**
 * Extension, not in RFC 5798: hand-over message types. The messages travel on HANDOVER_PROTOCOL, never on VRRP's, so no
 * VRRP router ever reads them; the types keep one that strays onto a VRRP socket from passing for an advert.
 */
const HANDOVER_TYPES: Readonly<Record<HandoverKind, number>> = { candidacy: 14, nomination: 15 };
const V3_MAX_INTERVAL = 0x0fff; // RFC 5798 §5.2.7: 12 bits
const AUTH_NONE = 0; // RFC 3768 §5.3.6
const AUTH_SIMPLE = 1; // RFC 2338 §5.3.6, keepalived `auth_type PASS`
const IPV4_MIN_HEADER = 20;

const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

function addressLength(family: AddressFamily): number {
  return family === "ipv4" ? 4 : 16;
}

// ---------------------------------------------------------------------------------------------------------------
// Addresses

/** Text to network-order bytes; undefined when the text is not an address of that family. A zone (`%eth0`) is ignored. */
export function parseAddress(text: string, family: AddressFamily): Uint8Array | undefined {
  return family === "ipv4" ? parseIpv4(text) : parseIpv6(text);
}

// A scan, not split and a regular expression: every advert received compares its source with a few addresses, so this
// runs several times per advert (docs/design-notes/agent-footprint.md). Up to three digits per part, as before.
function parseIpv4(text: string): Uint8Array | undefined {
  const bytes = new Uint8Array(4);
  let part = 0;
  let digits = 0;
  let value = 0;
  for (let index = 0; index <= text.length; index++) {
    const code = index === text.length ? DOT : text.charCodeAt(index);
    if (code === DOT) {
      if (digits === 0 || part === 4) return undefined;
      bytes[part++] = value;
      digits = 0;
      value = 0;
    } else if (code >= ZERO && code <= NINE && digits < 3) {
      value = value * 10 + code - ZERO;
      digits++;
      if (value > 255) return undefined;
    } else {
      return undefined;
    }
  }
  return part === 4 ? bytes : undefined;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const withoutZone = text.split("%")[0] ?? "";
  const halves = withoutZone.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : (halves[0] ?? "").split(":");
  const tail = halves.length === 2 && halves[1] !== "" ? (halves[1] ?? "").split(":") : [];
  const words: number[] = [];
  const groups = [...head, ...tail];
  const tailWords: number[] = [];
  const headWords: number[] = [];
  for (const [index, group] of groups.entries()) {
    const target = index < head.length ? headWords : tailWords;
    const isLast = index === groups.length - 1;
    if (isLast && group.includes(".")) {
      const v4 = parseIpv4(group);
      if (v4 === undefined) return undefined;
      target.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
      target.push(parseInt(group, 16));
    }
  }
  const explicit = headWords.length + tailWords.length;
  if (halves.length === 2) {
    if (explicit > 7) return undefined;
    words.push(...headWords, ...new Array<number>(8 - explicit).fill(0), ...tailWords);
  } else {
    if (explicit !== 8) return undefined;
    words.push(...headWords);
  }
  const bytes = new Uint8Array(16);
  for (const [index, word] of words.entries()) {
    bytes[index * 2] = word >>> 8;
    bytes[index * 2 + 1] = word & 0xff;
  }
  return bytes;
}

/** Network-order bytes (4 or 16) to text: dotted quad, or RFC 5952 canonical IPv6. */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0] ?? 0}.${bytes[1] ?? 0}.${bytes[2] ?? 0}.${bytes[3] ?? 0}`;
  const words: number[] = [];
  for (let index = 0; index < 16; index += 2) words.push(((bytes[index] ?? 0) << 8) | (bytes[index + 1] ?? 0));
  // RFC 5952 §4.2: compress the longest run of two or more zero words, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && words[start + length] === 0) length++;
    if (length > bestLength) {
      bestStart = start;
      bestLength = length;
    }
  }
  const hex = words.map((word) => word.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** RFC 4291 §2.5.6: an IPv6 link-local unicast address, fe80::/10. */
export function isLinkLocalAddress(bytes: Uint8Array): boolean {
  return bytes.length === 16 && bytes[0] === 0xfe && ((bytes[1] ?? 0) & 0xc0) === 0x80;
}

/** Numeric comparison of two addresses of the same family (RFC 5798 §6.4.3: "greater than"). */
export function compareAddressBytes(a: Uint8Array, b: Uint8Array): number {
  for (let index = 0; index < Math.min(a.length, b.length); index++) {
    const difference = (a[index] ?? 0) - (b[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareAddressBytes(a, b) === 0;
}

/** Field by field, addresses in order: whether the two adverts encode to the same bytes in one context. */
export function isSameAdvertisement(a: Advertisement, b: Advertisement): boolean {
  if (a.vrid !== b.vrid || a.priority !== b.priority || a.addresses.length !== b.addresses.length) return false;
  if (!a.addresses.every((address, index) => address === b.addresses[index])) return false;
  if (a.version === 3) return b.version === 3 && a.maxAdverInterval === b.maxAdverInterval;
  if (b.version !== 2 || a.adverInterval !== b.adverInterval) return false;
  const [left, right] = [a.authentication, b.authentication];
  return left.type === "none" || right.type === "none" ? left.type === right.type : sameBytes(left.data, right.data);
}

function requireAddress(text: string, family: AddressFamily, what: string): Uint8Array {
  const bytes = parseAddress(text, family);
  if (bytes === undefined) throw new TypeError(`${what} ${JSON.stringify(text)} is not an ${family} address`);
  return bytes;
}

// ---------------------------------------------------------------------------------------------------------------
// Authentication (VRRPv2)

/** keepalived `auth_pass`: the password's UTF-8 bytes, cut to 8 and padded with zeros (RFC 2338 §5.3.10). */
export function passwordToAuthData(password: string): Uint8Array {
  const data = new Uint8Array(V2_AUTH_LENGTH);
  data.set(new TextEncoder().encode(password).subarray(0, V2_AUTH_LENGTH));
  return data;
}

// ---------------------------------------------------------------------------------------------------------------
// Encode

function checksumFor(packet: Uint8Array, version: VrrpVersion, protocol: number, ctx: EncodeContext): number {
  if (version === 2) return internetChecksum([packet]);
  if (ctx.family === "ipv6") {
    const source = requireAddress(ctx.source, "ipv6", "source");
    const destination = requireAddress(ctx.destination, "ipv6", "destination");
    return internetChecksum([ipv6PseudoHeader(source, destination, protocol, packet.length), packet]);
  }
  if ((ctx.v3Ipv4Checksum ?? "pseudo-header") === "rfc9568") return internetChecksum([packet]);
  const source = requireAddress(ctx.source, "ipv4", "source");
  const destination = requireAddress(ctx.destination, "ipv4", "destination");
  return internetChecksum([ipv4PseudoHeader(source, destination, protocol, packet.length), packet]);
}

function requireRange(value: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${what} ${value} is outside ${min}..${max}`);
}

/** Builds the VRRP message (no IP header). Throws only on a programmer error: a field out of range. */
export function encodeAdvertisement(advert: Advertisement, ctx: EncodeContext): Uint8Array {
  return encodeMessage(advert, ADVERTISEMENT_TYPE, VRRP_PROTOCOL, ctx);
}

/** Extension, not in RFC 5798: builds a hand-over message, whose checksum covers HANDOVER_PROTOCOL. */
export function encodeHandover(message: HandoverMessage, ctx: EncodeContext): Uint8Array {
  requireRange(message.header.addresses.length, 1, 1, "hand-over address count");
  return encodeMessage(message.header, HANDOVER_TYPES[message.kind], HANDOVER_PROTOCOL, ctx);
}

function encodeMessage(advert: Advertisement, type: number, protocol: number, ctx: EncodeContext): Uint8Array {
  requireRange(advert.vrid, 1, 255, "VRID"); // RFC 5798 §5.2.3
  requireRange(advert.priority, 0, 255, "priority"); // RFC 5798 §5.2.4
  requireRange(advert.addresses.length, 1, 255, "address count"); // RFC 5798 §5.2.5
  if (advert.version === 2 && ctx.family !== "ipv4") throw new TypeError("VRRPv2 carries IPv4 only (RFC 3768)");
  const size = addressLength(ctx.family);
  const trailer = advert.version === 2 ? V2_AUTH_LENGTH : 0;
  const packet = new Uint8Array(HEADER_LENGTH + advert.addresses.length * size + trailer);
  packet[0] = (advert.version << 4) | type;
  packet[1] = advert.vrid;
  packet[2] = advert.priority;
  packet[3] = advert.addresses.length;
  if (advert.version === 2) {
    requireRange(advert.adverInterval, 1, 255, "advertisement interval (s)"); // RFC 3768 §5.3.7
    packet[4] = advert.authentication.type === "none" ? AUTH_NONE : AUTH_SIMPLE;
    packet[5] = advert.adverInterval;
    if (advert.authentication.type === "simple-password") {
      if (advert.authentication.data.length !== V2_AUTH_LENGTH) throw new RangeError("authentication data must be 8 bytes");
      packet.set(advert.authentication.data, packet.length - V2_AUTH_LENGTH);
    }
  } else {
    requireRange(advert.maxAdverInterval, 1, V3_MAX_INTERVAL, "advertisement interval (cs)"); // RFC 5798 §5.2.7
    packet[4] = advert.maxAdverInterval >>> 8;
    packet[5] = advert.maxAdverInterval & 0xff;
  }
  for (const [index, address] of advert.addresses.entries()) {
    packet.set(requireAddress(address, ctx.family, "virtual address"), HEADER_LENGTH + index * size);
  }
  const checksum = checksumFor(packet, advert.version, protocol, ctx);
  packet[6] = checksum >>> 8;
  packet[7] = checksum & 0xff;
  return packet;
}

// ---------------------------------------------------------------------------------------------------------------
// Decode

function fail<T>(error: DecodeError): DecodeResult<T> {
  return { ok: false, error };
}

function lengthError(length: number, count: number, version: VrrpVersion, family: AddressFamily): DecodeError {
  const size = addressLength(family);
  const fixed = HEADER_LENGTH + (version === 2 ? V2_AUTH_LENGTH : 0);
  const required = fixed + count * size;
  const otherFamily: AddressFamily = family === "ipv4" ? "ipv6" : "ipv4";
  if (version === 3 && length === HEADER_LENGTH + count * addressLength(otherFamily)) {
    return { code: "wrong-family-length", expected: family, actual: otherFamily, offset: 8, rfc: "5798 §5.2.9" };
  }
  if (length > fixed && (length - fixed) % size === 0) {
    return { code: "address-count-mismatch", expected: count, actual: (length - fixed) / size, offset: 3, rfc: "5798 §5.2.5" };
  }
  if (length < required) return { code: "truncated", expected: required, actual: length, offset: 0, rfc: "5798 §7.1" };
  return { code: "too-long", expected: required, actual: length, offset: required, rfc: "5798 §5.2.5" };
}

/**
 * Decodes one VRRP message (the IP payload) and runs the checks that need no configuration, in the order of
 * RFC 5798 §7.1: TTL, version, length, checksum, then field sanity. Configuration checks (VRID, password,
 * interval, peer) are `classifyAdvert` in receive.ts.
 */
export function decodeAdvertisement(bytes: Uint8Array, ctx: DecodeContext): DecodeResult<Advertisement> {
  const frame = decodeFrame(bytes, ctx, ADVERTISEMENT_ONLY, VRRP_PROTOCOL);
  return frame.ok ? { ok: true, value: frame.value.advert, bytesRead: frame.bytesRead } : frame;
}

const ADVERTISEMENT_ONLY: ReadonlySet<number> = new Set([ADVERTISEMENT_TYPE]);
const HANDOVER_ONLY: ReadonlySet<number> = new Set(Object.values(HANDOVER_TYPES));

/** Extension, not in RFC 5798: the checks of decodeAdvertisement, and exactly one address. */
export function decodeHandover(bytes: Uint8Array, ctx: DecodeContext): DecodeResult<HandoverMessage> {
  const frame = decodeFrame(bytes, ctx, HANDOVER_ONLY, HANDOVER_PROTOCOL);
  if (!frame.ok) return frame;
  const { type, advert } = frame.value;
  const count = advert.addresses.length;
  if (count !== 1) return fail({ code: "handover-address-count", expected: 1, actual: count, offset: 3, rfc: "extension" });
  const kind: HandoverKind = type === HANDOVER_TYPES.candidacy ? "candidacy" : "nomination";
  return { ok: true, value: { kind, header: advert }, bytesRead: frame.bytesRead };
}

interface Frame {
  readonly type: number;
  readonly advert: Advertisement;
}

function decodeFrame(bytes: Uint8Array, ctx: DecodeContext, knownTypes: ReadonlySet<number>, protocol: number): DecodeResult<Frame> {
  if (ctx.ttl !== undefined && ctx.ttl !== VRRP_TTL) return fail({ code: "ttl-not-255", expected: 255, actual: ctx.ttl, rfc: "5798 §7.1" });
  if (bytes.length < HEADER_LENGTH) return fail({ code: "truncated", expected: HEADER_LENGTH, actual: bytes.length, offset: 0, rfc: "5798 §7.1" });
  const first = bytes[0] ?? 0;
  const wireVersion = first >>> 4;
  const expectedVersion: VrrpVersion = ctx.version ?? 3;
  if ((wireVersion !== 2 && wireVersion !== 3) || (ctx.version !== undefined && wireVersion !== ctx.version)) {
    return fail({ code: "bad-version", expected: expectedVersion, actual: wireVersion, offset: 0, rfc: "5798 §5.2.1" });
  }
  const version: VrrpVersion = wireVersion;
  if (version === 2 && ctx.family !== "ipv4") return fail({ code: "unsupported-family", expected: "ipv4", actual: ctx.family, rfc: "3768 §1" });
  const type = first & 0x0f;
  if (!knownTypes.has(type)) return fail({ code: "bad-type", expected: 1, actual: type, offset: 0, rfc: "5798 §5.2.2" });
  const count = bytes[3] ?? 0;
  if (count === 0) return fail({ code: "no-addresses", actual: 0, offset: 3, rfc: "5798 §5.2.5" });
  const size = addressLength(ctx.family);
  const required = HEADER_LENGTH + count * size + (version === 2 ? V2_AUTH_LENGTH : 0);
  if (bytes.length !== required) return fail(lengthError(bytes.length, count, version, ctx.family));

  const received = ((bytes[6] ?? 0) << 8) | (bytes[7] ?? 0);
  const zeroed = bytes.slice(0, required);
  zeroed[6] = 0;
  zeroed[7] = 0;
  const computed = checksumFor(zeroed, version, protocol, ctx);
  if (computed !== received) return fail({ code: "bad-checksum", expected: computed, actual: received, offset: 6, rfc: "5798 §5.2.8" });

  const addresses: string[] = [];
  for (let index = 0; index < count; index++) {
    const start = HEADER_LENGTH + index * size;
    addresses.push(formatAddress(bytes.subarray(start, start + size)));
  }
  const vrid = bytes[1] ?? 0;
  const priority = bytes[2] ?? 0;
  if (version === 2) {
    const authType = bytes[4] ?? 0;
    if (authType !== AUTH_NONE && authType !== AUTH_SIMPLE) {
      return fail({ code: "bad-auth-type", expected: "0 or 1", actual: authType, offset: 4, rfc: "2338 §5.3.6" });
    }
    const interval = bytes[5] ?? 0;
    if (interval === 0) return fail({ code: "bad-interval", actual: 0, offset: 5, rfc: "3768 §5.3.7" });
    const authentication: AdvertAuthentication =
      authType === AUTH_NONE ? { type: "none" } : { type: "simple-password", data: bytes.slice(required - V2_AUTH_LENGTH, required) };
    const advert: AdvertisementV2 = { version: 2, vrid, priority, adverInterval: seconds(interval), authentication, addresses };
    return { ok: true, value: { type, advert }, bytesRead: required };
  }
  const interval = (((bytes[4] ?? 0) << 8) | (bytes[5] ?? 0)) & V3_MAX_INTERVAL;
  if (interval === 0) return fail({ code: "bad-interval", actual: 0, offset: 4, rfc: "5798 §5.2.7" });
  const advert: AdvertisementV3 = { version: 3, vrid, priority, maxAdverInterval: centiseconds(interval), addresses };
  return { ok: true, value: { type, advert }, bytesRead: required };
}

/**
 * The VRID a received datagram claims (RFC 5798 §5.2.3), before any check, so one socket can hand it to the router
 * that serves that VRID, which then decodes and checks it. Undefined when the datagram is too short to say.
 */
export function peekVirtualRouterId(bytes: Uint8Array, family: AddressFamily): number | undefined {
  const headerLength = family === "ipv4" ? ((bytes[0] ?? 0) & 0x0f) * 4 : 0;
  return bytes[headerLength + 1];
}

/**
 * An IPv4 raw socket delivers the IP header with the payload (IPv6 raw sockets do not). This splits them, so the
 * agent never reads a byte offset itself. The kernel has already verified the header checksum.
 */
export function decodeIpv4Datagram(bytes: Uint8Array, expectedProtocol: number = VRRP_PROTOCOL): DecodeResult<Ipv4Datagram> {
  if (bytes.length < IPV4_MIN_HEADER) return fail({ code: "truncated", expected: IPV4_MIN_HEADER, actual: bytes.length, offset: 0, rfc: "5798 §7.1" });
  const first = bytes[0] ?? 0;
  if (first >>> 4 !== 4) return fail({ code: "bad-ip-header", field: "version", actual: first >>> 4, offset: 0, rfc: "791 §3.1" });
  const headerLength = (first & 0x0f) * 4;
  if (headerLength < IPV4_MIN_HEADER || headerLength > bytes.length) {
    return fail({ code: "bad-ip-header", field: "header-length", actual: headerLength, offset: 0, rfc: "791 §3.1" });
  }
  const totalLength = ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0);
  if (totalLength < headerLength) return fail({ code: "bad-ip-header", field: "total-length", actual: totalLength, offset: 2, rfc: "791 §3.1" });
  if (totalLength > bytes.length) return fail({ code: "truncated", expected: totalLength, actual: bytes.length, offset: 2, rfc: "5798 §7.1" });
  const protocol = bytes[9] ?? 0;
  if (protocol !== expectedProtocol) return fail({ code: "not-vrrp-protocol", expected: expectedProtocol, actual: protocol, offset: 9, rfc: "5798 §5.1.1.4" });
  return {
    ok: true,
    value: {
      ttl: bytes[8] ?? 0,
      source: formatAddress(bytes.subarray(12, 16)),
      destination: formatAddress(bytes.subarray(16, 20)),
      protocol,
      payload: bytes.slice(headerLength, totalLength),
    },
    bytesRead: totalLength,
  };
}
