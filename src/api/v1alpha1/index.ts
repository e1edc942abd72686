// The public face of the HighAvailabilityVIP v1alpha1 API: import from here, not from the files behind it.
export {
  DEFAULT_PRIORITY,
  HAVIP_API_VERSION,
  HAVIP_GROUP,
  HAVIP_KIND,
  HAVIP_PLURAL,
  HAVIP_SHORT_NAME,
  HAVIP_SINGULAR,
  HAVIP_VERSION,
  MAX_ADDRESSES,
  MAX_NODES,
  MAX_PEERS,
  addressFamilyOf,
  advertisementIntervalOf,
  conditionSchema,
  describeAddressProblem,
  haVipSpecSchema,
  haVipStatusSchema,
  highAvailabilityVipSchema,
  nodeStateSchema,
  nodeStatusEntrySchema,
  priorityOf,
} from "./schema.js";
export type {
  Authentication,
  CelRule,
  ConditionStatus,
  Garp,
  HaVipCondition,
  HaVipSpec,
  HaVipSpecInput,
  HaVipStatus,
  HealthCheck,
  HighAvailabilityVIP,
  HighAvailabilityVIPInput,
  HttpGetAction,
  LabelSelector,
  NodePriority,
  NodeState,
  NodeStatusEntry,
  NodesSpec,
  Preemption,
  PreemptionMode,
  Probe,
  Toleration,
  Transport,
  TransportMode,
  VrrpVersion,
} from "./schema.js";
export { ConditionReason, ConditionType } from "./condition-types-and-reasons.js";
export { DURATION_MAX_LENGTH, DURATION_PATTERN, formatDuration, isDuration, parseDuration } from "./duration.js";
export { ADDRESS_MAX_LENGTH, familyName, hasHostBits, hostPrefixLength, isInNetwork, parseIpAddress, parseIpAddressList, parseVipAddress } from "./ip.js";
export type { AddressFamily, IpAddress, VipAddress } from "./ip.js";
export {
  formatIssues,
  formatPath,
  loadHaVipManifests,
  readHaVipStatus,
  validateHaVip,
  validateHaVipSpec,
  validateVipAddressPoolSpec,
  weightFix,
  weightWarnings,
} from "./validate.js";
export type { HaVipWarning, LoadedDocument, ValidationIssue, ValidationResult } from "./validate.js";
export {
  ALL_NAMESPACES,
  POOL_API_VERSION,
  POOL_EXAMPLE_FILE,
  POOL_KIND,
  POOL_PLURAL,
  POOL_SHORT_NAME,
  POOL_SINGULAR,
  vipAddressPoolSchema,
  vipAddressPoolSpecSchema,
} from "./pool.js";
export type { VipAddressPool, VipAddressPoolSpec, VipAddressPoolSpecInput } from "./pool.js";
export { CRD_FILE, POOL_CRD_FILE, buildCrd, buildPoolCrd, renderCrdYaml, renderPoolCrdYaml, toStructural } from "./crd.js";
export type { JsonObject, JsonValue } from "./crd.js";
