// The ICMPv6 Neighbor Advertisement a new master sends for each IPv6 VIP (RFC 5798 §6.4.2 via RFC 4861 §7.2.6).
// Every field is a single byte or a byte string, so no byte order is involved. The checksum stays zero: the kernel
// computes it for raw ICMPv6 sockets (RFC 3542 §3.1).

const ICMPV6_NEIGHBOR_ADVERTISEMENT = 136; // RFC 4861 §4.4
const FLAG_OVERRIDE = 0x20; // RFC 4861 §4.4: O set, R and S clear for an unsolicited advertisement (§7.2.6)
const OPTION_TARGET_LINK_LAYER_ADDRESS = 2; // RFC 4861 §4.6.1
const OPTION_LENGTH_UNITS = 1; // 8 octets: type, length, 6-byte MAC
export const NEIGHBOR_ADVERT_LENGTH = 32;

export function encodeUnsolicitedNa(target: Uint8Array, mac: Uint8Array): Uint8Array {
  if (target.length !== 16) throw new RangeError(`NA target must be 16 bytes, got ${target.length}`);
  if (mac.length !== 6) throw new RangeError(`NA link-layer address must be 6 bytes, got ${mac.length}`);
  const message = new Uint8Array(NEIGHBOR_ADVERT_LENGTH);
  message[0] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
  message[4] = FLAG_OVERRIDE;
  message.set(target, 8);
  message[24] = OPTION_TARGET_LINK_LAYER_ADDRESS;
  message[25] = OPTION_LENGTH_UNITS;
  message.set(mac, 26);
  return message;
}
