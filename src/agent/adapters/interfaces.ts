import { createRtNetlink, type RtNetlinkSocket } from "netlink";
import type { InterfaceAddress, AddressFamily, SetupFailure, OutcomeWithValue } from "../ports.js";
import { formatAddress } from "../../vrrp/codec.js";
import { parseIpAddress } from "../../api/v1alpha1/ip.js";
import { describe, errnoName, setupFailureOf } from "./netlink-errors.js";

// One-shot interface queries over rtnetlink, in the network namespace of this process.

export interface LinkInfo {
  readonly index: number;
  readonly mac: string;
  readonly isUp: boolean;
}

/** The kernel's AF_INET and AF_INET6. */
export const familyNumber: Readonly<Record<AddressFamily, number>> = { ipv4: 2, ipv6: 10 };

/** The family a netlink message names by number; undefined for any other than AF_INET and AF_INET6. */
export function familyOfNumber(family: number | undefined): AddressFamily | undefined {
  if (family === familyNumber.ipv4) return "ipv4";
  if (family === familyNumber.ipv6) return "ipv6";
  return undefined;
}

export async function withRtNetlink<T>(use: (rt: RtNetlinkSocket) => Promise<T>): Promise<T> {
  const rt = createRtNetlink();
  try {
    return await use(rt);
  } finally {
    rt.socket.close();
  }
}

export async function linkInfo(ifname: string, rt?: RtNetlinkSocket): Promise<OutcomeWithValue<LinkInfo, SetupFailure>> {
  const query = async (socket: RtNetlinkSocket): Promise<OutcomeWithValue<LinkInfo, SetupFailure>> => {
    const [link] = await socket.getLink({}, { ifname });
    const index = link?.data.index;
    if (link === undefined || index === undefined) return { ok: false, code: "no-such-interface", detail: ifname };
    const mac = link.attrs.address === undefined ? "" : macText(link.attrs.address);
    return { ok: true, value: { index, mac, isUp: isLinkUp(link.data.flags) } };
  };
  try {
    return rt === undefined ? await withRtNetlink(query) : await query(rt);
  } catch (error) {
    return { ok: false, code: setupFailureOf(errnoName(error)), detail: `${ifname}: ${describe(error)}` };
  }
}

/**
 * An rtnetlink socket subscribed to `groups`, then the link's current state, in that order so that no change falls
 * between the two. The caller owns the socket on success.
 */
export async function subscribeToLink(
  ifname: string,
  groups: readonly number[],
): Promise<OutcomeWithValue<{ readonly rt: RtNetlinkSocket; readonly link: LinkInfo }, SetupFailure>> {
  const rt = createRtNetlink();
  try {
    for (const group of groups) rt.addMembership(group);
  } catch (error) {
    rt.socket.close();
    return { ok: false, code: setupFailureOf(errnoName(error)), detail: describe(error) };
  }
  const link = await linkInfo(ifname, rt);
  if (!link.ok) {
    rt.socket.close();
    return link;
  }
  return { ok: true, value: { rt, link: link.value } };
}

/** Administratively up and operationally running (carrier present, RFC 2863 "up"). */
export function isLinkUp(flags: { readonly up?: true; readonly running?: true } | undefined): boolean {
  return flags?.up === true && flags.running === true;
}

function macText(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join(":");
}

interface IndexedAddress extends InterfaceAddress {
  readonly index: number;
  readonly isSecondary: boolean;
  readonly isLinkLocal: boolean;
  /** Creation time (hundredths of a second since boot): tells the node's own addresses from VIPs added later. */
  readonly createdAt: number;
}

export async function allAddresses(rt: RtNetlinkSocket): Promise<readonly IndexedAddress[]> {
  const messages = await rt.getAddresses();
  return messages.flatMap((message) => {
    const bytes = message.attrs.local ?? message.attrs.address;
    const { index, prefixlen, family, flags, scope } = message.data;
    if (bytes === undefined || index === undefined || prefixlen === undefined) return [];
    const addressFamily = familyOfNumber(family);
    if (addressFamily === undefined) return [];
    const address = formatAddress(bytes);
    const isSecondary = flags?.secondary === true || message.attrs.flags?.secondary === true;
    // RT_SCOPE_LINK = 253
    const createdAt = message.attrs.cacheInfo?.cstamp ?? 0;
    return [
      { family: addressFamily, address, prefixLength: prefixlen, index, isSecondary, isLinkLocal: scope === 253, createdAt },
    ];
  });
}

/** The interface that holds `address` (the default interface is the one with the node's own address). */
export async function interfaceFor(address: string): Promise<OutcomeWithValue<string, SetupFailure>> {
  try {
    return await withRtNetlink(async (rt) => {
      const match = (await allAddresses(rt)).find((candidate) => candidate.address === addressTextOf(address));
      if (match === undefined) return { ok: false, code: "no-such-interface", detail: `no interface holds ${address}` };
      const [link] = await rt.getLink({ index: match.index });
      const ifname = link?.attrs.ifname;
      if (ifname === undefined) return { ok: false, code: "no-such-interface", detail: `index ${match.index}` };
      return { ok: true, value: ifname };
    });
  } catch (error) {
    return { ok: false, code: setupFailureOf(errnoName(error)), detail: describe(error) };
  }
}

/**
 * The oldest global, primary address of `family` on the interface; for IPv6 with `scope: "link"`, its link-local
 * address (the source of VRRP adverts, RFC 5798 §5.1.2.1). Oldest, because the kernel lists a newer IPv6 address
 * first, and a VIP left over from an earlier run must not pass for the node's own address.
 */
export async function primaryAddress(
  ifname: string,
  family: AddressFamily,
  scope: "global" | "link" = "global",
): Promise<OutcomeWithValue<string, SetupFailure>> {
  try {
    return await withRtNetlink(async (rt) => {
      const link = await linkInfo(ifname, rt);
      if (!link.ok) return link;
      const [match] = (await allAddresses(rt))
        .filter(
          (candidate) =>
            candidate.index === link.value.index &&
            candidate.family === family &&
            !candidate.isSecondary &&
            candidate.isLinkLocal === (scope === "link"),
        )
        .sort((a, b) => a.createdAt - b.createdAt);
      if (match === undefined) return { ok: false, code: "failed", detail: `${ifname} has no ${scope} ${family} address` };
      return { ok: true, value: match.address };
    });
  } catch (error) {
    return { ok: false, code: setupFailureOf(errnoName(error)), detail: describe(error) };
  }
}

function addressTextOf(address: string): string {
  return parseIpAddress(address)?.address ?? address;
}
