import { aRouterConfig } from "../fixtures/router-config.js";
import { prng } from "../support/prng.js";
import { describe, expect, it } from "vitest";
import type { DecodeContext } from "../../src/vrrp/codec.js";
import { decodeAdvertisement, decodeIpv4Datagram, encodeAdvertisement, parseAddress } from "../../src/vrrp/codec.js";
import { buildAdvert, encodeContextFor } from "../../src/vrrp/config.js";
import type { Advertisement } from "../../src/vrrp/advertisement.js";
import { internetChecksum, ipv4PseudoHeader, ipv6PseudoHeader } from "../../src/vrrp/checksum.js";
import type { RouterState } from "../../src/vrrp/machine.js";
import { initialState, nextDeadline, step } from "../../src/vrrp/machine.js";
import { centiseconds, milliseconds as ms, seconds } from "../../src/vrrp/units.js";


const config = aRouterConfig();

const contexts: readonly DecodeContext[] = [
  { family: "ipv4", source: "10.0.0.12", destination: "224.0.0.18", ttl: 255 },
  { family: "ipv4", source: "10.0.0.12", destination: "224.0.0.18", version: 2 },
  { family: "ipv4", source: "10.0.0.12", destination: "224.0.0.18", v3Ipv4Checksum: "rfc9568" },
  { family: "ipv6", source: "fe80::12", destination: "ff02::12", ttl: 255 },
];

function running(): readonly RouterState[] {
  const backup = step(initialState(config), { kind: "started", now: ms(0) }).state;
  const master = step(backup, { kind: "timer-expired", now: ms(10000) }).state;
  return [backup, master];
}

/** A valid advert for `ctx` (v2 where the context asks for it, IPv6 addresses for IPv6), as our encoder sends it. */
function validAdvertFor(ctx: DecodeContext): Uint8Array {
  const address = ctx.family === "ipv4" ? "192.168.0.150" : "fe80::150";
  const advert: Advertisement =
    ctx.version === 2
      ? { version: 2, vrid: config.vrid, priority: 150, adverInterval: seconds(1), authentication: { type: "none" }, addresses: [address] }
      : { version: 3, vrid: config.vrid, priority: 150, maxAdverInterval: centiseconds(100), addresses: [address] };
  return encodeAdvertisement(advert, ctx);
}

/** Recomputes the checksum of a mutated VRRP message the way a sender would (RFC 5798 §5.2.8), so it decodes. */
function reseal(bytes: Uint8Array, ctx: DecodeContext): void {
  bytes[6] = 0;
  bytes[7] = 0;
  const isV2 = (bytes[0] ?? 0) >>> 4 === 2;
  const source = parseAddress(ctx.source, ctx.family) ?? new Uint8Array(0);
  const destination = parseAddress(ctx.destination, ctx.family) ?? new Uint8Array(0);
  let checksum: number;
  if (isV2 || (ctx.family === "ipv4" && ctx.v3Ipv4Checksum === "rfc9568")) checksum = internetChecksum([bytes]);
  else if (ctx.family === "ipv4") checksum = internetChecksum([ipv4PseudoHeader(source, destination, 112, bytes.length), bytes]);
  else checksum = internetChecksum([ipv6PseudoHeader(source, destination, 112, bytes.length), bytes]);
  bytes[6] = checksum >>> 8;
  bytes[7] = checksum & 0xff;
}

describe("decode is total", () => {
  const seed = 0x5eed;
  it(`random bytes and mutated valid adverts never throw, and those that decode with another VRID never change the machine's state (seed ${seed})`, () => {
    const random = prng(seed);
    const states = running();
    const randomRounds = 10000;
    const mutatedRounds = 4000;
    let decodedRandom = 0;
    let decodedForeign = 0;
    const changed: string[] = [];
    for (let round = 0; round < randomRounds + mutatedRounds; round++) {
      let bytes: Uint8Array;
      if (round < randomRounds) {
        const length = Math.floor(random() * 80);
        bytes = Uint8Array.from({ length }, () => Math.floor(random() * 256));
        // Half the inputs look like VRRP at first glance, so the checks past the version are exercised too.
        if (length > 0 && random() < 0.5) bytes[0] = random() < 0.5 ? 0x31 : 0x21;
      } else {
        // A valid advert with random VRID, priority and interval bytes (sometimes one more random byte), re-sealed most
        // of the time: these reach step(), which the random bytes above almost never do.
        const ctx = contexts[Math.floor(random() * contexts.length)];
        if (ctx === undefined) throw new Error("a context index out of range");
        bytes = validAdvertFor(ctx);
        for (const offset of [1, 2, 4, 5]) if (random() < 0.7) bytes[offset] = Math.floor(random() * 256);
        if (random() < 0.2) {
          const offset = Math.floor(random() * bytes.length);
          bytes[offset] = Math.floor(random() * 256);
        }
        if (random() < 0.8) reseal(bytes, ctx);
      }
      // A throw fails the test by itself; the checks below collect instead of calling expect 100 000 times.
      decodeIpv4Datagram(bytes);
      for (const ctx of contexts) {
        const result = decodeAdvertisement(bytes, ctx);
        if (!result.ok) continue;
        if (round < randomRounds) decodedRandom++;
        if (result.value.vrid === config.vrid) continue;
        decodedForeign++;
        for (const state of states) {
          const next = step(state, { kind: "advert-received", now: ms(10500), advert: result.value, source: ctx.source });
          if (next.state !== state) changed.push(`${Buffer.from(bytes).toString("hex")} (${ctx.family}) changed ${state.kind}`);
        }
      }
    }
    expect(changed).toEqual([]);
    // A 16-bit checksum lets about one random candidate in 65536 through; most runs decode none of the random bytes.
    expect(decodedRandom).toBeLessThan(10);
    // The mutated adverts make the state check above run: about 4000 × 0.8 × (1 - 1/256) reach it (2 × per state).
    expect(decodedForeign).toBeGreaterThan(2000);
  });

  it(`random adverts with a valid checksum never throw from decode or step (seed ${seed + 2})`, () => {
    const random = prng(seed + 2);
    const states = running();
    // These two contexts checksum the VRRP message alone, so the test can make any bytes pass the checksum.
    const v2: DecodeContext = { family: "ipv4", source: "10.0.0.12", destination: "224.0.0.18" };
    const v3: DecodeContext = { ...v2, v3Ipv4Checksum: "rfc9568" };
    const outcomes = new Map<string, number>();
    const broken: string[] = [];
    for (let round = 0; round < 10000; round++) {
      const count = 1 + Math.floor(random() * 3);
      const isV2 = random() < 0.5;
      const length = 8 + count * 4 + (isV2 ? 8 : 0) + (random() < 0.1 ? 1 : 0);
      const bytes = Uint8Array.from({ length }, () => Math.floor(random() * 256));
      bytes[0] = isV2 ? 0x21 : 0x31;
      if (random() < 0.7) bytes[1] = config.vrid;
      bytes[3] = count;
      bytes[6] = 0;
      bytes[7] = 0;
      const checksum = internetChecksum([bytes]);
      bytes[6] = checksum >>> 8;
      bytes[7] = checksum & 0xff;
      const result = decodeAdvertisement(bytes, isV2 ? v2 : v3);
      const key = result.ok ? "ok" : result.error.code;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      if (!result.ok) continue;
      for (const state of states) {
        const next = step(state, { kind: "advert-received", now: ms(10500), advert: result.value, source: "10.0.0.12" });
        const isForeign = result.value.vrid !== config.vrid || result.value.version !== config.version;
        if (isForeign && next.state !== state) broken.push(`foreign advert changed ${state.kind}`);
        if (next.state.kind !== "Backup" && next.state.kind !== "Master") broken.push(`${state.kind} -> ${next.state.kind}`);
        if (!Number.isFinite(nextDeadline(next.state))) broken.push(`${next.state.kind} without a deadline`);
      }
    }
    expect(broken).toEqual([]);
    expect(outcomes.get("ok")).toBeGreaterThan(500);
    expect(outcomes.get("too-long")).toBeGreaterThan(50);
  });

  it(`every single-byte corruption of a valid advert is caught, so the state never changes (seed ${seed + 1})`, () => {
    const random = prng(seed + 1);
    const ctx = { ...encodeContextFor(config, "224.0.0.18"), source: "10.0.0.12" };
    const valid = encodeAdvertisement(buildAdvert(config, 150), ctx);
    const accepted: Uint8Array[] = [];
    for (let round = 0; round < 2000; round++) {
      const bytes = valid.slice();
      const offset = Math.floor(random() * bytes.length);
      bytes[offset] = (bytes[offset] ?? 0) ^ (1 + Math.floor(random() * 255));
      if (decodeAdvertisement(bytes, ctx).ok) accepted.push(bytes);
    }
    expect(accepted).toEqual([]);
  });
});
