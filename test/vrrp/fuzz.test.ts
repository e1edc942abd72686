import { aRouterConfig } from "../fixtures/router-config.js";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { prng } from "../support/prng.js";
import { describe, expect, it } from "vitest";
import type { AddressFamily, VrrpVersion } from "../../src/vrrp/advertisement.js";
import { internetChecksum, ipv4PseudoHeader, ipv6PseudoHeader } from "../../src/vrrp/checksum.js";
import type { DecodeErrorCode } from "../../src/vrrp/codec.js";
import { decodeAdvertisement, decodeIpv4Datagram, parseAddress } from "../../src/vrrp/codec.js";
import type { RouterConfig } from "../../src/vrrp/config.js";
import type { RouterState } from "../../src/vrrp/machine.js";
import { initialState, nextDeadline, step } from "../../src/vrrp/machine.js";
import { classifyAdvert } from "../../src/vrrp/receive.js";
import { centiseconds, milliseconds as ms } from "../../src/vrrp/units.js";

// Wire-input fuzzing (issue 7, item 1). The pipeline below is the one src/agent/runtime.ts runs on a received
// datagram: decodeIpv4Datagram, decodeAdvertisement with the TTL only for the multicast group, then step().
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
  readonly states: readonly RouterState[];
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

function runningStates(config: RouterConfig): readonly RouterState[] {
  const backup = step(initialState(config), { kind: "started", now: ms(0) }).state;
  const master = step(backup, { kind: "timer-expired", now: ms(10000) }).state;
  return [backup, master];
}

function loadCaptures(): readonly Capture[] {
  return readdirSync(FIXTURES)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((name) => {
      const meta = JSON.parse(readFileSync(join(FIXTURES, name), "utf8")) as CaptureMeta;
      const whole = hexToBytes(readFileSync(join(FIXTURES, name.replace(/\.json$/, ".hex")), "utf8"));
      const bytes = meta.family === "ipv4" ? whole : whole.slice(meta.vrrpOffset);
      const config = receiverFor(meta);
      return { meta, bytes, config, states: runningStates(config) };
    });
}

/** What happened to one packet: a codec error, or what step() did with it. */
type Outcome =
  | { readonly stage: "codec"; readonly code: DecodeErrorCode; readonly state: RouterState }
  | { readonly stage: "machine"; readonly verdict: string; readonly state: RouterState; readonly isClassifiedAway: boolean };

/** The agent runtime's receive path, with the datagram's source taken from the IP header (recvfrom gives the same). */
function deliver(bytes: Uint8Array, capture: Capture, state: RouterState): Outcome {
  const config = state.config;
  let payload = bytes;
  let source = capture.meta.source;
  let destination = capture.meta.destination;
  let ttl: number | undefined;
  if (config.family === "ipv4") {
    const ip = decodeIpv4Datagram(bytes);
    if (!ip.ok) return { stage: "codec", code: ip.error.code, state };
    payload = ip.value.payload;
    source = ip.value.source;
    destination = ip.value.destination;
    if (destination === "224.0.0.18") ttl = ip.value.ttl;
  }
  const decoded = decodeAdvertisement(payload, {
    family: config.family,
    source,
    destination,
    v3Ipv4Checksum: config.v3Ipv4Checksum,
    version: config.version,
    ...(ttl === undefined ? {} : { ttl }),
  });
  if (!decoded.ok) return { stage: "codec", code: decoded.error.code, state };
  const verdict = classifyAdvert(decoded.value, source, config);
  const result = step(state, { kind: "advert-received", now: ms(10500), advert: decoded.value, source });
  const discard = result.actions.find((action) => action.kind === "discard");
  return {
    stage: "machine",
    verdict: discard?.kind === "discard" ? discard.reason : "processed",
    state: result.state,
    isClassifiedAway: verdict.kind !== "accepted",
  };
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

/** Configuration checks (receive.ts) that the mutations reach; version-mismatch is caught earlier as bad-version. */
const REACHABLE_VERDICTS = ["other-vrid", "own-advert", "unknown-peer", "auth-mismatch", "interval-mismatch", "address-mismatch"];

describe("wire input fuzzing", () => {
  const seed = 0xf022;
  const mutatedPerCapture = 10_000;
  const randomPerCapture = 2_000;

  it(`mutated keepalived captures and random bytes never throw, never reach the machine when rejected, and are counted by reason (seed ${seed})`, () => {
    const random = prng(seed);
    const captures = loadCaptures();
    expect(captures.length).toBeGreaterThanOrEqual(10);
    for (const capture of captures) expect(capture.states.map((state) => state.kind)).toEqual(["Backup", "Master"]);

    const counts = new Map<string, number>();
    const broken: string[] = [];
    let packets = 0;
    const started = performance.now();
    for (const capture of captures) {
      for (let round = 0; round < mutatedPerCapture + randomPerCapture; round++) {
        const bytes = round < mutatedPerCapture ? mutate(capture, random) : randomPacket(capture, random);
        packets++;
        // The outcome key comes from the first state; the codec part is state-independent, the machine part is not.
        for (const [index, state] of capture.states.entries()) {
          const outcome = deliver(bytes, capture, state);
          const key = outcome.stage === "codec" ? `codec:${outcome.code}` : `machine:${outcome.verdict}`;
          if (index === 0 || outcome.stage === "machine") {
            const stateKey = outcome.stage === "codec" ? key : `${key}@${state.kind}`;
            counts.set(stateKey, (counts.get(stateKey) ?? 0) + 1);
          }
          const hex = Buffer.from(bytes).toString("hex");
          if (outcome.state !== state && outcome.stage === "codec") broken.push(`${capture.meta.case} ${hex}: codec reject changed state`);
          if (outcome.stage !== "machine") continue;
          if (outcome.isClassifiedAway && outcome.state !== state) {
            broken.push(`${capture.meta.case} ${hex}: ${outcome.verdict} changed ${state.kind} to ${outcome.state.kind}`);
          }
          if (outcome.state.kind !== "Backup" && outcome.state.kind !== "Master") broken.push(`${capture.meta.case} ${hex}: ${state.kind} -> ${outcome.state.kind}`);
          if (nextDeadline(outcome.state) === undefined) broken.push(`${capture.meta.case} ${hex}: ${outcome.state.kind} without a deadline`);
        }
      }
    }
    const elapsed = performance.now() - started;

    const table = [...counts.entries()].sort(([a], [b]) => a.localeCompare(b));
    console.log(`fuzzed ${packets} packets from ${captures.length} captures in ${elapsed.toFixed(0)} ms (seed ${seed})`);
    console.table(Object.fromEntries(table));

    expect(broken.slice(0, 10)).toEqual([]);
    expect(packets).toBeGreaterThanOrEqual(100_000);
    const missingCodes = REACHABLE_CODES.filter((code) => (counts.get(`codec:${code}`) ?? 0) === 0);
    expect(missingCodes).toEqual([]);
    const missingVerdicts = REACHABLE_VERDICTS.filter(
      (verdict) => (counts.get(`machine:${verdict}@Backup`) ?? 0) === 0 || (counts.get(`machine:${verdict}@Master`) ?? 0) === 0,
    );
    expect(missingVerdicts).toEqual([]);
    // Every packet got exactly one outcome per state: codec rejections are state-independent and counted once.
    const codec = table.filter(([key]) => key.startsWith("codec:")).reduce((sum, [, count]) => sum + count, 0);
    const machine = table.filter(([key]) => key.endsWith("@Backup")).reduce((sum, [, count]) => sum + count, 0);
    expect(codec + machine).toBe(packets);
  });

  it("an unmutated capture of each kind still decodes (the mutations start from valid input)", () => {
    const decodable = loadCaptures()
      .filter((capture) => capture.meta.configured.transport === "multicast" || capture.meta.case === "v3-ipv4-unicast")
      .map((capture) => {
        const outcome = deliver(capture.bytes, capture, capture.states[0] ?? initialState(capture.config));
        return [capture.meta.case, outcome.stage === "machine" ? "decoded" : outcome.code];
      });
    expect(decodable.filter(([, result]) => result !== "decoded")).toEqual([]);
  });
});
