// RFC 5798 §7.1 checks that need this router's configuration. The codec has already dropped malformed packets;
// here an advert is either not for us (another virtual router, or our own looped back), rejected (a
// misconfiguration or a forgery, worth a log line) or accepted and handed to the state machine.

import type { Advertisement } from "./advertisement.js";
import { compareAddressBytes, parseAddress } from "./codec.js";
import type { RouterConfig } from "./config.js";
import { passwordToAuthData } from "./codec.js";
import { advertisedInterval } from "./timers.js";

export type NotForUsReason =
  /** RFC 5798 §7.1: "MUST verify that the VRID is configured on the receiving interface". */
  | "other-vrid"
  /** Our own advert, looped back by multicast: not a second router. */
  | "own-advert";

export type RejectReason =
  /** RFC 5798 §7.1: the version this router runs. */
  | "version-mismatch"
  /** keepalived `check_unicast_src`: in unicast mode only configured peers may speak. */
  | "unknown-peer"
  /** RFC 2338 §7.1: authentication type or password differs. */
  | "auth-mismatch"
  /** RFC 3768 §7.1: a v2 advert interval must equal ours. */
  | "interval-mismatch"
  /** RFC 5798 §7.1: the address owner (priority 255) discards adverts. */
  | "local-address-owner";

export type AdvertClassification =
  | { readonly kind: "accepted" }
  | { readonly kind: "not-for-us"; readonly reason: NotForUsReason; readonly ref: string }
  | { readonly kind: "rejected"; readonly reason: RejectReason; readonly ref: string };

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareAddressBytes(a, b) === 0;
}

function isSameAddress(a: string, b: string, config: RouterConfig): boolean {
  const left = parseAddress(a, config.family);
  const right = parseAddress(b, config.family);
  return left !== undefined && right !== undefined && sameBytes(left, right);
}

/** `source` is the IP source address of the packet (the sender's primary address). */
export function classifyAdvert(advert: Advertisement, source: string, config: RouterConfig): AdvertClassification {
  if (advert.vrid !== config.vrid) return { kind: "not-for-us", reason: "other-vrid", ref: "5798 §7.1" };
  if (isSameAddress(source, config.primaryAddress, config)) return { kind: "not-for-us", reason: "own-advert", ref: "5798 §7.1" };
  if (advert.version !== config.version) return { kind: "rejected", reason: "version-mismatch", ref: "5798 §7.1" };
  if (config.peers.length > 0 && !config.peers.some((peer) => isSameAddress(peer, source, config))) {
    return { kind: "rejected", reason: "unknown-peer", ref: "keepalived check_unicast_src" };
  }
  if (advert.version === 2) {
    const expected = config.password;
    const received = advert.authentication;
    const isAuthentic =
      expected === undefined
        ? received.type === "none"
        : received.type === "simple-password" && sameBytes(received.data, passwordToAuthData(expected));
    if (!isAuthentic) return { kind: "rejected", reason: "auth-mismatch", ref: "2338 §7.1" };
    if (advertisedInterval(advert) !== config.advertisementInterval) return { kind: "rejected", reason: "interval-mismatch", ref: "3768 §7.1" };
  }
  if (config.priority === 255) return { kind: "rejected", reason: "local-address-owner", ref: "5798 §7.1" };
  return { kind: "accepted" };
}
