import { isIPv4, isIPv6 } from "node:net";
import type { IpFamily } from "../ports.js";

export function familyOf(address: string): IpFamily | undefined {
  if (isIPv4(address)) return "ipv4";
  if (isIPv6(address)) return "ipv6";
  return undefined;
}

/** Link-local destinations need the interface as their zone for sendto(). */
export function withZone(address: string, ifname: string): string {
  const lower = address.toLowerCase();
  const isLinkScoped = lower.startsWith("fe80:") || lower.startsWith("ff02:");
  return isLinkScoped && !address.includes("%") ? `${address}%${ifname}` : address;
}
