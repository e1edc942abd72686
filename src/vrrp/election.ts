// RFC 5798 §6.4.3: who wins between two routers of one virtual router.

import type { AddressFamily } from "./advertisement.js";
import { compareAddressBytes, parseAddress } from "./codec.js";

export interface Contender {
  /** RFC 5798 §5.2.4 */
  readonly priority: number;
  /** The router's primary IPvX address (the source address of its adverts). */
  readonly address: string;
}

/**
 * Positive when `a` wins, negative when `b` wins, 0 for the same router. Higher priority wins; on equal priority
 * the numerically higher primary address wins (RFC 5798 §6.4.3). Throws on a programmer error (not an address).
 */
export function compareContenders(a: Contender, b: Contender, family: AddressFamily): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  const left = parseAddress(a.address, family);
  const right = parseAddress(b.address, family);
  if (left === undefined || right === undefined) throw new TypeError(`cannot compare ${a.address} and ${b.address} as ${family}`);
  return compareAddressBytes(left, right);
}

/** RFC 5798 §6.4.3: the sender of an advert makes a Master step down. */
export function outranks(remote: Contender, local: Contender, family: AddressFamily): boolean {
  return compareContenders(remote, local, family) > 0;
}
