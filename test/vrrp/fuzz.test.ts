import { aRouterConfig } from "../fixtures/router-config.js";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { prng } from "../support/prng.js";
import { describe, expect, it } from "vitest";
import type { RouterMetrics } from "../../src/agent/metrics.js";
import { AgentRuntime, type AgentSnapshot } from "../../src/agent/runtime.js";
import type { AddressFamily, VrrpVersion } from "../../src/vrrp/advertisement.js";
import { internetChecksum, ipv4PseudoHeader, ipv6PseudoHeader } from "../../src/vrrp/checksum.js";
import type { DecodeErrorCode } from "../../src/vrrp/codec.js";
import { formatAddress, parseAddress } from "../../src/vrrp/codec.js";
import type { RouterConfig } from "../../src/vrrp/config.js";
import type { NotForUsReason, RejectReason } from "../../src/vrrp/receive.js";
import { centiseconds, milliseconds as ms } from "../../src/vrrp/units.js";
import { FakeAddressWatcher, FakeAnnouncer, FakeLinkMonitor, FakeTimerClock, FakeTransport, FakeVipManager } from "../fakes/ports.js";

// Wire-input fuzzing (issue 7, item 1). Every packet goes through the agent's own receive path: AgentRuntime with fake
// ports, the bytes handed over by the fake transport as the raw socket would, the outcome read off the runtime's
// snapshot, its counters and its metrics.
// codec-property.test.ts covers random bytes and single-byte corruptions of our own encoder's output; this file
// starts from real keepalived captures and mutates them structurally, re-sealing the checksum on most of them so the
// checks behind the checksum (fields, VRID, peer, password, interval) are reached too.


interface CaptureMeta {
  readonly case: string;
  readonly family: AddressFamily;
  readonly vrrpOffset: number;
  readonly source: string;
  readonly destination: string;
  readonly configured: {
    readonly version: VrrpVersion;
    readonly vrid: number;
    readonly advertIntervalMs: number;
    readonly vips: readonly string[];
    readonly transport: "multicast" | "unicast";
    readonly authPass: string | null;
  };
}

interface Capture {
  readonly meta: CaptureMeta;
  /** IPv4: the whole datagram as a raw socket delivers it. IPv6: the VRRP message alone (no header on raw sockets). */
  readonly bytes: Uint8Array;
  /** The receiving router: the capture's peer, priority 100, configured as keepalived was. */
  readonly config: RouterConfig;
}

const FIXTURES = join(import.meta.dirname, "../fixtures/keepalived");
const OWN_IPV4 = "10.77.0.12";
const OWN_IPV6 = "fe80::77:ff:fe00:c";
const STRANGER_IPV4 = "10.77.0.66";

function hexToBytes(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, "");
  return Uint8Array.from({ length: clean.length / 2 }, (_, index) => parseInt(clean.slice(index * 2, index * 2 + 2), 16));
}

function receiverFor(meta: CaptureMeta): RouterConfig {
  const c = meta.configured;
  return aRouterConfig({
    vrid: c.vrid,
    version: c.version,
    family: meta.family,
    priority: 100,
    addresses: c.vips.map((vip) => {
      const [address = "", prefix = "32"] = vip.split("/");
      return { address, prefixLength: Number(prefix) };
    }),
    primaryAddress: meta.family === "ipv4" ? OWN_IPV4 : OWN_IPV6,
    advertisementInterval: centiseconds(c.advertIntervalMs / 10),
    peers: c.transport === "unicast" ? [meta.source] : [],
    password: c.authPass ?? undefined,
  });
}

function loadCaptures(): readonly Capture[] {
  return readdirSync(FIXTURES)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((name) => {
      const meta = JSON.parse(readFileSync(join(FIXTURES, name), "utf8")) as CaptureMeta;
      const whole = hexToBytes(readFileSync(join(FIXTURES, name.replace(/\.json$/, ".hex")), "utf8"));
      const bytes = meta.family === "ipv4" ? whole : whole.slice(meta.vrrpOffset);
      return { meta, bytes, config: receiverFor(meta) };
    });
}

/** RouterMetrics that records what the runtime reports about received packets. */
class RecordingMetrics implements RouterMetrics {
  readonly dropped = new Map<string, number>();
  received = 0;
  state(): void {}
  transition(): void {}
  advertSent(): void {}
  advertReceived(): void {
    this.received++;
  }
  packetDropped(reason: string): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }
  effectivePriority(): void {}
  vipHeld(): void {}
  healthy(): void {}
  vipRestored(): void {}
  timerLateness(): void {}
  remove(): void {}
}

/** One started runtime on fake ports, brought to `kind` the way a real one gets there. */
interface Receiver {
  readonly kind: "Backup" | "Master";
  readonly runtime: AgentRuntime;
  readonly clock: FakeTimerClock;
  readonly transport: FakeTransport;
  readonly metrics: RecordingMetrics;
}

const afterPollPhase = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function aReceiver(capture: Capture, kind: "Backup" | "Master"): Promise<Receiver> {
  const clock = new FakeTimerClock(1_000);
  const transport = new FakeTransport();
  const vips = new FakeVipManager();
  const metrics = new RecordingMetrics();
  // One announcement round: the repeats wait on real timers, and a fuzz run becomes Master thousands of times.
  const config: RouterConfig = { ...capture.config, garp: { repeat: 1, refresh: ms(0) } };
  const runtime = new AgentRuntime(
    { transport, handoverTransport: new FakeTransport(), vips, announcer: new FakeAnnouncer(vips), link: new FakeLinkMonitor(), addresses: new FakeAddressWatcher(), clock },
    { config, ifname: "eth0", logger: pino({ level: "silent" }), metrics, announceSpacing: ms(1) },
  );
  await runtime.start();
  if (kind === "Master") {
    // Past any Master_Down_Interval (RFC 5798 §6.1); the runtime fires the timer after the poll phase.
    clock.advance(60_000);
    await afterPollPhase();
  }
  const reached = runtime.snapshot().state;
  if (reached !== kind) throw new Error(`${capture.meta.case}: the receiver is ${reached}, not ${kind}`);
  return { kind, runtime, clock, transport, metrics };
}

/** What a received packet may change on the router, as the runtime shows it, and what the runtime counted. */
interface Observation {
  readonly snapshot: AgentSnapshot;
  readonly deadline: number | undefined;
  readonly advertsSent: number;
}

function observe(receiver: Receiver): Observation {
  return { snapshot: receiver.runtime.snapshot(), deadline: receiver.clock.scheduledAt, advertsSent: receiver.transport.sent.length };
}

/** The router's state fields of two observations that differ (the counters are compared apart). */
function changedFields(before: Observation, after: Observation): string[] {
  const { counters: _before, ...a } = before.snapshot;
  const { counters: _after, ...b } = after.snapshot;
  const fields: string[] = (Object.keys(a) as (keyof typeof a)[]).filter((key) => a[key] !== b[key]);
  if (before.deadline !== after.deadline) fields.push("deadline");
  if (before.advertsSent !== after.advertsSent) fields.push("advertsSent");
  return fields;
}

/** The receive counters that moved: one `dropped:<reason>` or one `adverts-received` per packet. */
function countedBetween(before: Observation, after: Observation): [string, number][] {
  return Object.entries(after.snapshot.counters).filter(
    ([name, count]) => (name === "adverts-received" || name.startsWith("dropped:")) && count !== (before.snapshot.counters[name] ?? 0),
  ).map(([name, count]) => [name, count - (before.snapshot.counters[name] ?? 0)]);
}

/** The raw socket's view: the source is the IP header's (recvfrom), the IPv6 header is not in the bytes. */
function datagramFor(bytes: Uint8Array, capture: Capture) {
  const source = capture.meta.family === "ipv4" && bytes.length >= 20 ? formatAddress(bytes.subarray(12, 16)) : capture.meta.source;
  return { family: capture.meta.family, bytes, source };
}

type Outcome = { readonly reason: string; readonly hasChanged: boolean; readonly problems: readonly string[] };

/**
 * Hands `bytes` to the receiver and reports the one outcome the runtime counted: the drop reason or "accepted", whether
 * the router's observable state changed, and any broken rule: a packet counted zero or two times, a counter and the
 * metrics that disagree, or a dropped packet (other than the one the machine acts on) that changed the state.
 */
function deliver(bytes: Uint8Array, capture: Capture, receiver: Receiver): Outcome {
  const before = observe(receiver);
  const droppedBefore = new Map(receiver.metrics.dropped);
  const receivedBefore = receiver.metrics.received;
  receiver.transport.deliver(datagramFor(bytes, capture));
  const after = observe(receiver);
  const changed = changedFields(before, after);
  const counted = countedBetween(before, after);
  const problems: string[] = [];
  const [name = "none", count = 0] = counted[0] ?? [];
  if (counted.length !== 1 || count !== 1) problems.push(`counted as ${JSON.stringify(counted)}`);
  const reason = name === "adverts-received" ? "accepted" : name.replace(/^dropped:/, "");
  const metricDrops = [...receiver.metrics.dropped].filter(([key, value]) => value !== (droppedBefore.get(key) ?? 0)).map(([key, value]) => `${key}+${value - (droppedBefore.get(key) ?? 0)}`);
  const metricReceived = receiver.metrics.received - receivedBefore;
  const metrics = reason === "accepted" ? metricReceived === 1 && metricDrops.length === 0 : metricReceived === 0 && metricDrops.join() === `${reason}+1`;
  if (!metrics) problems.push(`metrics: drops ${metricDrops.join() || "none"}, received +${metricReceived} for ${reason}`);
  if (changed.length > 0 && reason !== "accepted" && !MACHINE_ACTS_ON.has(reason)) problems.push(`${reason} changed ${changed.join(", ")}`);
  return { reason, hasChanged: changed.length > 0, problems };
}

// ---------------------------------------------------------------------------------------------------------------
// Mutations. Each returns a new array; the IPv4 header, when present, is the first 20 bytes (keepalived sends no
// options and the captures have none).

type Random = () => number;

function randomInt(random: Random, below: number): number {
  return Math.floor(random() * below);
}

function vrrpStart(capture: Capture): number {
  return capture.meta.family === "ipv4" ? 20 : 0;
}

function setTotalLength(bytes: Uint8Array, capture: Capture): void {
  if (capture.meta.family !== "ipv4" || bytes.length < 4) return;
  bytes[2] = (bytes.length >>> 8) & 0xff;
  bytes[3] = bytes.length & 0xff;
}

function flipBits(bytes: Uint8Array, random: Random): Uint8Array {
  const out = bytes.slice();
  const flips = 1 + randomInt(random, 4);
  for (let index = 0; index < flips && out.length > 0; index++) {
    const offset = randomInt(random, out.length);
    out[offset] = (out[offset] ?? 0) ^ (1 << randomInt(random, 8));
  }
  return out;
}

function truncate(bytes: Uint8Array, random: Random, capture: Capture): Uint8Array {
  const out = bytes.slice(0, randomInt(random, bytes.length));
  // Half keep the original total length (the kernel would not deliver that, but a decoder must not trust it).
  if (random() < 0.5) setTotalLength(out, capture);
  return out;
}

function extend(bytes: Uint8Array, random: Random, capture: Capture): Uint8Array {
  const extra = Uint8Array.from({ length: 1 + randomInt(random, 40) }, () => randomInt(random, 256));
  const out = new Uint8Array(bytes.length + extra.length);
  out.set(bytes);
  out.set(extra, bytes.length);
  if (random() < 0.7) setTotalLength(out, capture);
  return out;
}

/** Swaps two bytes: half the time two VRRP header fields (VRID, priority, count, interval/auth...), else any two. */
function swapFields(bytes: Uint8Array, random: Random, capture: Capture): Uint8Array {
  const out = bytes.slice();
  const base = vrrpStart(capture);
  const isHeader = random() < 0.5 && out.length >= base + 8;
  const a = isHeader ? base + randomInt(random, 8) : randomInt(random, out.length);
  const b = isHeader ? base + randomInt(random, 8) : randomInt(random, out.length);
  const held = out[a] ?? 0;
  out[a] = out[b] ?? 0;
  out[b] = held;
  return out;
}

/** Sets one field that a check looks at to a random or a boundary value. */
function setField(bytes: Uint8Array, random: Random, capture: Capture): Uint8Array {
  const out = bytes.slice();
  const base = vrrpStart(capture);
  const boundary = [0, 1, 2, 3, 0x10, 0x11, 0x21, 0x31, 0x41, 0x45, 64, 112, 254, 255];
  const value = random() < 0.5 ? (boundary[randomInt(random, boundary.length)] ?? 0) : randomInt(random, 256);
  const ipFields = capture.meta.family === "ipv4" ? [0, 2, 3, 8, 9] : [];
  const vrrpFields = [0, 1, 2, 3, 4, 5].map((offset) => base + offset);
  const fields = [...ipFields, ...vrrpFields];
  const offset = fields[randomInt(random, fields.length)] ?? base;
  if (offset < out.length) out[offset] = value;
  return out;
}

/** Changes the address count and/or the number of address bytes, to reach the length checks past the header. */
function resizeAddresses(bytes: Uint8Array, random: Random, capture: Capture): Uint8Array {
  const base = vrrpStart(capture);
  const isV2 = capture.meta.configured.version === 2;
  const count = randomInt(random, 5);
  const size = [4, 16, 1 + randomInt(random, 20)][randomInt(random, 3)] ?? 4;
  const length = 8 + count * size + (isV2 ? 8 : 0);
  const out = new Uint8Array(base + length);
  out.set(bytes.subarray(0, Math.min(bytes.length, base + 8)));
  for (let index = base + 8; index < out.length; index++) out[index] = randomInt(random, 256);
  if (isV2 && bytes.length >= base + 8) out.set(bytes.subarray(bytes.length - 8), out.length - 8);
  out[base + 3] = random() < 0.8 ? count : randomInt(random, 256);
  setTotalLength(out, capture);
  return out;
}

/** Rewrites the IP source: the configured peer, this router itself, or a stranger. */
function rewriteSource(bytes: Uint8Array, random: Random, capture: Capture): Uint8Array {
  if (capture.meta.family !== "ipv4" || bytes.length < 20) return bytes.slice();
  const out = bytes.slice();
  const choices = [capture.meta.source, OWN_IPV4, STRANGER_IPV4];
  out.set(parseAddress(choices[randomInt(random, choices.length)] ?? STRANGER_IPV4, "ipv4") ?? new Uint8Array(4), 12);
  return out;
}

/** Recomputes the VRRP checksum the way the sender would have, when the bytes still have a VRRP header to put it in. */
function reseal(bytes: Uint8Array, capture: Capture): Uint8Array {
  const out = bytes.slice();
  const isIpv4 = capture.meta.family === "ipv4";
  const start = isIpv4 ? ((out[0] ?? 0) & 0x0f) * 4 : 0;
  const end = isIpv4 ? Math.min(out.length, ((out[2] ?? 0) << 8) | (out[3] ?? 0)) : out.length;
  if (start < (isIpv4 ? 20 : 0) || end - start < 8) return out;
  const vrrp = out.subarray(start, end);
  vrrp[6] = 0;
  vrrp[7] = 0;
  const version = (vrrp[0] ?? 0) >>> 4;
  let checksum: number;
  if (version === 2) checksum = internetChecksum([vrrp]);
  else if (isIpv4) checksum = internetChecksum([ipv4PseudoHeader(out.subarray(12, 16), out.subarray(16, 20), 112, vrrp.length), vrrp]);
  else {
    const source = parseAddress(capture.meta.source, "ipv6") ?? new Uint8Array(16);
    const destination = parseAddress(capture.meta.destination, "ipv6") ?? new Uint8Array(16);
    checksum = internetChecksum([ipv6PseudoHeader(source, destination, 112, vrrp.length), vrrp]);
  }
  vrrp[6] = checksum >>> 8;
  vrrp[7] = checksum & 0xff;
  return out;
}

function mutate(capture: Capture, random: Random): Uint8Array {
  let bytes = capture.bytes;
  const rounds = 1 + randomInt(random, 3);
  for (let round = 0; round < rounds; round++) {
    const pick = randomInt(random, 7);
    if (pick === 0) bytes = flipBits(bytes, random);
    else if (pick === 1) bytes = truncate(bytes, random, capture);
    else if (pick === 2) bytes = extend(bytes, random, capture);
    else if (pick === 3) bytes = swapFields(bytes, random, capture);
    else if (pick === 4) bytes = setField(bytes, random, capture);
    else if (pick === 5) bytes = resizeAddresses(bytes, random, capture);
    else bytes = rewriteSource(bytes, random, capture);
  }
  return random() < 0.6 ? reseal(bytes, capture) : bytes;
}

/** Random bytes; half behind a plausible IPv4 header so they reach the VRRP decoder. */
function randomPacket(capture: Capture, random: Random): Uint8Array {
  const length = randomInt(random, 100);
  const bytes = Uint8Array.from({ length }, () => randomInt(random, 256));
  if (capture.meta.family === "ipv4" && length >= 20 && random() < 0.5) {
    bytes[0] = 0x45;
    bytes[8] = 255;
    bytes[9] = 112;
    bytes[16] = 224;
    bytes[17] = 0;
    bytes[18] = 0;
    bytes[19] = 18;
    setTotalLength(bytes, capture);
    if (length >= 21 && random() < 0.5) bytes[20] = capture.meta.configured.version === 2 ? 0x21 : 0x31;
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------------------------

/** Every codec check a mutation of a keepalived capture can reach with this pipeline. `unsupported-family` cannot:
 * the receiver always states its version, so a v2 header in an IPv6 context is `bad-version` first. */
const REACHABLE_CODES: readonly DecodeErrorCode[] = [
  "truncated",
  "too-long",
  "bad-version",
  "bad-type",
  "bad-checksum",
  "no-addresses",
  "address-count-mismatch",
  "wrong-family-length",
  "ttl-not-255",
  "bad-auth-type",
  "bad-interval",
  "bad-ip-header",
  "not-vrrp-protocol",
];

/** Every codec code, so a codec reject is told apart from a configuration check; the type keeps the list complete. */
const CODEC_CODES: ReadonlySet<string> = new Set(
  Object.keys({
    truncated: true,
    "too-long": true,
    "bad-version": true,
    "unsupported-family": true,
    "bad-type": true,
    "bad-checksum": true,
    "no-addresses": true,
    "address-count-mismatch": true,
    "wrong-family-length": true,
    "ttl-not-255": true,
    "bad-auth-type": true,
    "bad-interval": true,
    "bad-ip-header": true,
    "not-vrrp-protocol": true,
    "handover-address-count": true,
  } satisfies Record<DecodeErrorCode, true>),
);

/** The configuration checks of receive.ts: a packet they turn away must not change the router either. */
const CLASSIFIED_AWAY: ReadonlySet<string> = new Set(
  Object.keys({
    "other-vrid": true,
    "own-advert": true,
    "version-mismatch": true,
    "unknown-peer": true,
    "auth-mismatch": true,
    "interval-mismatch": true,
    "address-mismatch": true,
    "local-address-owner": true,
  } satisfies Record<NotForUsReason | RejectReason, true>),
);

/** The one drop of an accepted advert that the machine acts on: a preempting Backup notes a lower priority (§6.4.2). */
const MACHINE_ACTS_ON: ReadonlySet<string> = new Set(["lower-priority"]);

/** Configuration checks (receive.ts) that the mutations reach; version-mismatch is caught earlier as bad-version. */
const REACHABLE_VERDICTS = ["other-vrid", "own-advert", "unknown-peer", "auth-mismatch", "interval-mismatch", "address-mismatch"];

describe("wire input fuzzing", () => {
  const seed = 0xf022;
  const mutatedPerCapture = 600;
  const randomPerCapture = 150;

  it(`mutated keepalived captures and random bytes through the agent's receive path never throw; rejected ones never change the router and are counted by reason (seed ${seed})`, async () => {
    const random = prng(seed);
    const captures = loadCaptures();
    expect(captures.length).toBeGreaterThanOrEqual(10);

    const counts = new Map<string, number>();
    const broken: string[] = [];
    let packets = 0;
    let rebuilt = 0;
    const started = performance.now();
    for (const capture of captures) {
      const receivers = [await aReceiver(capture, "Backup"), await aReceiver(capture, "Master")];
      for (let round = 0; round < mutatedPerCapture + randomPerCapture; round++) {
        const bytes = round < mutatedPerCapture ? mutate(capture, random) : randomPacket(capture, random);
        packets++;
        for (const [index, receiver] of receivers.entries()) {
          // A throw out of the receive path fails the test by itself.
          const outcome = deliver(bytes, capture, receiver);
          const stage = CODEC_CODES.has(outcome.reason) ? "codec" : CLASSIFIED_AWAY.has(outcome.reason) ? "classified" : "machine";
          const key = `${stage}:${outcome.reason}@${receiver.kind}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
          if (outcome.hasChanged) counts.set(`changed:${stage}@${receiver.kind}`, (counts.get(`changed:${stage}@${receiver.kind}`) ?? 0) + 1);
          for (const problem of outcome.problems) broken.push(`${capture.meta.case}@${receiver.kind} ${Buffer.from(bytes).toString("hex")}: ${problem}`);
          // An accepted advert may move the router; the next packet starts from the state under test again.
          if (receiver.runtime.snapshot().state !== receiver.kind) {
            receivers[index] = await aReceiver(capture, receiver.kind);
            rebuilt++;
          }
        }
      }
    }
    const elapsed = performance.now() - started;

    const table = [...counts.entries()].sort(([a], [b]) => a.localeCompare(b));
    console.log(`fuzzed ${packets} packets from ${captures.length} captures through AgentRuntime in ${elapsed.toFixed(0)} ms, ${rebuilt} receivers rebuilt (seed ${seed})`);
    console.table(Object.fromEntries(table));

    expect(broken.slice(0, 10)).toEqual([]);
    expect(packets).toBeGreaterThanOrEqual(7_000);
    for (const kind of ["Backup", "Master"]) {
      const missingCodes = REACHABLE_CODES.filter((code) => (counts.get(`codec:${code}@${kind}`) ?? 0) === 0);
      expect(missingCodes, kind).toEqual([]);
      const missingVerdicts = REACHABLE_VERDICTS.filter((verdict) => (counts.get(`classified:${verdict}@${kind}`) ?? 0) === 0);
      expect(missingVerdicts, kind).toEqual([]);
      // Accepted adverts reach the machine and change the router often enough that the "unchanged" checks above
      // compare states that could have differed.
      expect(counts.get(`machine:accepted@${kind}`) ?? 0, kind).toBeGreaterThan(300);
      expect(counts.get(`changed:machine@${kind}`) ?? 0, kind).toBeGreaterThan(100);
    }
  });

  it("an unmutated capture of each kind is accepted by a Backup (the mutations start from valid input)", async () => {
    const outcomes: [string, string][] = [];
    for (const capture of loadCaptures()) {
      if (capture.meta.configured.transport !== "multicast" && capture.meta.case !== "v3-ipv4-unicast") continue;
      const outcome = deliver(capture.bytes, capture, await aReceiver(capture, "Backup"));
      outcomes.push([capture.meta.case, outcome.problems.length === 0 ? outcome.reason : outcome.problems.join("; ")]);
    }
    expect(outcomes.length).toBeGreaterThanOrEqual(5);
    expect(outcomes.filter(([, reason]) => reason !== "accepted")).toEqual([]);
  });
});
