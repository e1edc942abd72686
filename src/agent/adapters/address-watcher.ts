import { rt as rtStructs, type RtNetlinkSocket } from "netlink";
import { formatAddress } from "../../vrrp/codec.js";
import type { AddressWatcher, InterfaceAddress, Outcome, SetupFailure } from "../ports.js";
import { familyOf } from "./ip-address.js";
import { subscribeToLink } from "./interfaces.js";

const RTM_DELADDR = 21;

/** Addresses leaving the interface, from rtnetlink RTNLGRP_IPV4_IFADDR / RTNLGRP_IPV6_IFADDR notifications. */
export class NetlinkAddressWatcher implements AddressWatcher {
  private rt: RtNetlinkSocket | undefined;

  constructor(private readonly ifname: string) {}

  async start(onRemoved: (address: InterfaceAddress) => void): Promise<Outcome<SetupFailure>> {
    if (this.rt !== undefined) return { ok: true };
    const subscribed = await subscribeToLink(this.ifname, [rtStructs.MulticastGroups.IPV4_IFADDR, rtStructs.MulticastGroups.IPV6_IFADDR]);
    if (!subscribed.ok) return subscribed;
    const { rt, link } = subscribed.value;
    rt.socket.on("message", (messages) => {
      for (const message of messages) {
        if (message.type !== RTM_DELADDR) continue;
        const { data, attrs } = rtStructs.parseAddressMessage(message.data);
        const bytes = attrs.local ?? attrs.address;
        if (data.index !== link.index || bytes === undefined || data.prefixlen === undefined) continue;
        const address = formatAddress(bytes);
        const family = familyOf(address);
        if (family !== undefined) onRemoved({ family, address, prefixLength: data.prefixlen });
      }
    });
    this.rt = rt;
    return { ok: true };
  }

  stop(): void {
    this.rt?.socket.close();
    this.rt = undefined;
  }
}
