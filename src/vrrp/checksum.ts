// RFC 1071 Internet checksum, as used by VRRP (RFC 5798 §5.2.8, RFC 3768 §5.3.8).

/** One's complement of the one's complement sum of the 16-bit words of all parts, taken as one byte stream. */
export function internetChecksum(parts: readonly Uint8Array[]): number {
  let sum = 0;
  let pending: number | undefined;
  for (const part of parts) {
    for (const byte of part) {
      if (pending === undefined) {
        pending = byte;
      } else {
        sum += (pending << 8) | byte;
        pending = undefined;
      }
    }
  }
  if (pending !== undefined) sum += pending << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** RFC 768 / RFC 791 style IPv4 pseudo-header: source, destination, zero, protocol, length. */
export function ipv4PseudoHeader(source: Uint8Array, destination: Uint8Array, protocol: number, length: number): Uint8Array {
  const header = new Uint8Array(12);
  header.set(source, 0);
  header.set(destination, 4);
  header[9] = protocol;
  header[10] = (length >>> 8) & 0xff;
  header[11] = length & 0xff;
  return header;
}

/** RFC 8200 §8.1 pseudo-header: source, destination, 32-bit upper-layer length, three zero bytes, next header. */
export function ipv6PseudoHeader(source: Uint8Array, destination: Uint8Array, nextHeader: number, length: number): Uint8Array {
  const header = new Uint8Array(40);
  header.set(source, 0);
  header.set(destination, 16);
  header[32] = (length >>> 24) & 0xff;
  header[33] = (length >>> 16) & 0xff;
  header[34] = (length >>> 8) & 0xff;
  header[35] = length & 0xff;
  header[39] = nextHeader;
  return header;
}
