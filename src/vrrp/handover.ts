// Extension, not in RFC 5798: successor nomination. RFC 5798 §6.4.2 makes every Backup wait Skew_Time after the
// Master's priority-0 advert (609 ms at priority 100 with 1 s adverts), because the leaving Master cannot know who
// is left: in VRRP only the Master speaks. Here each ha-nginx Backup sends a low-rate candidacy (its effective
// priority) to the group; a leaving Master names the best one heard just before its priority-0 advert, and that
// Backup becomes Master at once. The others, and every foreign router, follow RFC 5798 unchanged.
//
// Foreign routers never see the extension: it travels on its own IP protocol (HANDOVER_PROTOCOL), and on VRRP's a
// keepalived 2.2.7 restarted its timers on every message of an unknown type (docs/design-notes/successor-naming.md).
// They are never named either: a Master names no one unless every router it knows of is ours. With unicast peers
// that is exact (each configured peer must have sent a hand-over message). With multicast a silent foreign
// Backup cannot be known, so only adverts from routers that never sent a hand-over message count against it. A
// foreign Backup that never was Master stays unseen; if it outranks the nominee, with preemption it takes the VIPs one
// Skew_Time later, as RFC 5798 would have had it (one more move), and without it the nominee keeps them.
//
// The same candidacies end the wait of a group that starts with no Master (a new resource): RFC 5798 §6.4.1 makes every
// router wait Master_Down_Interval (3.6 s at 1 s adverts), only so that the best one's timer fires first. A router that
// has heard no advert since it started, and has since heard a live candidacy from every unicast peer, none outranking
// it, knows that no peer is Master and that it would win: it takes over at once. The others outrank nobody, so exactly
// one does. A silent, withdrawn or foreign peer leaves RFC 5798 in force, and so does multicast, whose group is unknown.

import type { AddressFamily, HandoverMessage } from "./advertisement.js";
import { formatAddress, parseAddress } from "./codec.js";
import type { RouterConfig } from "./config.js";
import { buildAdvert } from "./config.js";
import { compareContenders } from "./election.js";
import { advertisedInterval } from "./timers.js";
import type { Milliseconds } from "./units.js";
import { addMilliseconds, centisecondsToMilliseconds, centisecondsToSeconds, milliseconds, millisecondsToCentiseconds } from "./units.js";

/** A candidacy lapses after this many of its sender's intervals without another, as Master_Down_Interval counts 3. */
const CANDIDACY_LIFETIME_INTERVALS = 3;

/** Each list of the book is bounded, so that a flood of forged sources cannot grow the state without end. */
const MAX_BOOK_ENTRIES = 64;

export interface Candidate {
  readonly address: string;
  /** Its effective priority when it last spoke; only those above 0 are kept. */
  readonly priority: number;
  readonly expiresAt: Milliseconds;
}

/** What this router knows of the others; kept across state changes. Addresses are canonical text. */
export interface PeerBook {
  /** Routers that have sent a hand-over message: ha-nginx routers. */
  readonly ours: readonly string[];
  /** Routers whose adverts were accepted. One that is not in `ours` is foreign (keepalived, FRR vrrpd...). */
  readonly advertisers: readonly string[];
  /** Backups that said they can take over, in the order heard. */
  readonly candidates: readonly Candidate[];
}

export const emptyPeerBook: PeerBook = { ours: [], advertisers: [], candidates: [] };

function canonical(address: string, family: AddressFamily): string {
  const bytes = parseAddress(address, family);
  return bytes === undefined ? address : formatAddress(bytes);
}

function bounded<T>(entries: readonly T[]): readonly T[] {
  return entries.length > MAX_BOOK_ENTRIES ? entries.slice(entries.length - MAX_BOOK_ENTRIES) : entries;
}

/** A hand-over message that passed classifyHandover: its sender is ours; a candidacy updates the candidates. */
export function noteHandover(book: PeerBook, message: HandoverMessage, source: string, family: AddressFamily, now: Milliseconds): PeerBook {
  const address = canonical(source, family);
  const ours = bounded([...book.ours.filter((known) => known !== address), address]);
  if (message.kind !== "candidacy") return { ...book, ours };
  const lifetime = milliseconds(CANDIDACY_LIFETIME_INTERVALS * centisecondsToMilliseconds(advertisedInterval(message.header)));
  const others = book.candidates.filter((candidate) => candidate.address !== address);
  const priority = message.header.priority;
  const candidates = priority > 0 ? bounded([...others, { address, priority, expiresAt: addMilliseconds(now, lifetime) }]) : others;
  return { ...book, ours, candidates };
}

/**
 * Whether noteAdvertiser would leave the book as it is for `source`, in the canonical text the socket gives: noted as
 * an advertiser and no candidate. A Master advertises several times a second, so this spares its Backups a second
 * classification of every advert.
 */
export function isNotedAdvertiser(book: PeerBook, source: string): boolean {
  return book.advertisers.includes(source) && !book.candidates.some((candidate) => candidate.address === source);
}

/** An accepted advert: its sender is (or was) a Master, so no longer a candidate, and foreign unless it proves ours. */
export function noteAdvertiser(book: PeerBook, source: string, family: AddressFamily): PeerBook {
  const address = canonical(source, family);
  const candidates = book.candidates.filter((candidate) => candidate.address !== address);
  const advertisers = book.advertisers.includes(address) ? book.advertisers : bounded([...book.advertisers, address]);
  return { ...book, advertisers, candidates };
}

function isEveryPeerOurs(book: PeerBook, config: RouterConfig): boolean {
  const ours = new Set(book.ours);
  if (book.advertisers.some((address) => !ours.has(address))) return false;
  if (config.peers.length === 0) return true;
  // Unicast: the group is known. A peer that never sent a hand-over message may be a foreign Backup. One that did, and
  // went quiet since (down, or in Fault), cannot be named, so it need not block the others.
  return config.peers.every((peer) => ours.has(canonical(peer, config.family)));
}

/** The Backup a leaving Master names: the best live candidate, when every router it knows of is ours. */
export function chooseSuccessor(book: PeerBook, config: RouterConfig, now: Milliseconds): string | undefined {
  if ((config.candidacyInterval ?? 0) === 0 || !isEveryPeerOurs(book, config)) return undefined;
  const live = book.candidates.filter((candidate) => candidate.expiresAt > now);
  let best: Candidate | undefined;
  for (const candidate of live) {
    if (best === undefined || compareContenders(candidate, best, config.family) > 0) best = candidate;
  }
  return best?.address;
}

/**
 * Extension, not in RFC 5798: whether a Backup that has heard no advert since it started may take over now. `heard` is
 * the peers whose candidacy arrived since it started; the book has their latest word.
 */
export function isUnopposed(book: PeerBook, config: RouterConfig, heard: readonly string[], priority: number, now: Milliseconds): boolean {
  if ((config.candidacyInterval ?? 0) === 0 || config.peers.length === 0) return false;
  const local = { priority, address: config.primaryAddress };
  return config.peers.every((peer) => {
    const address = canonical(peer, config.family);
    const candidate = book.candidates.find((known) => known.address === address && known.expiresAt > now);
    return heard.includes(address) && candidate !== undefined && compareContenders(local, candidate, config.family) > 0;
  });
}

/** Adds the sender of a candidacy to the peers heard since startup; at most every unicast peer is ever there. */
export function noteCandidacySinceStart(heard: readonly string[], source: string, family: AddressFamily): readonly string[] {
  const address = canonical(source, family);
  return heard.includes(address) ? heard : [...heard, address];
}

/** A Backup's candidacy: `priority` is its effective priority, 0 when it cannot take over. */
export function buildCandidacy(config: RouterConfig, priority: number): HandoverMessage {
  const advert = buildAdvert(config, priority);
  // checkRouterConfig keeps the interval to whole centiseconds (whole seconds for VRRPv2): nothing is rounded away.
  const interval = millisecondsToCentiseconds(config.candidacyInterval ?? milliseconds(0));
  const header =
    advert.version === 2
      ? { ...advert, adverInterval: centisecondsToSeconds(interval), addresses: [config.primaryAddress] }
      : { ...advert, maxAdverInterval: interval, addresses: [config.primaryAddress] };
  return { kind: "candidacy", header };
}

/** A leaving Master's nomination of `successor`. */
export function buildNomination(config: RouterConfig, successor: string): HandoverMessage {
  return { kind: "nomination", header: { ...buildAdvert(config, 0), addresses: [successor] } };
}
