import { execFile } from "node:child_process";
import { AddressFamily, createSocket, type Socket } from "raw-socket";
import { parseAddress } from "../../vrrp/codec.js";
import type { NeighborAnnouncer, Outcome, SetupFailure } from "../ports.js";
import { familyOf } from "./ip-address.js";
import { linkInfo } from "./interfaces.js";
import { encodeUnsolicitedNa } from "./neighbor-advert.js";

const ICMPV6_PROTOCOL = 58;
const IPPROTO_IPV6 = 41;
const IPV6_MULTICAST_IF = 17;
const IPV6_MULTICAST_HOPS = 18;
const ND_HOP_LIMIT = 255; // RFC 4861 §7.1.2: receivers drop ND messages with any other hop limit
const ALL_NODES = "ff02::1"; // RFC 4861 §7.2.6

export interface AnnouncerOptions {
  /** iputils arping; Debian installs it as /usr/sbin/arping or /usr/bin/arping. */
  readonly arpingBinary?: string;
}

/**
 * IPv4: one gratuitous ARP request through iputils `arping -U` (the kernel sends none when an address is added). The
 * request leaves at once, but arping then waits out its one-second interval (it takes no shorter one), so callers
 * should not hold anything else back while the promise is pending. The address must already be on the interface.
 * IPv6: one unsolicited Neighbor Advertisement with the override flag, to all nodes, from a raw ICMPv6 socket.
 */
export class SystemNeighborAnnouncer implements NeighborAnnouncer {
  constructor(private readonly options: AnnouncerOptions = {}) {}

  announce(address: string, ifname: string): Promise<Outcome<SetupFailure>> {
    const family = familyOf(address);
    if (family === undefined) return Promise.resolve({ ok: false, code: "failed", detail: `not an address: ${address}` });
    return family === "ipv4" ? this.arp(address, ifname) : advertiseNeighbor(address, ifname);
  }

  private arp(address: string, ifname: string): Promise<Outcome<SetupFailure>> {
    const binary = this.options.arpingBinary ?? "arping";
    const args = ["-q", "-U", "-c", "1", "-w", "1", "-I", ifname, address];
    return new Promise((resolve) => {
      execFile(binary, args, { env: { LC_ALL: "C", PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } }, (error, _stdout, stderr) => {
        const detail = (stderr || error?.message || "").trim();
        if (error === null) resolve({ ok: true });
        else if (/not available|No such device/i.test(detail)) resolve({ ok: false, code: "no-such-interface", detail });
        else if (/not permitted|permission/i.test(detail)) resolve({ ok: false, code: "permission-denied", detail });
        else resolve({ ok: false, code: "failed", detail });
      });
    });
  }
}

async function advertiseNeighbor(address: string, ifname: string): Promise<Outcome<SetupFailure>> {
  const link = await linkInfo(ifname);
  if (!link.ok) return link;
  const target = parseAddress(address, "ipv6");
  const mac = parseMac(link.value.mac);
  if (target === undefined || mac === undefined) {
    return { ok: false, code: "failed", detail: `cannot announce ${address} with link-layer address "${link.value.mac}"` };
  }
  let socket: Socket | undefined;
  try {
    socket = createSocket({ protocol: ICMPV6_PROTOCOL, addressFamily: AddressFamily.IPv6 });
    socket.setOption(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, ND_HOP_LIMIT);
    socket.setOption(IPPROTO_IPV6, IPV6_MULTICAST_IF, link.value.index);
    const message = Buffer.from(encodeUnsolicitedNa(target, mac));
    const sending = socket;
    return await new Promise((resolve) => {
      sending.send(message, 0, message.length, `${ALL_NODES}%${ifname}`, (error) => {
        resolve(error === null ? { ok: true } : { ok: false, code: "failed", detail: error.message });
      });
    });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return { ok: false, code: /not permitted/i.test(detail) ? "permission-denied" : "failed", detail };
  } finally {
    socket?.close();
  }
}

function parseMac(text: string): Uint8Array | undefined {
  const parts = text.split(":");
  if (parts.length !== 6 || !parts.every((part) => /^[0-9a-f]{2}$/i.test(part))) return undefined;
  return Uint8Array.from(parts.map((part) => Number.parseInt(part, 16)));
}
