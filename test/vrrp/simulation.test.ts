// A few routers on a fake wire, driven the way the runtime will drive the core: one deadline per router from
// nextDeadline, every packet encoded and decoded for real, time from a FakeClock. No sockets, no sleeps.

import { aRouterConfig } from "../fixtures/router-config.js";
import { describe, expect, it } from "vitest";
import { FakeClock } from "../fakes/fake-clock.js";
import { decodeAdvertisement, encodeAdvertisement } from "../../src/vrrp/codec.js";
import type { RouterConfig } from "../../src/vrrp/config.js";
import { advertDestinations, encodeContextFor } from "../../src/vrrp/config.js";
import type { RouterEvent, RouterState } from "../../src/vrrp/machine.js";
import { initialState, nextDeadline, step } from "../../src/vrrp/machine.js";
import { centiseconds, milliseconds as ms } from "../../src/vrrp/units.js";

const LATENCY = 1;

interface Node {
  readonly name: string;
  state: RouterState;
  holdsVip: boolean;
  isUp: boolean;
  hasExited: boolean;
  /** Nodes in the same partition hear each other. */
  partition: number;
}

interface Packet {
  readonly at: number;
  readonly to: Node;
  readonly bytes: Uint8Array;
  readonly source: string;
  readonly destination: string;
}

function configFor(address: string, priority: number, overrides: Partial<RouterConfig> = {}): RouterConfig {
  return aRouterConfig({ priority, primaryAddress: address, ...overrides });
}

class Wire {
  readonly clock = new FakeClock();
  readonly nodes: Node[] = [];
  #packets: Packet[] = [];
  /** Every instant (after each event) at which no node held the VIP, once a first Master existed. */
  readonly gaps: number[] = [];
  #hadMaster = false;

  add(name: string, config: RouterConfig): Node {
    const node: Node = { name, state: initialState(config), holdsVip: false, isUp: true, hasExited: false, partition: 0 };
    this.nodes.push(node);
    return node;
  }

  deliver(node: Node, event: RouterEvent): void {
    if (!node.isUp || node.hasExited) return;
    const { state, actions } = step(node.state, event);
    node.state = state;
    for (const action of actions) {
      switch (action.kind) {
        case "send-advert":
          for (const destination of advertDestinations(state.config)) {
            const bytes = encodeAdvertisement(action.advert, encodeContextFor(state.config, destination));
            for (const peer of this.nodes) {
              if (peer === node || peer.partition !== node.partition) continue;
              this.#packets.push({ at: event.now + LATENCY, to: peer, bytes, source: state.config.primaryAddress, destination });
            }
          }
          break;
        case "add-vip":
          node.holdsVip = true;
          break;
        case "remove-vip":
          node.holdsVip = false;
          break;
        case "shutdown-complete":
          node.hasExited = true;
          break;
        default:
          break;
      }
    }
    const holders = this.nodes.filter((candidate) => candidate.holdsVip && candidate.isUp).length;
    if (holders > 0) this.#hadMaster = true;
    else if (this.#hadMaster) this.gaps.push(event.now);
  }

  startAll(): void {
    for (const node of this.nodes) this.deliver(node, { kind: "started", now: this.clock.now() });
  }

  /** Runs every packet and timer up to `until`, in time order. */
  runUntil(until: number): void {
    for (;;) {
      const packet = [...this.#packets].sort((a, b) => a.at - b.at)[0];
      const timers = this.nodes
        .filter((node) => node.isUp && !node.hasExited)
        .map((node) => ({ node, at: nextDeadline(node.state) }))
        .filter((timer): timer is { node: Node; at: ReturnType<typeof ms> } => timer.at !== undefined)
        .sort((a, b) => a.at - b.at);
      const timer = timers[0];
      const nextAt = Math.min(packet?.at ?? Infinity, timer?.at ?? Infinity);
      if (nextAt > until) break;
      this.clock.advance(Math.max(0, nextAt - this.clock.now()));
      const now = this.clock.now();
      if (packet !== undefined && packet.at === nextAt) {
        this.#packets = this.#packets.filter((candidate) => candidate !== packet);
        const decoded = decodeAdvertisement(packet.bytes, { ...encodeContextFor(packet.to.state.config, packet.destination), source: packet.source, ttl: 255 });
        if (!decoded.ok) throw new Error(`undecodable packet: ${decoded.error.code}`);
        this.deliver(packet.to, { kind: "advert-received", now, advert: decoded.value, source: packet.source });
      } else if (timer !== undefined) {
        this.deliver(timer.node, { kind: "timer-expired", now });
      }
    }
    this.clock.advance(Math.max(0, until - this.clock.now()));
  }

  masters(): string[] {
    return this.nodes.filter((node) => node.isUp && !node.hasExited && node.state.kind === "Master").map((node) => node.name);
  }
}

describe("simulation: the core driven like the runtime drives it", () => {
  it("RFC 5798 §6.4 MUST: the highest priority is elected; on equal priority the higher address", () => {
    const wire = new Wire();
    wire.add("a", configFor("10.0.0.11", 100));
    wire.add("b", configFor("10.0.0.12", 100));
    wire.add("c", configFor("10.0.0.10", 100));
    wire.startAll();
    wire.runUntil(10000);
    expect(wire.masters()).toEqual(["b"]);
    expect(wire.nodes.filter((node) => node.holdsVip).map((node) => node.name)).toEqual(["b"]);
  });

  it("RFC 5798 §6.1 MUST: when the Master dies, the best Backup takes over within Master_Down_Interval", () => {
    const wire = new Wire();
    const a = wire.add("a", configFor("10.0.0.11", 150));
    wire.add("b", configFor("10.0.0.12", 100));
    wire.add("c", configFor("10.0.0.13", 50));
    wire.startAll();
    wire.runUntil(10000);
    expect(wire.masters()).toEqual(["a"]);
    a.isUp = false;
    // The last advert left a at 9609 + n * 1000; b's Master_Down_Interval is 3000 + 609 ms after hearing it.
    wire.runUntil(10000 + 3609 + 1000);
    expect(wire.masters()).toEqual(["b"]);
  });

  it("Extension (not in RFC 5798), graceful shutdown: the Backup takes over after Skew_Time and the VIP is never unheld", () => {
    const wire = new Wire();
    const a = wire.add("a", configFor("10.0.0.11", 150));
    const b = wire.add("b", configFor("10.0.0.12", 100));
    wire.startAll();
    wire.runUntil(10000);
    expect(wire.masters()).toEqual(["a"]);
    wire.deliver(a, { kind: "shutdown-requested", now: wire.clock.now() });
    expect(a.holdsVip).toBe(true);
    // b waits Skew_Time (609 ms) after the priority-0 advert, then a hears b's first advert and lets go.
    wire.runUntil(10000 + LATENCY + 609 + LATENCY);
    expect(b.state.kind).toBe("Master");
    expect(a.hasExited).toBe(true);
    expect(a.holdsVip).toBe(false);
    expect(wire.gaps).toEqual([]);
  });

  it("RFC 9568 §6.4.3 MUST: a healed split brain ends within one round trip, not at the Master's next advert", () => {
    const wire = new Wire();
    // a advertises every 5 s (Master from 17070, next advert at 20000); b every 1 s on whole seconds (Master from 3609).
    const a = wire.add("a", configFor("10.0.0.11", 150, { advertisementInterval: centiseconds(500) }));
    const b = wire.add("b", configFor("10.0.0.12", 100));
    b.partition = 1;
    wire.startAll();
    wire.runUntil(18000);
    expect(wire.masters().sort()).toEqual(["a", "b"]);
    b.partition = 0;
    // b's advert at 19000 reaches a at 19001; a answers at once, and b steps down at 19002, before a's 20000.
    wire.runUntil(19000 + 2 * LATENCY);
    expect(wire.masters()).toEqual(["a"]);
    expect(a.holdsVip && !b.holdsVip).toBe(true);
  });

  it("RFC 5798 §6.4.2 MUST: a higher-priority router that starts later preempts, unless preemption is off", () => {
    for (const [mode, expected] of [["always", "late"], ["never", "early"]] as const) {
      const wire = new Wire();
      wire.add("early", configFor("10.0.0.11", 100));
      const late = wire.add("late", configFor("10.0.0.12", 200, { preemption: { mode, delay: ms(0) } }));
      late.isUp = false;
      wire.startAll();
      wire.runUntil(10000);
      late.isUp = true;
      wire.deliver(late, { kind: "started", now: wire.clock.now() });
      wire.runUntil(20000);
      expect(wire.masters()).toEqual([expected]);
    }
  });
});

describe("FakeClock", () => {
  it("moves forward by hand and refuses to go back", () => {
    const clock = new FakeClock(5);
    expect(clock.advance(10)).toBe(15);
    expect(clock.now()).toBe(15);
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(clock.now()).toBe(15);
  });
});
