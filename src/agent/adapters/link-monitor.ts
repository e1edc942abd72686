import { rt as rtStructs, type RtNetlinkSocket } from "netlink";
import type { LinkMonitor, Outcome, SetupFailure } from "../ports.js";
import { isLinkUp, subscribeToLink } from "./interfaces.js";

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;

/** Link state from rtnetlink RTNLGRP_LINK notifications; reports changes only, not repeats. */
export class NetlinkLinkMonitor implements LinkMonitor {
  private rt: RtNetlinkSocket | undefined;
  private isLinkUp = false;

  constructor(private readonly ifname: string) {}

  async start(onChange: (isUp: boolean) => void): Promise<Outcome<SetupFailure>> {
    if (this.rt !== undefined) return { ok: true };
    const subscribed = await subscribeToLink(this.ifname, [rtStructs.MulticastGroups.LINK]);
    if (!subscribed.ok) return subscribed;
    const { rt, link } = subscribed.value;
    const { index } = link;
    this.isLinkUp = link.isUp;
    rt.socket.on("message", (messages) => {
      for (const message of messages) {
        if (message.type !== RTM_NEWLINK && message.type !== RTM_DELLINK) continue;
        const { data } = rtStructs.parseLinkMessage(message.data);
        if (data.index !== index) continue;
        const isUp = message.type === RTM_NEWLINK && isLinkUp(data.flags);
        if (isUp === this.isLinkUp) continue;
        this.isLinkUp = isUp;
        onChange(isUp);
      }
    });
    this.rt = rt;
    return { ok: true };
  }

  isUp(): boolean {
    return this.isLinkUp;
  }

  stop(): void {
    this.rt?.socket.close();
    this.rt = undefined;
  }
}
