import { describe, expect, it } from "vitest";
import { encodeUnsolicitedNa, NEIGHBOR_ADVERT_LENGTH } from "../../src/agent/adapters/neighbor-advert.js";
import { parseAddress } from "../../src/vrrp/codec.js";

describe("encodeUnsolicitedNa", () => {
  it("RFC 4861 §7.2.6 SHOULD: unsolicited NA for fd77::200 with override set and the target link-layer option", () => {
    const target = parseAddress("fd77::200", "ipv6");
    if (target === undefined) throw new Error("fixture address does not parse");
    const mac = Uint8Array.of(0x02, 0x42, 0xac, 0x11, 0x00, 0x02);
    const golden = Uint8Array.from([
      136, 0, 0, 0, // type NA, code 0, checksum left to the kernel
      0x20, 0, 0, 0, // R=0 S=0 O=1, reserved
      0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00, // target
      2, 1, 0x02, 0x42, 0xac, 0x11, 0x00, 0x02, // option 2, length 1 (8 octets), MAC
    ]);
    const message = encodeUnsolicitedNa(target, mac);
    expect(message).toEqual(golden);
    expect(message.length).toBe(NEIGHBOR_ADVERT_LENGTH);
  });

  it("refuses a target or link-layer address of the wrong size", () => {
    expect(() => encodeUnsolicitedNa(new Uint8Array(4), new Uint8Array(6))).toThrow(RangeError);
    expect(() => encodeUnsolicitedNa(new Uint8Array(16), new Uint8Array(8))).toThrow(RangeError);
  });
});
