import { aRouterConfig } from "../fixtures/router-config.js";
import { prng } from "../support/prng.js";
import { describe, expect, it } from "vitest";
import type { DecodeContext } from "../../src/vrrp/codec.js";
import { decodeAdvertisement, decodeIpv4Datagram, encodeAdvertisement } from "../../src/vrrp/codec.js";
import { buildAdvert, encodeContextFor } from "../../src/vrrp/config.js";
import { internetChecksum } from "../../src/vrrp/checksum.js";
import type { RouterState } from "../../src/vrrp/machine.js";
import { initialState, nextDeadline, step } from "../../src/vrrp/machine.js";
import { milliseconds as ms } from "../../src/vrrp/units.js";


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

describe("decode is total", () => {
  const seed = 0x5eed;
  it(`random bytes never throw and, when not decodable, never reach the machine (seed ${seed})`, () => {
    const random = prng(seed);
    const states = running();
    let decoded = 0;
    const changed: Uint8Array[] = [];
    for (let round = 0; round < 10000; round++) {
      const length = Math.floor(random() * 80);
      const bytes = Uint8Array.from({ length }, () => Math.floor(random() * 256));
      // Half the inputs look like VRRP at first glance, so the checks past the version are exercised too.
      if (length > 0 && random() < 0.5) bytes[0] = random() < 0.5 ? 0x31 : 0x21;
      // A throw fails the test by itself; the checks below collect instead of calling expect 100 000 times.
      decodeIpv4Datagram(bytes);
      for (const ctx of contexts) {
        const result = decodeAdvertisement(bytes, ctx);
        if (!result.ok) continue;
        decoded++;
        for (const state of states) {
          const next = step(state, { kind: "advert-received", now: ms(10500), advert: result.value, source: ctx.source });
          if (result.value.vrid !== config.vrid && next.state !== state) changed.push(bytes);
        }
      }
    }
    expect(changed).toEqual([]);
    // A 16-bit checksum lets about one random candidate in 65536 through; most runs decode none.
    expect(decoded).toBeLessThan(10);
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
