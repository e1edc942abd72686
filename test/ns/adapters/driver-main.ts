// Runs inside a lab namespace (adapters act on the namespace of their process) and drives the agent's adapters on
// behalf of a test: one JSON request per stdin line, one JSON reply or event per stdout line.
import { createInterface } from "node:readline";
import { NetlinkAddressWatcher } from "../../../src/agent/adapters/address-watcher.js";
import { NodeHttpProbe } from "../../../src/agent/adapters/http-probe.js";
import { interfaceFor, primaryAddress } from "../../../src/agent/adapters/interfaces.js";
import { NetlinkLinkMonitor } from "../../../src/agent/adapters/link-monitor.js";
import { SystemNeighborAnnouncer } from "../../../src/agent/adapters/neighbor-announcer.js";
import { RawSocketPool } from "../../../src/agent/adapters/raw-transport.js";
import { createVipManager, type VipBackend } from "../../../src/agent/adapters/vips.js";
import type { AdvertTransport, InterfaceAddress, AddressFamily } from "../../../src/agent/ports.js";
import { milliseconds, seconds } from "../../../src/vrrp/units.js";

type Request =
  | { id: number; op: "transport-start"; name: string; family: AddressFamily; ifname: string; vrid: number; isMulticast: boolean }
  | { id: number; op: "socket-pool" }
  | { id: number; op: "transport-send"; name: string; hex: string; destination: string }
  | { id: number; op: "transport-burst"; name: string; hex: string; destination: string; count: number }
  | { id: number; op: "busy"; ms: number }
  | { id: number; op: "transport-stop"; name: string }
  | { id: number; op: "vip"; backend: VipBackend; action: "add" | "remove"; vip: InterfaceAddress; ifname: string; lease?: number }
  | { id: number; op: "vip-lease"; backend: VipBackend; vip: InterfaceAddress; ifname: string; lease: number; everyMs: number; renewals: number }
  | { id: number; op: "vip-together"; backend: VipBackend; action: "add" | "remove"; vips: InterfaceAddress[]; ifname: string }
  | { id: number; op: "vip-list"; backend: VipBackend; ifname: string }
  | { id: number; op: "vip-bench"; backend: VipBackend; vip: InterfaceAddress; ifname: string; rounds: number }
  | { id: number; op: "announce"; address: string; ifname: string }
  | { id: number; op: "link-start"; ifname: string }
  | { id: number; op: "link-is-up" }
  | { id: number; op: "link-stop" }
  | { id: number; op: "watch-start"; ifname: string }
  | { id: number; op: "probe"; host: string; port: number; path: string; scheme?: "HTTP" | "HTTPS"; timeoutMs: number }
  | { id: number; op: "interface-for"; address: string }
  | { id: number; op: "primary-address"; ifname: string; family: AddressFamily; scope: "global" | "link" };

const unclaimed: string[] = [];
const sockets = new RawSocketPool((reason, source) => unclaimed.push(`${reason} from ${source}`));
const transports = new Map<string, AdvertTransport>();
const vipManagers = { netlink: createVipManager("netlink"), iproute: createVipManager("iproute") };
// Long enough that no test sees an address it added expire, unless it asks for a lease.
const longLease = seconds(600);
let linkMonitor: NetlinkLinkMonitor | undefined;
let watcher: NetlinkAddressWatcher | undefined;

function emit(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function handle(request: Request): Promise<unknown> {
  switch (request.op) {
    case "transport-start": {
      const transport = sockets.transport(request);
      transports.set(request.name, transport);
      return transport.start((datagram) =>
        emit({
          event: "datagram",
          name: request.name,
          family: datagram.family,
          hex: Buffer.from(datagram.bytes).toString("hex"),
          source: datagram.source,
        }),
      );
    }
    case "transport-send": {
      const transport = transports.get(request.name) ?? sockets.transport({ family: "ipv4", ifname: "eth0", vrid: 0, isMulticast: false });
      return transport.send(Buffer.from(request.hex, "hex"), request.destination);
    }
    case "transport-burst": {
      // As a Master of many routers does at each Adver_Timer: every send in one turn of the event loop.
      const transport = transports.get(request.name);
      if (transport === undefined) return { ok: false, detail: `no transport ${request.name}` };
      const sent = await Promise.all(Array.from({ length: request.count }, () => transport.send(Buffer.from(request.hex, "hex"), request.destination)));
      return { ok: true, failed: sent.filter((outcome) => !outcome.ok).length };
    }
    case "busy": {
      // Keeps the event loop from reading, so whatever arrives meanwhile waits in the socket's receive buffer.
      const until = performance.now() + request.ms;
      while (performance.now() < until);
      return { ok: true };
    }
    case "socket-pool":
      return { open: sockets.size, unclaimed };
    case "transport-stop":
      transports.get(request.name)?.stop();
      transports.get(request.name)?.stop();
      return { ok: true };
    case "vip": {
      const manager = vipManagers[request.backend];
      return request.action === "add" ? manager.add(request.vip, request.ifname, seconds(request.lease ?? longLease)) : manager.remove(request.vip, request.ifname);
    }
    case "vip-lease": {
      // As a Master does: add, then renew at every advert; the reply says when it began and when the last renewal was
      // acknowledged.
      const manager = vipManagers[request.backend];
      const firstAddAt = Date.now();
      for (let round = 0; round <= request.renewals; round++) {
        if (round > 0) await new Promise((resolve) => setTimeout(resolve, request.everyMs));
        const added = await manager.add(request.vip, request.ifname, seconds(request.lease));
        if (!added.ok) return added;
      }
      return { ok: true, firstAddAt, lastRenewalAt: Date.now() };
    }
    case "vip-together": {
      // As many Masters renewing at once: every change asked for in the same turn of the event loop.
      const manager = vipManagers[request.backend];
      return Promise.all(request.vips.map((vip) => (request.action === "add" ? manager.add(vip, request.ifname, longLease) : manager.remove(vip, request.ifname))));
    }
    case "vip-list":
      return vipManagers[request.backend].list(request.ifname);
    case "vip-bench": {
      const manager = vipManagers[request.backend];
      const add: number[] = [];
      const remove: number[] = [];
      for (let round = 0; round < request.rounds; round++) {
        let started = performance.now();
        const added = await manager.add(request.vip, request.ifname, longLease);
        add.push(performance.now() - started);
        started = performance.now();
        const removed = await manager.remove(request.vip, request.ifname);
        remove.push(performance.now() - started);
        if (!added.ok || !removed.ok) return { ok: false, added, removed };
      }
      return { ok: true, addMs: median(add), removeMs: median(remove) };
    }
    case "announce": {
      const started = performance.now();
      const outcome = await new SystemNeighborAnnouncer().announce(request.address, request.ifname);
      return { ...outcome, elapsedMs: performance.now() - started };
    }
    case "link-start":
      linkMonitor = new NetlinkLinkMonitor(request.ifname);
      return { ...(await linkMonitor.start((isUp) => emit({ event: "link", isUp }))), isUp: linkMonitor.isUp() };
    case "link-is-up":
      return { isUp: linkMonitor?.isUp() };
    case "link-stop":
      linkMonitor?.stop();
      linkMonitor?.stop();
      return { ok: true, isUp: linkMonitor?.isUp() };
    case "watch-start":
      watcher = new NetlinkAddressWatcher(request.ifname);
      return watcher.start((address) => emit({ event: "removed", address, at: Date.now() }));
    case "probe": {
      const { host, port, path, scheme, timeoutMs } = request;
      return new NodeHttpProbe({ host, port, path, scheme: scheme ?? "HTTP", timeout: milliseconds(timeoutMs) }).probe();
    }
    case "interface-for":
      return interfaceFor(request.address);
    case "primary-address":
      return primaryAddress(request.ifname, request.family, request.scope);
  }
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const request = JSON.parse(line) as Request;
  handle(request).then(
    (result) => emit({ id: request.id, result }),
    (error: unknown) => emit({ id: request.id, error: error instanceof Error ? error.stack : String(error) }),
  );
});
lines.on("close", () => {
  for (const transport of transports.values()) transport.stop();
  vipManagers.netlink.stop();
  linkMonitor?.stop();
  watcher?.stop();
});
emit({ event: "ready" });
