// The pure VRRP core: the agent imports from here only.

export type { AddressFamily, Advertisement, AdvertisementV2, AdvertisementV3, Authentication, VrrpVersion } from "./advertisement.js";
export { VRRP_MULTICAST_IPV4, VRRP_MULTICAST_IPV6, VRRP_PROTOCOL, VRRP_TTL } from "./advertisement.js";
export { internetChecksum } from "./checksum.js";
export type { DecodeContext, DecodeError, DecodeErrorCode, DecodeResult, EncodeContext, Ipv4Datagram, V3Ipv4ChecksumMode } from "./codec.js";
export { compareAddressBytes, decodeAdvertisement, decodeIpv4Datagram, encodeAdvertisement, formatAddress, parseAddress, passwordToAuthData } from "./codec.js";
export type { ConfigProblem, GarpConfig, Preemption, PreemptMode, RouterConfig, VirtualAddress } from "./config.js";
export { advertDestinations, buildAdvert, checkRouterConfig, computeEffectivePriority, encodeContextFor } from "./config.js";
export type { Contender } from "./election.js";
export { compareContenders, outranks } from "./election.js";
export type {
  BackupState,
  DiscardReason,
  Entry,
  FaultState,
  InitializeState,
  MasterState,
  Release,
  RouterAction,
  RouterEvent,
  RouterState,
  StateKind,
  StepResult,
  TakeoverReason,
  TransitionReason,
} from "./machine.js";
export { assertNever, effectivePriority, enterState, initialState, nextDeadline, step } from "./machine.js";
export type { AdvertClassification, NotForUsReason, RejectReason } from "./receive.js";
export { classifyAdvert } from "./receive.js";
export { advertisedInterval, computeMasterDownInterval, computeSkewTime, isLate } from "./timers.js";
export type { Centiseconds, Milliseconds, Seconds } from "./units.js";
export {
  addMilliseconds,
  centiseconds,
  centisecondsToMilliseconds,
  centisecondsToSeconds,
  milliseconds,
  millisecondsToCentiseconds,
  seconds,
  secondsToCentiseconds,
  secondsToMilliseconds,
} from "./units.js";
