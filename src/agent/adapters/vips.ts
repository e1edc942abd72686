import type { VipManager } from "../ports.js";
import { IprouteVipManager } from "./iproute-vips.js";
import { NetlinkVipManager } from "./netlink-vips.js";

export type VipBackend = "netlink" | "iproute";

export function createVipManager(backend: VipBackend): VipManager {
  return backend === "netlink" ? new NetlinkVipManager() : new IprouteVipManager();
}
