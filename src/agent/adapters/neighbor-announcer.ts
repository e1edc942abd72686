import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { AddressFamily, createSocket, type Socket } from "raw-socket";
import { parseAddress } from "../../vrrp/codec.js";
import type { NeighborAnnouncer, Outcome, SetupFailure } from "../ports.js";
import { parseIpAddress } from "../../api/v1alpha1/ip.js";
import { linkInfo } from "./interfaces.js";
import { encodeUnsolicitedNa } from "./neighbor-advert.js";

const ICMPV6_PROTOCOL = 58;
const IPPROTO_IPV6 = 41;
const IPV6_MULTICAST_IF = 17;
const IPV6_MULTICAST_HOPS = 18;
const ND_HOP_LIMIT = 255; // RFC 4861 §7.1.2: receivers drop ND messages with any other hop limit
const ALL_NODES = "ff02::1"; // RFC 4861 §7.2.6

/** Built from garp.c by `npm run build` next to the compiled announcer, where tests that load this source find it too. */
const GARP_HELPER = fileURLToPath(new URL(import.meta.url.endsWith(".ts") ? "../../../dist/agent/adapters/ha-nginx-garp" : "./ha-nginx-garp", import.meta.url));

const setupFailures: readonly SetupFailure[] = ["permission-denied", "no-such-interface", "vrid-in-use", "failed"];

/**
 * The ha-nginx-garp helper, started at the first IPv4 announcement and kept: the agent has no AF_PACKET socket, and a
 * process per gratuitous ARP (arping) cost milliseconds of the event loop each, which a hundred VIPs taken over at
 * once turned into seconds without adverts. Replies come in request order.
 */
class GarpHelper {
  #child: ChildProcess | undefined;
  readonly #waiting: ((outcome: Outcome<SetupFailure>) => void)[] = [];

  constructor(private readonly path: string) {}

  announce(address: string, ifname: string): Promise<Outcome<SetupFailure>> {
    const child = this.#child ?? this.#start();
    if (child === undefined) return Promise.resolve({ ok: false, code: "failed", detail: `${this.path} is missing; run npm run build` });
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      child.stdin?.write(`${ifname} ${address}\n`);
    });
  }

  #start(): ChildProcess | undefined {
    if (!existsSync(this.path)) return undefined;
    const child = spawn(this.path, [], { stdio: ["pipe", "pipe", "ignore"] });
    this.#child = child;
    createInterface({ input: child.stdout ?? process.stdin }).on("line", (line) => {
      const [verdict = "", code = "", ...detail] = line.split(" ");
      const found = setupFailures.find((failure) => failure === code);
      this.#waiting.shift()?.(verdict === "ok" ? { ok: true } : { ok: false, code: found ?? "failed", detail: detail.join(" ") || line });
    });
    const fail = (detail: string): void => {
      if (this.#child === child) this.#child = undefined;
      for (const resolve of this.#waiting.splice(0)) resolve({ ok: false, code: "failed", detail });
    };
    // A helper that cannot start, or dies with requests in its pipe, fails those announcements, never the agent.
    child.once("error", (error) => fail(`ha-nginx-garp: ${error.message}`));
    child.stdin?.on("error", (error) => fail(`ha-nginx-garp: ${error.message}`));
    child.once("exit", (code, signal) => fail(`ha-nginx-garp exited (${code ?? signal})`));
    // The helper must not keep the agent alive; it exits by itself when the agent's end of its stdin closes.
    child.unref();
    for (const stream of [child.stdin, child.stdout]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
    return child;
  }
}

/**
 * IPv4: one gratuitous ARP request through the ha-nginx-garp helper (the kernel sends none when an address is added).
 * IPv6: one unsolicited Neighbor Advertisement with the override flag, to all nodes, from a raw ICMPv6 socket.
 */
export class SystemNeighborAnnouncer implements NeighborAnnouncer {
  readonly #garp: GarpHelper;

  /** `garpHelper`: the helper's path, for a test of one that cannot run. */
  constructor(garpHelper = GARP_HELPER) {
    this.#garp = new GarpHelper(garpHelper);
  }

  announce(address: string, ifname: string): Promise<Outcome<SetupFailure>> {
    const family = parseIpAddress(address)?.family;
    if (family === undefined) return Promise.resolve({ ok: false, code: "failed", detail: `not an address: ${address}` });
    return family === "ipv4" ? this.#garp.announce(address, ifname) : advertiseNeighbor(address, ifname);
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
