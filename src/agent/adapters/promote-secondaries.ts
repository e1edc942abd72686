import { readFile } from "node:fs/promises";
import type { SetupFailure, OutcomeWithValue } from "../ports.js";
import { describe, errnoName, setupFailureOf } from "./netlink-errors.js";
import { familyNumber, linkInfo, withRtNetlink } from "./interfaces.js";

// From <linux/if_link.h> and <linux/ip.h>: IFLA_AF_SPEC holds, per address family, IFLA_INET_CONF, whose nested
// attributes are the interface's ipv4 devconf values, numbered by IPV4_DEVCONF_*.
const IFLA_INET_CONF = 1;
const IPV4_DEVCONF_PROMOTE_SECONDARIES = 20;

function attribute(type: number, payload: Buffer): Buffer {
  const padded = Buffer.alloc(4 + Math.ceil(payload.length / 4) * 4);
  padded.writeUInt16LE(4 + payload.length, 0);
  padded.writeUInt16LE(type, 2);
  payload.copy(padded, 4);
  return padded;
}

/**
 * Sets net.ipv4.conf.<ifname>.promote_secondaries, so that the kernel promotes the next address of a subnet when its
 * primary goes, instead of deleting them all: a released VIP that was its subnet's primary would otherwise take
 * another resource's VIP, or the node's own re-added address, with it. Through rtnetlink, because a pod's /proc/sys
 * is read-only while NET_ADMIN may change the link.
 */
export async function promoteSecondaries(ifname: string): Promise<OutcomeWithValue<"changed" | "already-set", SetupFailure>> {
  const current = await readFile(`/proc/sys/net/ipv4/conf/${ifname}/promote_secondaries`, "utf8").catch(() => undefined);
  if (current?.trim() === "1") return { ok: true, value: "already-set" };
  const link = await linkInfo(ifname);
  if (!link.ok) return link;
  const value = Buffer.alloc(4);
  value.writeUInt32LE(1);
  const inetConf = attribute(IFLA_INET_CONF, attribute(IPV4_DEVCONF_PROMOTE_SECONDARIES, value));
  try {
    await withRtNetlink((rt) => rt.setLink({ index: link.value.index }, { afSpec: new Map([[familyNumber.ipv4, inetConf]]) }));
    return { ok: true, value: "changed" };
  } catch (error) {
    return { ok: false, code: setupFailureOf(errnoName(error)), detail: `${ifname}: ${describe(error)}` };
  }
}
