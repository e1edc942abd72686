import { AttrStream, FlagsNew, rt as rtStructs } from "netlink";
import type { InterfaceAddress, Outcome, SetupFailure, OutcomeWithValue, VipManager } from "../ports.js";
import { parseAddress } from "../../vrrp/codec.js";
import type { Seconds } from "../../vrrp/units.js";
import { allAddresses, familyNumber, linkInfo } from "./interfaces.js";
import { describe, errnoName, setupFailureOf } from "./netlink-errors.js";
import { RtNetlinkQueue, type NetlinkChange } from "./netlink-queue.js";

/**
 * VIPs through rtnetlink (RTM_NEWADDR / RTM_DELADDR), on one socket opened at first use that every router of the agent
 * shares; a Master's lease renewals at about the same time go to the kernel together (RtNetlinkQueue).
 */
export class NetlinkVipManager implements VipManager {
  readonly #netlink = new RtNetlinkQueue();
  /**
   * Interface indexes by name: a Master renews its lease every second or so, and asking the kernel each time cost a
   * tenth of its CPU. A change to an interface that is gone fails with ENODEV and is tried once more with a fresh index.
   */
  readonly #indexes = new Map<string, number>();
  /** The messages, by change: a renewal repeats the same one at every advert. */
  readonly #changes = new Map<string, NetlinkChange>();

  add(vip: InterfaceAddress, ifname: string, lease: Seconds): Promise<Outcome<SetupFailure>> {
    return this.change(vip, ifname, { lease });
  }

  remove(vip: InterfaceAddress, ifname: string): Promise<Outcome<SetupFailure>> {
    return this.change(vip, ifname, "remove");
  }

  list(ifname: string): Promise<OutcomeWithValue<readonly InterfaceAddress[], SetupFailure>> {
    return this.#netlink.request(async (rt) => {
      const link = await linkInfo(ifname, rt);
      if (!link.ok) return link;
      try {
        const addresses = (await allAddresses(rt)).filter((address) => address.index === link.value.index);
        return {
          ok: true,
          value: addresses.map(({ family, address, prefixLength }) => ({ family, address, prefixLength })),
        };
      } catch (error) {
        return { ok: false, code: setupFailureOf(errnoName(error)), detail: describe(error) };
      }
    });
  }

  stop(): void {
    this.#netlink.close();
  }

  private async change(vip: InterfaceAddress, ifname: string, to: { readonly lease: Seconds } | "remove"): Promise<Outcome<SetupFailure>> {
    const outcome = await this.changeOn(await this.indexOf(ifname), vip, ifname, to);
    if (outcome.ok || outcome.code !== "no-such-interface" || !this.#indexes.has(ifname)) return outcome;
    this.#indexes.delete(ifname);
    return this.changeOn(await this.indexOf(ifname), vip, ifname, to);
  }

  private async indexOf(ifname: string): Promise<OutcomeWithValue<number, SetupFailure>> {
    const cached = this.#indexes.get(ifname);
    if (cached !== undefined) return { ok: true, value: cached };
    const link = await this.#netlink.request((rt) => linkInfo(ifname, rt));
    if (!link.ok) return link;
    this.#indexes.set(ifname, link.value.index);
    return { ok: true, value: link.value.index };
  }

  private async changeOn(
    index: OutcomeWithValue<number, SetupFailure>,
    vip: InterfaceAddress,
    ifname: string,
    to: { readonly lease: Seconds } | "remove",
  ): Promise<Outcome<SetupFailure>> {
    if (!index.ok) return index;
    const change = this.messageOf(vip, index.value, to);
    if (change === undefined) return { ok: false, code: "failed", detail: `not an ${vip.family} address: ${vip.address}` };
    const error = await this.#netlink.change(change);
    if (error === undefined) return { ok: true };
    const errno = errnoName(error);
    if (to === "remove" && errno === "EADDRNOTAVAIL") return { ok: true };
    return { ok: false, code: setupFailureOf(errno), detail: `${to === "remove" ? "remove" : "add"} ${vip.address} on ${ifname}: ${describe(error)}` };
  }

  private messageOf(vip: InterfaceAddress, index: number, to: { readonly lease: Seconds } | "remove"): NetlinkChange | undefined {
    const key = `${vip.family} ${vip.address}/${vip.prefixLength} ${index} ${to === "remove" ? to : to.lease}`;
    const known = this.#changes.get(key);
    if (known !== undefined) return known;
    const parsed = parseAddress(vip.address, vip.family);
    if (parsed === undefined) return undefined;
    const isIpv6 = vip.family === "ipv6";
    const bytes = Buffer.from(parsed);
    // A VIP answers at once: duplicate address detection would hold it "tentative" for a second or more.
    const data = { family: familyNumber[vip.family], prefixlen: vip.prefixLength, index, flags: isIpv6 ? { nodad: true as const } : {} };
    const body = new AttrStream();
    if (to === "remove") rtStructs.formatAddressMessage({ kind: "address", data, attrs: { local: bytes, address: bytes } }, body);
    else {
      // An IPv6 VIP is deprecated from the start (RFC 6724 rule 3), as keepalived does for /128 VIPs: the kernel then
      // never picks it as the source of the node's own traffic, unicast adverts included.
      const cacheInfo = { ifaPrefered: isIpv6 ? 0 : to.lease, ifaValid: to.lease };
      rtStructs.formatAddressMessage({ kind: "address", data, attrs: { local: bytes, address: bytes, cacheInfo } }, body);
    }
    // REPLACE renews the lifetimes of an address that is there (RTM_NEWADDR, never RTM_DELADDR, is announced).
    // `ip addr replace` sends the same flags.
    const change = to === "remove"
      ? { type: rtStructs.MessageType.DELADDR, flags: 0, body: body.bufs }
      : { type: rtStructs.MessageType.NEWADDR, flags: FlagsNew.CREATE | FlagsNew.REPLACE, body: body.bufs };
    // Each VIP's few messages repeat, but an index gone never comes back: forget them all once in a while.
    if (this.#changes.size >= maxRememberedChanges) this.#changes.clear();
    this.#changes.set(key, change);
    return change;
  }
}

const maxRememberedChanges = 4096;
