import { describe, expect, it } from "vitest";
import type { Advertisement, AdvertisementV2, AdvertisementV3 } from "../../src/vrrp/advertisement.js";
import type { DecodeContext, DecodeErrorCode, DecodeResult, EncodeContext } from "../../src/vrrp/codec.js";
import {
  compareAddressBytes,
  decodeAdvertisement,
  decodeIpv4Datagram,
  encodeAdvertisement,
  peekVirtualRouterId,
  formatAddress,
  isSameAdvertisement,
  parseAddress,
  passwordToAuthData,
} from "../../src/vrrp/codec.js";
import { internetChecksum } from "../../src/vrrp/checksum.js";
import { buildAdvert } from "../../src/vrrp/config.js";
import { aRouterConfig } from "../fixtures/router-config.js";
import { centiseconds, seconds } from "../../src/vrrp/units.js";

function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

function errorCode<T>(result: DecodeResult<T>): DecodeErrorCode | "ok" {
  return result.ok ? "ok" : result.error.code;
}

// v3, IPv4, keepalived's default checksum (pseudo-header included).
//   VRRP:   31 33 96 01 00 64 cs cs c0 a8 00 96   (version 3 type 1, VRID 51, priority 150, 1 address, 100 cs)
//   pseudo: 0a 00 00 0b  e0 00 00 12  00 70  00 0c   (10.0.0.11 -> 224.0.0.18, protocol 112, length 12)
//   pseudo words: 0a00+000b+e000+0012+0070+000c          = 0ea99
//   VRRP words:   3133+9601+0064+0000+c0a8+0096          = 188d6
//   total 2736f, folded 7371 (736f + 2), complement 8c8e.
const v3Ipv4: AdvertisementV3 = { version: 3, vrid: 51, priority: 150, maxAdverInterval: centiseconds(100), addresses: ["192.168.0.150"] };
const v3Ipv4Context: EncodeContext = { family: "ipv4", source: "10.0.0.11", destination: "224.0.0.18" };
const v3Ipv4Bytes = hex("31 33 96 01 00 64 8c 8e c0 a8 00 96");
// The same message under RFC 9568 (no IPv4 pseudo-header): 188d6 folds to 88d7, complement 7728.
const v3Ipv4Rfc9568Bytes = hex("31 33 96 01 00 64 77 28 c0 a8 00 96");

// v2, IPv4, auth_type PASS "secret", 1 s, VRID 51, priority 100, two addresses; the checksum covers the VRRP
// message only (RFC 3768 §5.3.8), including the 8 authentication bytes.
//   words: 2133+6402+0101+0000+c0a8+0096+c0a8+0097+7365+6372+6574+0000 = 344fe, folded 4501, complement bafe.
const v2Ipv4: AdvertisementV2 = {
  version: 2,
  vrid: 51,
  priority: 100,
  adverInterval: seconds(1),
  authentication: { type: "simple-password", data: passwordToAuthData("secret") },
  addresses: ["192.168.0.150", "192.168.0.151"],
};
const v2Context: EncodeContext = { family: "ipv4", source: "10.0.0.12", destination: "224.0.0.18" };
const v2Bytes = hex("21 33 64 02 01 01 ba fe c0 a8 00 96 c0 a8 00 97 73 65 63 72 65 74 00 00");

// v3, IPv6, VRID 7, priority 200, 50 cs, 2001:db8::150, fe80::1 -> ff02::12, RFC 8200 pseudo-header.
//   pseudo words: fe80+0001 (source) + ff02+0012 (destination) + 0018 (length 24) + 0070 (next header 112) = 1ff1f
//   VRRP words: 3107+c801+0032+0000+2001+0db8+0150 = 7741; total 26660 (1ff1f + 7741), folded 2663, complement d99c.
const v3Ipv6: AdvertisementV3 = { version: 3, vrid: 7, priority: 200, maxAdverInterval: centiseconds(50), addresses: ["2001:db8::150"] };
const v3Ipv6Context: EncodeContext = { family: "ipv6", source: "fe80::1", destination: "ff02::12" };
const v3Ipv6Bytes = hex("31 07 c8 01 00 32 d9 9c 2001 0db8 0000 0000 0000 0000 0000 0150");

describe("codec golden bytes", () => {
  const cases: ReadonlyArray<[string, Advertisement, EncodeContext, Uint8Array]> = [
    ["v3 IPv4 with pseudo-header (keepalived default)", v3Ipv4, v3Ipv4Context, v3Ipv4Bytes],
    ["v3 IPv4 without pseudo-header (RFC 9568)", v3Ipv4, { ...v3Ipv4Context, v3Ipv4Checksum: "rfc9568" }, v3Ipv4Rfc9568Bytes],
    ["v2 IPv4 with simple password", v2Ipv4, v2Context, v2Bytes],
    ["v3 IPv6", v3Ipv6, v3Ipv6Context, v3Ipv6Bytes],
  ];
  for (const [name, advert, ctx, bytes] of cases) {
    it(`RFC 5798 §5.2 MUST: encodes ${name} to the hand-computed bytes`, () => {
      expect(encodeAdvertisement(advert, ctx)).toEqual(bytes);
    });
    it(`RFC 5798 §5.2 MUST: decodes ${name} from the hand-computed bytes`, () => {
      expect(decodeAdvertisement(bytes, { ...ctx, ttl: 255 })).toEqual({ ok: true, value: advert, bytesRead: bytes.length });
    });
    it(`RFC 5798 §5.2 MUST: round trip of ${name} reads every byte and re-encodes identically`, () => {
      const decoded = decodeAdvertisement(encodeAdvertisement(advert, ctx), ctx);
      if (!decoded.ok) throw new Error(`decode failed: ${decoded.error.code}`);
      expect(decoded.bytesRead).toBe(bytes.length);
      expect(encodeAdvertisement(decoded.value, ctx)).toEqual(bytes);
    });
  }

  it("RFC 5798 §5.2.8 MUST: a pseudo-header checksum fails in RFC 9568 mode and the reverse", () => {
    expect(errorCode(decodeAdvertisement(v3Ipv4Bytes, { ...v3Ipv4Context, v3Ipv4Checksum: "rfc9568" }))).toBe("bad-checksum");
    expect(errorCode(decodeAdvertisement(v3Ipv4Rfc9568Bytes, v3Ipv4Context))).toBe("bad-checksum");
  });

  it("RFC 5798 §5.2.8 MUST: the v3 checksum covers the destination, so each unicast peer gets its own", () => {
    const toPeer = encodeAdvertisement(v3Ipv4, { ...v3Ipv4Context, destination: "10.0.0.12" });
    expect(toPeer.subarray(6, 8)).not.toEqual(v3Ipv4Bytes.subarray(6, 8));
    expect(decodeAdvertisement(toPeer, { ...v3Ipv4Context, destination: "10.0.0.12" }).ok).toBe(true);
  });

  it("RFC 5798 §5.2.6 MUST: reserved bits are sent as zero and ignored on receipt", () => {
    expect((v3Ipv4Bytes[4] ?? 0) >>> 4).toBe(0);
    const ctx: EncodeContext = { ...v3Ipv4Context, v3Ipv4Checksum: "rfc9568" };
    const bytes = v3Ipv4Rfc9568Bytes.slice();
    bytes[4] = 0xf0;
    bytes[6] = 0;
    bytes[7] = 0;
    const checksum = internetChecksum([bytes]);
    bytes[6] = checksum >>> 8;
    bytes[7] = checksum & 0xff;
    expect(decodeAdvertisement(bytes, ctx)).toEqual({ ok: true, value: v3Ipv4, bytesRead: 12 });
  });

  it("RFC 2338 §5.3.6 MUST: v2 without authentication leaves the 8 authentication bytes zero", () => {
    const bytes = encodeAdvertisement({ ...v2Ipv4, authentication: { type: "none" } }, v2Context);
    expect(bytes[4]).toBe(0);
    expect(bytes.subarray(16)).toEqual(new Uint8Array(8));
    const decoded = decodeAdvertisement(bytes, v2Context);
    expect(decoded.ok && decoded.value.version === 2 && decoded.value.authentication).toEqual({ type: "none" });
  });
});

describe("interoperability: adverts captured from keepalived 2.2.7 (Debian), in throwaway network namespaces", () => {
  // Captured with tcpdump on the peer side of a veth pair; keepalived ran `state BACKUP`, priority 150, VRID 51 and
  // became Master. The v3 IPv4 multicast capture was byte for byte the hand-computed golden packet above.
  const captures: ReadonlyArray<[string, EncodeContext, string, Advertisement]> = [
    ["v3 IPv4 multicast", v3Ipv4Context, "3133960100648c8ec0a80096", v3Ipv4],
    [
      "v3 IPv4 unicast (unicast_peer): the pseudo-header holds the real peer",
      { family: "ipv4", source: "10.0.0.11", destination: "10.0.0.12" },
      "3133960100646295c0a80096",
      v3Ipv4,
    ],
    [
      "v2 auth_type PASS",
      { family: "ipv4", source: "10.0.0.11", destination: "224.0.0.18" },
      "2133960101014a3fc0a800967365637265740000",
      {
        version: 2,
        vrid: 51,
        priority: 150,
        adverInterval: seconds(1),
        authentication: { type: "simple-password", data: passwordToAuthData("secret") },
        addresses: ["192.168.0.150"],
      },
    ],
    [
      "v3 IPv6 (advert_int 0.5)",
      { family: "ipv6", source: "fe80::a485:33ff:fe30:46b", destination: "ff02::12" },
      "313396010032305120010db8000000000000000000000150",
      { version: 3, vrid: 51, priority: 150, maxAdverInterval: centiseconds(50), addresses: ["2001:db8::150"] },
    ],
  ];
  for (const [name, ctx, bytes, advert] of captures) {
    it(`RFC 5798 §5.2 MUST: decodes and re-encodes keepalived's ${name} exactly`, () => {
      expect(decodeAdvertisement(hex(bytes), { ...ctx, ttl: 255 })).toEqual({ ok: true, value: advert, bytesRead: bytes.length / 2 });
      expect(encodeAdvertisement(advert, ctx)).toEqual(hex(bytes));
    });
  }
});

describe("codec decode errors, one per code", () => {
  const v3: DecodeContext = { ...v3Ipv4Context, ttl: 255, version: 3 };
  const withByte = (bytes: Uint8Array, offset: number, value: number): Uint8Array => {
    const copy = bytes.slice();
    copy[offset] = value;
    return copy;
  };

  it("RFC 5798 §7.1 MUST: discard advert whose TTL is not 255", () => {
    const result = decodeAdvertisement(v3Ipv4Bytes, { ...v3, ttl: 64 });
    expect(result).toEqual({ ok: false, error: { code: "ttl-not-255", expected: 255, actual: 64, rfc: "5798 §7.1" } });
  });

  it("RFC 5798 §7.1 MUST: discard a packet shorter than the fixed header", () => {
    const result = decodeAdvertisement(v3Ipv4Bytes.subarray(0, 5), v3);
    expect(result).toEqual({ ok: false, error: { code: "truncated", expected: 8, actual: 5, offset: 0, rfc: "5798 §7.1" } });
  });

  it("RFC 5798 §7.1 MUST: discard a packet cut inside its address list", () => {
    const result = decodeAdvertisement(v3Ipv4Bytes.subarray(0, 10), v3);
    expect(result).toEqual({ ok: false, error: { code: "truncated", expected: 12, actual: 10, offset: 0, rfc: "5798 §7.1" } });
  });

  it("RFC 5798 §5.2.5 MUST: discard a packet with trailing bytes that are not an address", () => {
    const result = decodeAdvertisement(Uint8Array.from([...v3Ipv4Bytes, 0, 0]), v3);
    expect(result).toEqual({ ok: false, error: { code: "too-long", expected: 12, actual: 14, offset: 12, rfc: "5798 §5.2.5" } });
  });

  it("RFC 5798 §7.1 MUST: verify that the VRRP version is 3", () => {
    const result = decodeAdvertisement(v2Bytes, v3);
    expect(result).toEqual({ ok: false, error: { code: "bad-version", expected: 3, actual: 2, offset: 0, rfc: "5798 §5.2.1" } });
    expect(errorCode(decodeAdvertisement(withByte(v3Ipv4Bytes, 0, 0x41), { ...v3Ipv4Context }))).toBe("bad-version");
  });

  it("RFC 5798 §5.2.2 MUST: discard a packet whose type is not ADVERTISEMENT", () => {
    const result = decodeAdvertisement(withByte(v3Ipv4Bytes, 0, 0x32), v3);
    expect(result).toEqual({ ok: false, error: { code: "bad-type", expected: 1, actual: 2, offset: 0, rfc: "5798 §5.2.2" } });
  });

  it("RFC 5798 §7.1 MUST: verify the VRRP checksum", () => {
    const result = decodeAdvertisement(withByte(v3Ipv4Bytes, 2, 151), v3);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatchObject({ code: "bad-checksum", actual: 0x8c8e, offset: 6, rfc: "5798 §5.2.8" });
  });

  it("RFC 5798 §5.2.5 MUST: discard a packet whose Count IPvX Addr is zero", () => {
    const result = decodeAdvertisement(hex("31 33 96 00 00 64 00 00"), v3);
    expect(result).toEqual({ ok: false, error: { code: "no-addresses", actual: 0, offset: 3, rfc: "5798 §5.2.5" } });
  });

  it("RFC 5798 §5.2.5 MUST: discard a packet carrying more whole addresses than its count says", () => {
    const result = decodeAdvertisement(hex("31 33 96 01 00 64 00 00 c0 a8 00 96 c0 a8 00 97 c0 a8 00 98"), v3);
    expect(result).toEqual({ ok: false, error: { code: "address-count-mismatch", expected: 1, actual: 3, offset: 3, rfc: "5798 §5.2.5" } });
  });

  it("RFC 5798 §5.2.9 MUST: an IPv6 advertisement read as IPv4 is reported as the wrong family", () => {
    const result = decodeAdvertisement(v3Ipv6Bytes, v3);
    expect(result).toEqual({ ok: false, error: { code: "wrong-family-length", expected: "ipv4", actual: "ipv6", offset: 8, rfc: "5798 §5.2.9" } });
  });

  it("RFC 3768 §1 MUST: VRRPv2 is IPv4 only", () => {
    const result = decodeAdvertisement(v2Bytes, { ...v3Ipv6Context, version: 2 });
    expect(result).toEqual({ ok: false, error: { code: "unsupported-family", expected: "ipv4", actual: "ipv6", rfc: "3768 §1" } });
  });

  it("RFC 2338 §5.3.6 MUST: discard a v2 packet with an unknown authentication type", () => {
    const bytes = encodeAdvertisement({ ...v2Ipv4, authentication: { type: "none" } }, v2Context);
    // Type 2 (IP AH), with the checksum made valid again so that the authentication check is reached.
    bytes[4] = 2;
    bytes[6] = 0;
    bytes[7] = 0;
    const checksum = internetChecksum([bytes]);
    bytes[6] = checksum >>> 8;
    bytes[7] = checksum & 0xff;
    const result = decodeAdvertisement(bytes, { ...v2Context, version: 2 });
    expect(result).toEqual({ ok: false, error: { code: "bad-auth-type", expected: "0 or 1", actual: 2, offset: 4, rfc: "2338 §5.3.6" } });
  });

  it("RFC 3768 §5.3.7 MUST: discard a v2 packet with advertisement interval 0", () => {
    // Interval 1 -> 0 is -0x0001 in the sum, so +0x0001 in the checksum: bafe -> baff.
    const bytes = v2Bytes.slice();
    bytes[5] = 0;
    bytes[7] = 0xff;
    expect(decodeAdvertisement(bytes, v2Context)).toEqual({ ok: false, error: { code: "bad-interval", actual: 0, offset: 5, rfc: "3768 §5.3.7" } });
  });

  it("RFC 5798 §5.2.7 MUST: discard a v3 packet with Max Adver Int 0", () => {
    // 0x0064 -> 0 is -0x64 in the sum, so +0x64 in the checksum: 8c8e -> 8cf2.
    const bytes = hex("31 33 96 01 00 00 8c f2 c0 a8 00 96");
    expect(decodeAdvertisement(bytes, v3)).toEqual({ ok: false, error: { code: "bad-interval", actual: 0, offset: 4, rfc: "5798 §5.2.7" } });
  });
});

describe("decodeIpv4Datagram", () => {
  // 20-byte header: version 4, IHL 5, total length 32, TTL 255, protocol 112, 10.0.0.11 -> 224.0.0.18.
  const header = hex("45 c0 00 20 00 00 40 00 ff 70 00 00 0a 00 00 0b e0 00 00 12");
  const datagram = Uint8Array.from([...header, ...v3Ipv4Bytes]);

  it("RFC 5798 §5.1.1 MUST: splits the IPv4 header from the VRRP payload", () => {
    expect(decodeIpv4Datagram(datagram)).toEqual({
      ok: true,
      value: { ttl: 255, source: "10.0.0.11", destination: "224.0.0.18", protocol: 112, payload: v3Ipv4Bytes },
      bytesRead: 32,
    });
  });

  it("RFC 5798 §5.1.1.4 MUST: a datagram of another protocol is not VRRP", () => {
    const other = datagram.slice();
    other[9] = 17;
    expect(decodeIpv4Datagram(other)).toEqual({ ok: false, error: { code: "not-vrrp-protocol", expected: 112, actual: 17, offset: 9, rfc: "5798 §5.1.1.4" } });
  });

  it("RFC 791 §3.1 MUST: a header that is not IPv4 or has a bad length is refused", () => {
    expect(errorCode(decodeIpv4Datagram(Uint8Array.from([0x65, ...datagram.subarray(1)])))).toBe("bad-ip-header");
    expect(errorCode(decodeIpv4Datagram(Uint8Array.from([0x44, ...datagram.subarray(1)])))).toBe("bad-ip-header");
    expect(errorCode(decodeIpv4Datagram(datagram.subarray(0, 19)))).toBe("truncated");
    expect(errorCode(decodeIpv4Datagram(datagram.subarray(0, 30)))).toBe("truncated");
  });
});

describe("peekVirtualRouterId", () => {
  const header = hex("45 c0 00 20 00 00 40 00 ff 70 00 00 0a 00 00 0b e0 00 00 12");

  it("RFC 5798 §5.2.3: reads the VRID after an IPv4 header of any length, and at byte 1 of an IPv6 payload", () => {
    expect(peekVirtualRouterId(Uint8Array.from([...header, ...v3Ipv4Bytes]), "ipv4")).toBe(v3Ipv4Bytes[1]);
    const withOptions = Uint8Array.from([0x46, ...header.subarray(1), 1, 1, 1, 0, ...v3Ipv4Bytes]);
    expect(peekVirtualRouterId(withOptions, "ipv4")).toBe(v3Ipv4Bytes[1]);
    expect(peekVirtualRouterId(Uint8Array.from([0x31, 7]), "ipv6")).toBe(7);
  });

  it("says nothing of a datagram too short to hold a VRID", () => {
    expect(peekVirtualRouterId(header, "ipv4")).toBeUndefined();
    expect(peekVirtualRouterId(Uint8Array.from([0x31]), "ipv6")).toBeUndefined();
    expect(peekVirtualRouterId(new Uint8Array(0), "ipv4")).toBeUndefined();
  });
});

describe("addresses", () => {
  it("RFC 5952 SHOULD: IPv6 text is canonical after a round trip", () => {
    const cases: ReadonlyArray<[string, string]> = [
      ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
      ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["::", "::"],
      ["fe80::1%eth0", "fe80::1"],
      ["::ffff:192.0.2.1", "::ffff:c000:201"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ];
    for (const [input, canonical] of cases) {
      const bytes = parseAddress(input, "ipv6");
      expect(bytes && formatAddress(bytes)).toBe(canonical);
    }
  });

  it("RFC 5798 §6.4.3 MUST: addresses compare numerically, not as text", () => {
    const a = parseAddress("10.0.0.9", "ipv4");
    const b = parseAddress("10.0.0.10", "ipv4");
    expect(a && b && compareAddressBytes(a, b)).toBeLessThan(0);
  });

  it("isSameAdvertisement: the same fields are the same advert; any field, the address order or the v2 password differs", () => {
    const v3 = buildAdvert(aRouterConfig(), 100) as AdvertisementV3;
    expect(isSameAdvertisement(v3, buildAdvert(aRouterConfig(), 100))).toBe(true);
    expect(isSameAdvertisement(v3, buildAdvert(aRouterConfig(), 0))).toBe(false);
    expect(isSameAdvertisement(v3, { ...v3, maxAdverInterval: centiseconds(25) })).toBe(false);
    expect(isSameAdvertisement(v3, { ...v3, addresses: ["192.168.0.151"] })).toBe(false);
    expect(isSameAdvertisement({ ...v3, addresses: ["10.0.0.1", "10.0.0.2"] }, { ...v3, addresses: ["10.0.0.2", "10.0.0.1"] })).toBe(false);
    const v2 = buildAdvert(aRouterConfig({ version: 2, password: "secret" }), 100);
    expect(isSameAdvertisement(v2, buildAdvert(aRouterConfig({ version: 2, password: "secret" }), 100))).toBe(true);
    expect(isSameAdvertisement(v2, buildAdvert(aRouterConfig({ version: 2, password: "other" }), 100))).toBe(false);
    expect(isSameAdvertisement(v2, buildAdvert(aRouterConfig({ version: 2 }), 100))).toBe(false);
    expect(isSameAdvertisement(v2, v3)).toBe(false);
  });

  it("IPv4 text and bytes round-trip, leading zeros read as decimal", () => {
    for (const bytes of [[0, 0, 0, 0], [255, 255, 255, 255], [10, 0, 0, 9], [192, 168, 100, 1]]) {
      const text = formatAddress(Uint8Array.from(bytes));
      expect(text).toBe(bytes.join("."));
      expect(parseAddress(text, "ipv4")).toEqual(Uint8Array.from(bytes));
    }
    expect(parseAddress("010.001.0.09", "ipv4")).toEqual(Uint8Array.from([10, 1, 0, 9]));
    expect(parseAddress("::ffff:10.0.0.9", "ipv6")?.slice(12)).toEqual(Uint8Array.from([10, 0, 0, 9]));
  });

  it("rejects text that is not an address", () => {
    for (const bad of ["1.2.3", "1.2.3.256", "a.b.c.d", "1.2.3.4.5", "", "1..2.3", "1.2.3.4.", ".1.2.3", "1.2.3.0004", " 1.2.3.4", "1.2.3.-4"]) expect(parseAddress(bad, "ipv4")).toBeUndefined();
    for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "g::1", "1:2:3:4:5:6:7::8"]) {
      expect(parseAddress(bad, "ipv6")).toBeUndefined();
    }
  });

  it("encode throws on a programmer error: field out of range or an address of the wrong family", () => {
    expect(() => encodeAdvertisement({ ...v3Ipv4, vrid: 0 }, v3Ipv4Context)).toThrow(RangeError);
    expect(() => encodeAdvertisement({ ...v3Ipv4, maxAdverInterval: centiseconds(4096) }, v3Ipv4Context)).toThrow(RangeError);
    expect(() => encodeAdvertisement({ ...v3Ipv4, addresses: ["2001:db8::1"] }, v3Ipv4Context)).toThrow(TypeError);
    expect(() => encodeAdvertisement(v2Ipv4, v3Ipv6Context)).toThrow(TypeError);
  });
});
