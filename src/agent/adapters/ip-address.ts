import { isIPv4, isIPv6 } from "node:net";
import type { IpFamily } from "../ports.js";

// Text <-> bytes for socket options, netlink attributes and ND messages. These are OS-facing byte layouts of an
// address (always network order by definition), not VRRP fields.

export function familyOf(address: string): IpFamily | undefined {
  if (isIPv4(address)) return "ipv4";
  if (isIPv6(address)) return "ipv6";
  return undefined;
}

/** Throws on text that is not an address: callers pass configuration that was validated on the way in. */
export function addressBytes(address: string): Uint8Array {
  if (isIPv4(address)) return Uint8Array.from(address.split(".").map(Number));
  if (!isIPv6(address)) throw new Error(`not an IP address: ${address}`);
  const bare = address.split("%")[0] ?? address;
  const [head = "", tail] = bare.split("::");
  const groups = (part: string): number[] => {
    if (part === "") return [];
    return part.split(":").flatMap((group) => {
      if (!group.includes(".")) return [Number.parseInt(group, 16)];
      const [a = 0, b = 0, c = 0, d = 0] = group.split(".").map(Number);
      return [a * 256 + b, c * 256 + d];
    });
  };
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  return Uint8Array.from(all.flatMap((group) => [group >> 8, group & 0xff]));
}

export function addressText(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  const groups: string[] = [];
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  }
  // The URL parser applies the RFC 5952 canonical form (longest zero run compressed, lower case).
  return new URL(`http://[${groups.join(":")}]`).hostname.slice(1, -1);
}

/** Link-local destinations need the interface as their zone for sendto(). */
export function withZone(address: string, ifname: string): string {
  const lower = address.toLowerCase();
  const isLinkScoped = lower.startsWith("fe80:") || lower.startsWith("ff02:");
  return isLinkScoped && !address.includes("%") ? `${address}%${ifname}` : address;
}
