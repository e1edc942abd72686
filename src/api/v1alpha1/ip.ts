import { isIPv4, isIPv6 } from "node:net";

/**
 * The family of an address; a VRRP router carries one (RFC 5798 §5.2.9, "IPvX Address(es)"). Spelt as src/vrrp spells
 * its AddressFamily: neither layer imports the other, and the agent hands one to the other unchanged.
 */
export type AddressFamily = "ipv4" | "ipv6";

/** "IPv4" or "IPv6", for messages. */
export function familyName(family: AddressFamily): string {
  return family === "ipv4" ? "IPv4" : "IPv6";
}

/** The width of an address of the family, the longest prefix. */
export function hostPrefixLength(family: AddressFamily): number {
  return family === "ipv4" ? 32 : 128;
}

/** An IP address in canonical text (IPv6 compressed, lower case) and its family. */
export interface IpAddress {
  readonly address: string;
  readonly family: AddressFamily;
}

/** A virtual address as written in `spec.addresses`, split into its parts. */
export interface VipAddress extends IpAddress {
  /** Written prefix, or the host prefix (32 or 128) when none was written. */
  readonly prefixLength: number;
  readonly hasPrefix: boolean;
}

/** Longest address text: a full IPv6 address with a /128 prefix. */
export const ADDRESS_MAX_LENGTH = 43;

/**
 * Parses one IP address the way Kubernetes' CEL `ip()` does: no zone ("%eth0"), no IPv4-mapped IPv6
 * ("::ffff:192.0.2.1"), no leading zeros in IPv4 octets. Returns undefined for anything else.
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  if (isIPv4(text)) return { address: text, family: "ipv4" };
  if (!isIPv6(text) || text.includes("%")) return undefined;
  // The WHATWG URL parser writes IPv6 in the RFC 5952 canonical form, so equal addresses compare equal as text.
  const canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  if (/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(canonical)) return undefined;
  return { address: canonical, family: "ipv6" };
}

/** Parses "192.0.2.10", "192.0.2.10/24", "2001:db8::10" or "2001:db8::10/64". Host bits may be set. */
export function parseVipAddress(text: string): VipAddress | undefined {
  const slash = text.indexOf("/");
  const ip = parseIpAddress(slash === -1 ? text : text.slice(0, slash));
  if (ip === undefined) return undefined;
  const hostPrefix = hostPrefixLength(ip.family);
  if (slash === -1) return { ...ip, prefixLength: hostPrefix, hasPrefix: false };
  const prefixText = text.slice(slash + 1);
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined;
  const prefixLength = Number(prefixText);
  return prefixLength <= hostPrefix ? { ...ip, prefixLength, hasPrefix: true } : undefined;
}

/** Comma-separated IP addresses, as the agents' --http-address takes them; `invalid` is the first entry that is not one. */
export function parseIpAddressList(text: string): { readonly addresses: readonly string[] } | { readonly invalid: string } {
  const entries = text.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
  const invalid = entries.find((entry) => parseIpAddress(entry) === undefined);
  return invalid === undefined ? { addresses: entries } : { invalid };
}

/** The address as an unsigned integer of 32 (IPv4) or 128 (IPv6) bits. */
function addressBits(ip: IpAddress): bigint {
  if (ip.family === "ipv4") return ip.address.split(".").reduce((bits, octet) => (bits << 8n) | BigInt(Number(octet)), 0n);
  // Canonical IPv6 text has hex groups only (parseIpAddress writes no dotted tail) and at most one "::".
  const [head = "", tail] = ip.address.split("::");
  const groupsOf = (text: string): string[] => (text === "" ? [] : text.split(":"));
  const written = [...groupsOf(head), ...(tail === undefined ? [] : groupsOf(tail))];
  const groups = tail === undefined ? written : [...groupsOf(head), ...Array<string>(8 - written.length).fill("0"), ...groupsOf(tail)];
  return groups.reduce((bits, group) => (bits << 16n) | BigInt(Number.parseInt(group, 16)), 0n);
}

function prefixMask(family: AddressFamily, prefixLength: number): bigint {
  const width = BigInt(hostPrefixLength(family));
  return ((1n << width) - 1n) ^ ((1n << (width - BigInt(prefixLength))) - 1n);
}

/** Whether `network` has bits set past its prefix, as in 192.0.2.10/24; a range is written 192.0.2.0/24. */
export function hasHostBits(network: VipAddress): boolean {
  return (addressBits(network) & ~prefixMask(network.family, network.prefixLength)) !== 0n;
}

/** Whether `ip` lies inside `network` (its address and prefix; a prefix-less network is the one address). */
export function isInNetwork(ip: IpAddress, network: VipAddress): boolean {
  if (ip.family !== network.family) return false;
  const mask = prefixMask(network.family, network.prefixLength);
  return (addressBits(ip) & mask) === (addressBits(network) & mask);
}
