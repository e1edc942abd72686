import { describe, expect, it } from "vitest";
import { encodeAdvertisement, parseAddress } from "../../src/vrrp/codec.js";
import { buildAdvert, encodeContextFor } from "../../src/vrrp/config.js";
import { receiveDatagram } from "../../src/vrrp/receive.js";
import { aRouterConfig } from "../fixtures/router-config.js";

const peer = "10.0.0.12";
const group = "224.0.0.18";
const config = aRouterConfig();
const unicast = aRouterConfig({ peers: [peer] });

/** An IPv4 datagram as a raw socket hands it over: a 20-byte header (protocol 112) and the VRRP message. */
function ipv4(message: Uint8Array, source: string, destination: string, ttl = 255): Uint8Array {
  const header = new Uint8Array(20);
  const total = header.length + message.length;
  header.set([0x45, 0, total >> 8, total & 0xff, 0, 0, 0, 0, ttl, 112]);
  header.set(parseAddress(source, "ipv4") ?? [], 12);
  header.set(parseAddress(destination, "ipv4") ?? [], 16);
  const datagram = new Uint8Array(total);
  datagram.set(header);
  datagram.set(message, header.length);
  return datagram;
}

function advertFrom(source: string, to: string, priority = 150): Uint8Array {
  return encodeAdvertisement(buildAdvert(config, priority), encodeContextFor({ ...config, primaryAddress: source }, to));
}

describe("receiveDatagram", () => {
  it("RFC 5798 §7.1: a well-formed advert to the group becomes an advert event with its source", () => {
    const received = receiveDatagram({ family: "ipv4", source: peer, bytes: ipv4(advertFrom(peer, group), peer, group) }, config);
    expect(received).toEqual({ kind: "advert", advert: buildAdvert(config, 150), source: peer });
  });

  it("RFC 5798 §7.1 MUST: an advert to the group with a TTL other than 255 is discarded", () => {
    const received = receiveDatagram({ family: "ipv4", source: peer, bytes: ipv4(advertFrom(peer, group), peer, group, 254) }, config);
    expect(received).toMatchObject({ kind: "discard", reason: "ttl-not-255" });
  });

  it("keepalived: a unicast advert is not held to TTL 255", () => {
    const to = unicast.primaryAddress;
    const received = receiveDatagram({ family: "ipv4", source: peer, bytes: ipv4(advertFrom(peer, to), peer, to, 64) }, unicast);
    expect(received).toMatchObject({ kind: "advert", source: peer });
  });

  it("RFC 5798 §5.2.8: the v3 checksum covers the destination the packet was sent to", () => {
    // Checksummed for the group but delivered to this router's own address: the pseudo-header no longer matches.
    const to = unicast.primaryAddress;
    const received = receiveDatagram({ family: "ipv4", source: peer, bytes: ipv4(advertFrom(peer, group), peer, to) }, unicast);
    expect(received).toMatchObject({ kind: "discard", reason: "bad-checksum" });
  });

  it("RFC 791 §3.1: a datagram whose IP header is broken is discarded before the VRRP message is read", () => {
    const bytes = ipv4(advertFrom(peer, group), peer, group);
    bytes[0] = 0x65;
    expect(receiveDatagram({ family: "ipv4", source: peer, bytes }, config)).toMatchObject({ kind: "discard", reason: "bad-ip-header" });
  });

  it("a datagram of the other family is not for this router", () => {
    const received = receiveDatagram({ family: "ipv6", source: "fe80::2", bytes: new Uint8Array(12) }, config);
    expect(received).toEqual({ kind: "discard", reason: "other-family", detail: "ipv6" });
  });
});
