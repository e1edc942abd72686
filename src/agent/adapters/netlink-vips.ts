import { createRtNetlink, type RtNetlinkSocket } from "netlink";
import type { InterfaceAddress, Outcome, SetupFailure, OutcomeWithValue, VipManager } from "../ports.js";
import { parseAddress } from "../../vrrp/codec.js";
import type { Seconds } from "../../vrrp/units.js";
import { allAddresses, familyNumber, linkInfo } from "./interfaces.js";
import { describe, errnoName, setupFailureOf } from "./netlink-errors.js";

/**
 * VIPs through rtnetlink (RTM_NEWADDR / RTM_DELADDR), on one socket opened at first use. Every router of the agent
 * shares it, and the kernel runs one dump per socket at a time (EBUSY, or interleaved replies), so requests queue.
 */
export class NetlinkVipManager implements VipManager {
  private rt: RtNetlinkSocket | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  /**
   * Interface indexes by name: a Master renews its lease every second or so, and asking the kernel each time cost a
   * tenth of its CPU. A change to an interface that is gone fails with ENODEV and is tried once more with a fresh index.
   */
  readonly #indexes = new Map<string, number>();

  add(vip: InterfaceAddress, ifname: string, lease: Seconds): Promise<Outcome<SetupFailure>> {
    return this.queued(() => this.change(vip, ifname, { lease }));
  }

  remove(vip: InterfaceAddress, ifname: string): Promise<Outcome<SetupFailure>> {
    return this.queued(() => this.change(vip, ifname, "remove"));
  }

  list(ifname: string): Promise<OutcomeWithValue<readonly InterfaceAddress[], SetupFailure>> {
    return this.queued(() => this.listNow(ifname));
  }

  private queued<T>(request: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(request);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  private async listNow(ifname: string): Promise<OutcomeWithValue<readonly InterfaceAddress[], SetupFailure>> {
    const rt = this.socket();
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
  }

  stop(): void {
    this.rt?.socket.close();
    this.rt = undefined;
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
    const link = await linkInfo(ifname, this.socket());
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
    const rt = this.socket();
    const isIpv6 = vip.family === "ipv6";
    const parsed = parseAddress(vip.address, vip.family);
    if (parsed === undefined) return { ok: false, code: "failed", detail: `not an ${vip.family} address: ${vip.address}` };
    const bytes = Buffer.from(parsed);
    // A VIP answers at once: duplicate address detection would hold it "tentative" for a second or more.
    const data = {
      family: familyNumber[vip.family],
      prefixlen: vip.prefixLength,
      index: index.value,
      flags: isIpv6 ? { nodad: true as const } : {},
    };
    try {
      if (to === "remove") await rt.delAddress(data, { local: bytes, address: bytes });
      else {
        // REPLACE renews the lifetimes of an address that is there (RTM_NEWADDR, never RTM_DELADDR, is announced).
        // An IPv6 VIP is deprecated from the start (RFC 6724 rule 3), as keepalived does for /128 VIPs: the kernel then
        // never picks it as the source of the node's own traffic, unicast adverts included.
        const cacheInfo = { ifaPrefered: isIpv6 ? 0 : to.lease, ifaValid: to.lease };
        await rt.newAddress(data, { local: bytes, address: bytes, cacheInfo }, { flags: NLM_F_CREATE_REPLACE });
      }
      return { ok: true };
    } catch (error) {
      const errno = errnoName(error);
      if (to === "remove" && errno === "EADDRNOTAVAIL") return { ok: true };
      return { ok: false, code: setupFailureOf(errno), detail: `${to === "remove" ? "remove" : "add"} ${vip.address} on ${ifname}: ${describe(error)}` };
    }
  }

  private socket(): RtNetlinkSocket {
    this.rt ??= createRtNetlink();
    return this.rt;
  }
}

// NLM_F_REQUEST and NLM_F_ACK are added by the library; `ip addr replace` sends the same pair.
const NLM_F_CREATE_REPLACE = 0x400 | 0x100;
