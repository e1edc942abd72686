// How both front ends (`standalone.ts`, reading a file, and `k8s/agent.ts`, reading the API server) wire a router to
// the machine: finding its VRRP interface, building the runtime on the real adapters, the local nginx probe and the
// signal handling.

import type { Logger } from "pino";
import { StartupError } from "../startup-error.js";
import { parseDuration } from "../api/v1alpha1/duration.js";
import { addressFamilyOf, type HaVipSpec } from "../api/v1alpha1/schema.js";
import type { RouterConfig } from "../vrrp/config.js";
import { milliseconds } from "../vrrp/units.js";
import { MonotonicClock } from "./adapters/clock.js";
import { NodeHttpProbe } from "./adapters/http-probe.js";
import { allAddresses, interfaceFor, primaryAddress, withRtNetlink } from "./adapters/interfaces.js";
import { NetlinkLinkMonitor } from "./adapters/link-monitor.js";
import { SystemNeighborAnnouncer } from "./adapters/neighbor-announcer.js";
import { AddressWatcherPool } from "./adapters/address-watcher.js";
import { promoteSecondaries } from "./adapters/promote-secondaries.js";
import { RawSocketPool, type UnclaimedReason } from "./adapters/raw-transport.js";
import { HANDOVER_PROTOCOL } from "../vrrp/advertisement.js";
import { createVipManager, type VipBackend } from "./adapters/vips.js";
import { HealthMonitor } from "./health-monitor.js";
import { AgentMetrics, type RouterMetrics } from "./metrics.js";
import type { AddressFamily, NeighborAnnouncer, VipManager } from "./ports.js";
import { AgentRuntime } from "./runtime.js";

/** The interface a router runs on: its name, the address family, the advert source and every address the node holds. */
export interface VrrpInterface {
  readonly ifname: string;
  readonly family: AddressFamily;
  readonly primary: string;
  readonly ownAddresses: readonly string[];
}

async function defaultInterface(family: AddressFamily): Promise<string> {
  const ifname = await withRtNetlink(async (rt) => {
    const candidate = (await allAddresses(rt)).find((address) => address.family === family && !address.isLinkLocal && address.address !== "127.0.0.1" && address.address !== "::1");
    if (candidate === undefined) return undefined;
    const [link] = await rt.getLink({ index: candidate.index });
    return link?.attrs.ifname;
  });
  if (ifname === undefined) throw new StartupError(`no interface holds a global ${family} address; set spec.interface`);
  return ifname;
}

async function interfaceHolding(nodeAddress: string): Promise<string> {
  const found = await interfaceFor(nodeAddress);
  if (!found.ok) throw new StartupError(`the node's address ${nodeAddress} (HOST_IP): ${found.detail}; set spec.interface`);
  return found.value;
}

/**
 * spec.interface, else the interface holding the node's own address when it is known (in Kubernetes: the pod's
 * status.hostIP), else the first with a global address. "First" is a guess that a CNI bridge (cni0) can win.
 */
export async function findVrrpInterface(spec: HaVipSpec, nodeAddress?: string): Promise<VrrpInterface> {
  const family = addressFamilyOf(spec);
  const ifname = spec.interface ?? (nodeAddress === undefined ? await defaultInterface(family) : await interfaceHolding(nodeAddress));
  // RFC 5798 §5.1.2.1: IPv6 adverts come from the link-local address.
  const primary = await primaryAddress(ifname, family, family === "ipv6" ? "link" : "global");
  if (!primary.ok) throw new StartupError(`interface ${ifname}: ${primary.code}: ${primary.detail}; set spec.interface to the node's VRRP interface`);
  const ownAddresses = await withRtNetlink(async (rt) => (await allAddresses(rt)).map((address) => address.address));
  return { ifname, family, primary: primary.value, ownAddresses };
}

/** Whether two configurations (plain data) are the same, so an unchanged one is not applied again. */
export function isSameConfig(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** What the routers of one agent process share: a socket per interface and family, the address backend, metrics. */
export interface SharedAdapters {
  readonly sockets: RawSocketPool;
  /** Extension, not in RFC 5798: the hand-over messages' sockets (HANDOVER_PROTOCOL). */
  readonly handoverSockets: RawSocketPool;
  readonly announcer: NeighborAnnouncer;
  readonly addresses: AddressWatcherPool;
  readonly vips: VipManager;
  readonly metrics: AgentMetrics;
  /** Packets no router on this node serves, as `dropped:<reason>` counters for /state. */
  readonly unclaimed: ReadonlyMap<string, number>;
  /** Readies an interface for VIPs once per process, before the first router on it starts. */
  prepare(vrrpInterface: VrrpInterface, logger: Logger): Promise<void>;
}

export function createSharedAdapters(vipBackend: VipBackend, node: string): SharedAdapters {
  const metrics = new AgentMetrics(node);
  const unclaimed = new Map<string, number>();
  const onUnclaimed = (reason: UnclaimedReason): void => {
    metrics.unclaimedPacket(reason);
    unclaimed.set(`dropped:${reason}`, (unclaimed.get(`dropped:${reason}`) ?? 0) + 1);
  };
  const sockets = new RawSocketPool(onUnclaimed);
  const handoverSockets = new RawSocketPool(onUnclaimed, HANDOVER_PROTOCOL);
  const prepared = new Map<string, Promise<void>>();
  const prepare = (vrrpInterface: VrrpInterface, logger: Logger): Promise<void> => {
    if (vrrpInterface.family !== "ipv4") return Promise.resolve();
    const preparing =
      prepared.get(vrrpInterface.ifname) ??
      promoteSecondaries(vrrpInterface.ifname).then((result) => {
        if (!result.ok) logger.warn({ ifname: vrrpInterface.ifname, code: result.code, detail: result.detail }, "cannot set promote_secondaries; releasing a VIP that is its subnet's first address deletes that subnet's other addresses too");
        else if (result.value === "changed") logger.info({ ifname: vrrpInterface.ifname }, "set promote_secondaries, so releasing one VIP never deletes other addresses of its subnet");
      });
    prepared.set(vrrpInterface.ifname, preparing);
    return preparing;
  };
  return { sockets, handoverSockets, announcer: new SystemNeighborAnnouncer(), addresses: new AddressWatcherPool(), vips: createVipManager(vipBackend), metrics, unclaimed, prepare };
}

/**
 * One virtual router on the real adapters. `isMulticast` is fixed for the socket's life: in Kubernetes the unicast
 * peers may arrive after the start, so the caller decides from the transport mode rather than from today's peer list.
 */
export function createRuntime(shared: SharedAdapters, vrrpInterface: VrrpInterface, config: RouterConfig, logger: Logger, metrics: RouterMetrics, isMulticast = config.peers.length === 0): AgentRuntime {
  const socketOptions = { family: vrrpInterface.family, ifname: vrrpInterface.ifname, vrid: config.vrid, isMulticast };
  return new AgentRuntime(
    {
      transport: shared.sockets.transport(socketOptions),
      handoverTransport: shared.handoverSockets.transport(socketOptions),
      vips: shared.vips,
      announcer: shared.announcer,
      link: new NetlinkLinkMonitor(vrrpInterface.ifname),
      addresses: shared.addresses.watcher(vrrpInterface.ifname),
      clock: new MonotonicClock(),
    },
    { config, ifname: vrrpInterface.ifname, logger, metrics },
  );
}

/** Starts the local nginx probe of `spec.healthCheck.probe`, if any; `onChange` hears every verdict change. */
export function startProbe(spec: HaVipSpec, logger: Logger, onChange: (isHealthy: boolean) => void): HealthMonitor | undefined {
  const probe = spec.healthCheck?.probe;
  if (probe === undefined) return undefined;
  const monitor = new HealthMonitor(
    new NodeHttpProbe({ host: probe.httpGet.host, port: probe.httpGet.port, path: probe.httpGet.path, scheme: probe.httpGet.scheme ?? "HTTP", timeout: milliseconds(parseDuration(probe.timeout)) }),
    {
      period: milliseconds(parseDuration(probe.period)),
      failureThreshold: probe.failureThreshold,
      successThreshold: probe.successThreshold,
    },
    (isHealthy, detail) => {
      logger.info({ isHealthy, detail }, isHealthy ? "nginx probe passes" : "nginx probe fails");
      onChange(isHealthy);
    },
  );
  monitor.start();
  return monitor;
}

/**
 * Resolves once SIGTERM or SIGINT arrives and `stop` has finished; a second signal leaves at once. `stop` should hand
 * the VIP over (runtime.shutdown) before it resolves.
 */
export function untilSignalled(logger: Logger, stop: (signal: string) => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    let isStopping = false;
    const onSignal = (signal: string): void => {
      if (isStopping) {
        logger.warn({ signal }, "second signal: leaving now");
        process.exit(1);
      }
      isStopping = true;
      logger.info({ signal }, "handing over before exit");
      void stop(signal).then(
        () => {
          logger.info("stopped");
          resolve();
        },
        (error: unknown) => {
          logger.error({ error: error instanceof Error ? error.message : String(error) }, "stopping failed");
          resolve();
        },
      );
    };
    process.on("SIGTERM", () => onSignal("SIGTERM"));
    process.on("SIGINT", () => onSignal("SIGINT"));
  });
}
