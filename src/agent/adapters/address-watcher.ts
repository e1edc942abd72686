import { rt as rtStructs, type RtNetlinkSocket } from "netlink";
import { formatAddress } from "../../vrrp/codec.js";
import type { AddressWatcher, InterfaceAddress, Outcome, SetupFailure } from "../ports.js";
import { familyOfNumber, subscribeToLink } from "./interfaces.js";

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
        const family = familyOfNumber(data.family);
        if (family !== undefined) onRemoved({ family, address: formatAddress(bytes), prefixLength: data.prefixlen });
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

/** One netlink subscription per interface, however many routers watch it: each removal reaches every router there. */
export class AddressWatcherPool {
  readonly #interfaces = new Map<string, { readonly watcher: NetlinkAddressWatcher; readonly listeners: Set<(address: InterfaceAddress) => void>; readonly started: Promise<Outcome<SetupFailure>> }>();

  watcher(ifname: string): AddressWatcher {
    let listener: ((address: InterfaceAddress) => void) | undefined;
    return {
      start: async (onRemoved) => {
        if (listener !== undefined) return { ok: true };
        let shared = this.#interfaces.get(ifname);
        if (shared === undefined) {
          const watcher = new NetlinkAddressWatcher(ifname);
          const listeners = new Set<(address: InterfaceAddress) => void>();
          shared = { watcher, listeners, started: watcher.start((address) => listeners.forEach((each) => each(address))) };
          this.#interfaces.set(ifname, shared);
        }
        const started = await shared.started;
        if (!started.ok) {
          if (this.#interfaces.get(ifname) === shared && shared.listeners.size === 0) this.#interfaces.delete(ifname);
          return started;
        }
        listener = onRemoved;
        shared.listeners.add(onRemoved);
        return { ok: true };
      },
      stop: () => {
        const shared = this.#interfaces.get(ifname);
        if (listener === undefined || shared === undefined) return;
        shared.listeners.delete(listener);
        listener = undefined;
        if (shared.listeners.size > 0) return;
        shared.watcher.stop();
        this.#interfaces.delete(ifname);
      },
    };
  }
}
