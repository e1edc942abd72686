import { createRtNetlink, rt as rtStructs, type RtNetlinkSocket } from "netlink";
import type { LinkMonitor, Outcome, SetupFailure } from "../ports.js";
import { isLinkUp, linkInfo } from "./interfaces.js";
import { describe, errnoName, setupFailureOf } from "./netlink-errors.js";

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;

/** Link state from rtnetlink RTNLGRP_LINK notifications; reports changes only, not repeats. */
export class NetlinkLinkMonitor implements LinkMonitor {
  private rt: RtNetlinkSocket | undefined;
  private isLinkUp = false;

  constructor(private readonly ifname: string) {}

  async start(onChange: (isUp: boolean) => void): Promise<Outcome<SetupFailure>> {
    if (this.rt !== undefined) return { ok: true };
    const rt = createRtNetlink();
    try {
    // Subscribe before reading the current state, so that no change falls between the two.
      rt.addMembership(rtStructs.MulticastGroups.LINK);
    } catch (error) {
      rt.socket.close();
      return { ok: false, code: setupFailureOf(errnoName(error)), detail: describe(error) };
    }
    const link = await linkInfo(this.ifname, rt);
    if (!link.ok) {
      rt.socket.close();
      return link;
    }
    const { index } = link.value;
    this.isLinkUp = link.value.isUp;
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
