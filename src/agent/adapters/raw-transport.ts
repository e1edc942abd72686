import { isIP } from "node:net";
import { AddressFamily as SocketFamily, createSocket, type Socket } from "raw-socket";
import { VRRP_PROTOCOL, type AddressFamily } from "../../vrrp/advertisement.js";
import type { AdvertTransport, Outcome, ReceivedDatagram, SendFailure, SetupFailure, OutcomeWithValue } from "../ports.js";
import { parseAddress, peekVirtualRouterId } from "../../vrrp/codec.js";
import { linkInfo } from "./interfaces.js";

// Socket levels and options from <netinet/in.h>, <linux/in6.h> and <asm-generic/socket.h>.
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_BINDTODEVICE = 25;
const SO_RCVBUFFORCE = 33;
const IPPROTO_IP = 0;
const IP_TTL = 2;
const IP_MULTICAST_IF = 32;
const IP_MULTICAST_TTL = 33;
const IP_MULTICAST_LOOP = 34;
const IP_ADD_MEMBERSHIP = 35;
const IPPROTO_IPV6 = 41;
const IPV6_CHECKSUM = 7;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MULTICAST_IF = 17;
const IPV6_MULTICAST_HOPS = 18;
const IPV6_MULTICAST_LOOP = 19;
const IPV6_ADD_MEMBERSHIP = 20;

const VRRP_GROUP: Readonly<Record<AddressFamily, string>> = { ipv4: "224.0.0.18", ipv6: "ff02::12" }; // RFC 5798 §5.1.1.2, §5.1.2.2
const REQUIRED_HOPS = 255; // RFC 5798 §5.1.1.3, §5.1.2.3
const VRRP_CHECKSUM_OFFSET = 6; // RFC 5798 §5.2.8
/**
 * Masters of one agent advertise in the same instant (machine.ts), so a Backup's socket takes a burst of one datagram
 * per router; at about 700 bytes of kernel accounting each, the default 208 KiB holds 300. This holds 1,500.
 */
const RECEIVE_BUFFER_BYTES = 1 << 20;
/** Datagrams read per readable event at most, so that a flood cannot hold the event loop. */
const MAX_READS_PER_EVENT = 4096;

export interface RawTransportOptions {
  readonly family: AddressFamily;
  readonly ifname: string;
  /** The virtual router this transport serves: it hears only datagrams for this VRID. */
  readonly vrid: number;
  /** Multicast joins the VRRP group; unicast only sends to and hears from peers. */
  readonly isMulticast: boolean;
}

/** Why the pool dropped a datagram before any router saw it; counted, as a router counts its own drops. */
export type UnclaimedReason = "other-vrid" | "truncated";

/** One raw socket per interface and family, shared by every router on it, demultiplexed by VRID. */
interface SharedSocket {
  readonly socket: Socket;
  readonly ifindex: number;
  readonly routers: Map<number, (datagram: ReceivedDatagram) => void>;
  isMulticastJoined: boolean;
  failure: string | undefined;
  isClosed: boolean;
}

/**
 * The agent's sockets for one IP protocol: VRRP's, or the hand-over extension's. Each interface and family gets one
 * socket however many virtual routers run on it, so a datagram is read once and handed to the router of its VRID; the
 * socket closes with its last router.
 */
export class RawSocketPool {
  readonly #sockets = new Map<string, Promise<OutcomeWithValue<SharedSocket, SetupFailure>>>();

  constructor(
    private readonly onUnclaimed: (reason: UnclaimedReason, source: string) => void = () => undefined,
    private readonly protocol: number = VRRP_PROTOCOL,
  ) {}

  transport(options: RawTransportOptions): AdvertTransport {
    return new RawAdvertTransport(this, options);
  }

  /** Sockets open now; one per interface and family in use. */
  get size(): number {
    return this.#sockets.size;
  }

  async attach(options: RawTransportOptions, onDatagram: (datagram: ReceivedDatagram) => void): Promise<OutcomeWithValue<SharedSocket, SetupFailure>> {
    const { family, ifname, vrid, isMulticast } = options;
    const key = `${ifname}/${family}`;
    let opening = this.#sockets.get(key);
    if (opening === undefined) {
      opening = this.#open(family, ifname);
      this.#sockets.set(key, opening);
    }
    const opened = await opening;
    if (!opened.ok) {
      if (this.#sockets.get(key) === opening) this.#sockets.delete(key);
      return opened;
    }
    const shared = opened.value;
    // The last router of the socket left while this one waited for it to open.
    if (shared.isClosed) return this.attach(options, onDatagram);
    if (shared.routers.has(vrid)) return { ok: false, code: "vrid-in-use", detail: `VRID ${vrid} is already served on ${ifname} (${family})` };
    if (isMulticast && !shared.isMulticastJoined) {
      try {
        joinGroup(shared.socket, family, shared.ifindex);
        shared.isMulticastJoined = true;
      } catch (error) {
        return { ok: false, code: "failed", detail: error instanceof Error ? error.message : String(error) };
      }
    }
    shared.routers.set(vrid, onDatagram);
    return { ok: true, value: shared };
  }

  detach(options: RawTransportOptions, shared: SharedSocket): void {
    if (shared.routers.get(options.vrid) === undefined) return;
    shared.routers.delete(options.vrid);
    if (shared.routers.size > 0) return;
    shared.isClosed = true;
    shared.socket.close();
    this.#sockets.delete(`${options.ifname}/${options.family}`);
  }

  async #open(family: AddressFamily, ifname: string): Promise<OutcomeWithValue<SharedSocket, SetupFailure>> {
    const link = await linkInfo(ifname);
    if (!link.ok) return link;
    let socket: Socket | undefined;
    try {
      socket = createSocket({
        protocol: this.protocol,
        addressFamily: family === "ipv4" ? SocketFamily.IPv4 : SocketFamily.IPv6,
      });
      socket.setOption(SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(ifname), ifname.length);
      setReceiveBuffer(socket);
      if (family === "ipv4") configureIpv4(socket, link.value.index);
      else configureIpv6(socket, link.value.index);
    } catch (error) {
      socket?.close();
      const detail = error instanceof Error ? error.message : String(error);
      return { ok: false, code: /not permitted/i.test(detail) ? "permission-denied" : "failed", detail };
    }
    const shared: SharedSocket = { socket, ifindex: link.value.index, routers: new Map(), isMulticastJoined: false, failure: undefined, isClosed: false };
    const dispatch = (buffer: Buffer, source: string): void => {
      const vrid = peekVirtualRouterId(buffer, family);
      if (vrid === undefined) return this.onUnclaimed("truncated", source);
      const onDatagram = shared.routers.get(vrid);
      if (onDatagram === undefined) return this.onUnclaimed("other-vrid", source);
      // raw-socket reuses one receive buffer: copy before the next datagram overwrites it.
      onDatagram({ family, bytes: Uint8Array.from(buffer), source });
    };
    socket.on("message", dispatch);
    // raw-socket reads one datagram per readable event. A deadline that came due while the loop stalled runs after
    // this poll phase (clock.ts), and it must find every advert that waited, not one of the interface's routers'.
    socket.wrap.on("recvReady", () => readWaiting(shared, dispatch));
    socket.on("error", (error) => {
      shared.failure = error.message;
    });
    return { ok: true, value: shared };
  }
}

/** One router's view of its interface's shared socket. */
class RawAdvertTransport implements AdvertTransport {
  #shared: SharedSocket | undefined;
  /** Sends still queued in raw-socket; closing the socket drops them without a callback, so stop() settles them. */
  readonly #pending = new Set<(outcome: Outcome<SendFailure>) => void>();

  constructor(
    private readonly pool: RawSocketPool,
    private readonly options: RawTransportOptions,
  ) {}

  async start(onDatagram: (datagram: ReceivedDatagram) => void): Promise<Outcome<SetupFailure>> {
    if (this.#shared !== undefined) return { ok: true };
    const attached = await this.pool.attach(this.options, onDatagram);
    if (!attached.ok) return attached;
    this.#shared = attached.value;
    return { ok: true };
  }

  send(message: Uint8Array, destination: string): Promise<Outcome<SendFailure>> {
    const shared = this.#shared;
    if (shared === undefined) return Promise.resolve({ ok: false, code: "not-started", detail: "transport not started" });
    if (shared.failure !== undefined) return Promise.resolve({ ok: false, code: "failed", detail: shared.failure });
    if (shared.isClosed) return Promise.resolve({ ok: false, code: "not-started", detail: "the socket was closed" });
    const buffer = Buffer.from(message);
    const address = withZone(destination, this.options.ifname);
    // The addon's sendto does not check the address (raw-socket's send did): a bad one would go to 0.0.0.0 or ::.
    if (isIP(address) === 0) return Promise.resolve({ ok: false, code: "failed", detail: `not an IP address: ${address}` });
    // raw-socket queues every send until its writable watcher fires, which costs an epoll change and a wake-up per
    // datagram. The socket is non-blocking, so send at once, and queue only behind earlier queued sends or when full.
    if (shared.socket.requests.length === 0) {
      try {
        shared.socket.wrap.send(buffer, 0, buffer.length, address, () => undefined);
        return Promise.resolve(sent);
      } catch (error) {
        const detail = error instanceof Error ? error.message : String(error);
        if (!isSocketFull(detail)) return Promise.resolve(sendFailure(detail));
      }
    }
    return new Promise((resolve) => {
      this.#pending.add(resolve);
      shared.socket.send(buffer, 0, buffer.length, address, (error) => {
        this.#pending.delete(resolve);
        resolve(error === null ? sent : sendFailure(error.message));
      });
    });
  }

  stop(): void {
    const shared = this.#shared;
    this.#shared = undefined;
    if (shared !== undefined) this.pool.detach(this.options, shared);
    for (const resolve of this.#pending) resolve({ ok: false, code: "not-started", detail: "transport stopped" });
    this.#pending.clear();
  }
}

const sent: Outcome<SendFailure> = { ok: true };

function sendFailure(detail: string): Outcome<SendFailure> {
  return { ok: false, code: /unreachable/i.test(detail) ? "unreachable" : "failed", detail };
}

/** strerror's text for EAGAIN and ENOBUFS: the datagram may go once the socket is writable again. */
function isSocketFull(detail: string): boolean {
  return /temporarily unavailable|no buffer space/i.test(detail);
}

/**
 * Past net.core.rmem_max needs CAP_NET_ADMIN in the host's user namespace, which an agent that adds addresses to host
 * interfaces has; without it, the kernel's cap applies.
 */
function setReceiveBuffer(socket: Socket): void {
  try {
    socket.setOption(SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER_BYTES);
  } catch {
    socket.setOption(SOL_SOCKET, SO_RCVBUF, RECEIVE_BUFFER_BYTES);
  }
}

/**
 * Reads until nothing waits (the addon throws EAGAIN's text), or the bound. Stops once a router's handling closed the
 * socket: the addon's recv would open a new, unconfigured one.
 */
function readWaiting(shared: SharedSocket, dispatch: (buffer: Buffer, source: string) => void): void {
  const { socket } = shared;
  for (let reads = 0; reads < MAX_READS_PER_EVENT && !shared.isClosed; reads++) {
    let received: { readonly buffer: Buffer; readonly source: string } | undefined;
    try {
      socket.wrap.recv(socket.buffer, (buffer, bytes, source) => {
        received = { buffer: buffer.subarray(0, bytes), source };
      });
    } catch {
      // Nothing more waits. Any other failure shows again at the next readable event, where raw-socket reports it.
      return;
    }
    if (received === undefined) return;
    dispatch(received.buffer, received.source);
  }
}

function joinGroup(socket: Socket, family: AddressFamily, ifindex: number): void {
  if (family === "ipv4") {
    const mreqn = ipMreqn(ifindex);
    mreqn.set(groupBytes("ipv4"), 0);
    socket.setOption(IPPROTO_IP, IP_ADD_MEMBERSHIP, mreqn, mreqn.length);
  } else {
    // struct ipv6_mreq { in6_addr group; int ifindex }
    const mreq = Buffer.alloc(20);
    mreq.set(groupBytes("ipv6"), 0);
    mreq.set(nativeInt(ifindex), 16);
    socket.setOption(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, mreq, mreq.length);
  }
}

function configureIpv4(socket: Socket, ifindex: number): void {
  socket.setOption(IPPROTO_IP, IP_TTL, REQUIRED_HOPS);
  socket.setOption(IPPROTO_IP, IP_MULTICAST_TTL, REQUIRED_HOPS);
  socket.setOption(IPPROTO_IP, IP_MULTICAST_LOOP, 0);
  // struct ip_mreqn { in_addr group; in_addr local (any); int ifindex } selects the interface by index.
  const mreqn = ipMreqn(ifindex);
  socket.setOption(IPPROTO_IP, IP_MULTICAST_IF, mreqn, mreqn.length);
}

function configureIpv6(socket: Socket, ifindex: number): void {
  socket.setOption(IPPROTO_IPV6, IPV6_UNICAST_HOPS, REQUIRED_HOPS);
  socket.setOption(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, REQUIRED_HOPS);
  socket.setOption(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0);
  socket.setOption(IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex);
  // The kernel keeps the IPv6 header (and so the destination the pseudo-header needs): let it compute the checksum on
  // send and drop bad ones on receive, as keepalived does.
  socket.setOption(IPPROTO_IPV6, IPV6_CHECKSUM, VRRP_CHECKSUM_OFFSET);
}

function groupBytes(family: AddressFamily): Uint8Array {
  return parseAddress(VRRP_GROUP[family], family) ?? new Uint8Array(family === "ipv4" ? 4 : 16);
}

function ipMreqn(ifindex: number): Buffer {
  const mreqn = Buffer.alloc(12);
  mreqn.set(nativeInt(ifindex), 8);
  return mreqn;
}

/** A C `int` in the host's byte order, as socket option structs hold it. */
function nativeInt(value: number): Uint8Array {
  return new Uint8Array(Int32Array.of(value).buffer);
}

/** Link-local destinations need the interface as their zone for sendto(). */
function withZone(address: string, ifname: string): string {
  const lower = address.toLowerCase();
  const isLinkScoped = lower.startsWith("fe80:") || lower.startsWith("ff02:");
  return isLinkScoped && !address.includes("%") ? `${address}%${ifname}` : address;
}
