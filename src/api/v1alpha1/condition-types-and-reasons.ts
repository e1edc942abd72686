// Condition types and reasons of a HighAvailabilityVIP's status. The controller owns every condition; agents report
// only their own `status.nodes` entry. Each reason is a CamelCase constant, as metav1.Condition requires.

/** The condition types in `status.conditions`. */
export const ConditionType = {
  /** True while exactly one node is MASTER and holds the addresses. */
  Ready: "Ready",
  /** True while the VIP works but with less redundancy than configured: an agent is missing or a node is unhealthy. */
  Degraded: "Degraded",
  /** True while more than one node reports MASTER: the nodes cannot hear each other's advertisements. */
  SplitBrain: "SplitBrain",
  /** True while another HighAvailabilityVIP claims the same VRID on the same nodes, or the same address. */
  Conflict: "Conflict",
  /**
   * True while another HighAvailabilityVIP of the same address family sets the same spec.virtualRouterID on other
   * nodes: harmless only if no L2 segment joins the two node sets, which the controller cannot see, so a warning
   * that leaves the agents running.
   */
  VirtualRouterIDShared: "VirtualRouterIDShared",
  /** True while the spec breaks a rule the CRD schema cannot express; the message names the field and the fix. */
  Invalid: "Invalid",
  /**
   * True while no VIPAddressPool admits the resource (its addresses, namespace, nodes and interface): the agents do
   * not serve it, and withdraw it if they did. The message names each pool's rule and the fix.
   */
  NotAdmitted: "NotAdmitted",
  /**
   * True while the health check's negative weight cannot move the VIP off an unhealthy MASTER: the spec is valid and
   * the VIP works, so this is a warning that leaves Ready alone.
   */
  WeightIneffective: "WeightIneffective",
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

/** The reasons the controller writes, grouped by the condition they explain. */
export const ConditionReason = {
  // Ready
  /** Ready=True: one node is MASTER; the message names it and the addresses. */
  MasterElected: "MasterElected",
  /** Ready=False: agents run but none is MASTER (all BACKUP, FAULT or INIT). */
  NoMaster: "NoMaster",
  /** Ready=False: no agent has reported yet, e.g. the agent DaemonSet is still rolling out. */
  AgentsPending: "AgentsPending",
  /** Ready=False: no node matches `spec.nodes.selector`. */
  NoEligibleNodes: "NoEligibleNodes",
  /** Ready=False: `spec.nodes.selector` matches more than MAX_NODES nodes; the agents neither start nor change its routers. */
  TooManyNodes: "TooManyNodes",
  /** Ready=False: the spec is invalid, see the Invalid condition. */
  SpecInvalid: "SpecInvalid",
  /** Ready=False: no VIPAddressPool admits the resource, see the NotAdmitted condition. */
  AddressNotAdmitted: "AddressNotAdmitted",

  // Degraded
  /** Degraded=False: every selected node runs a healthy agent. */
  AllNodesHealthy: "AllNodesHealthy",
  /** Degraded=True: at least one node's health check fails (state FAULT or reduced priority). */
  NodesUnhealthy: "NodesUnhealthy",
  /** Degraded=True: a selected node has no reporting agent (no entry, or listed in status.goneNodes). */
  AgentsMissing: "AgentsMissing",
  /** Degraded=True: only one node can hold the VIP, so nothing takes over when it fails. */
  NoBackup: "NoBackup",

  // SplitBrain
  /** SplitBrain=False: at most one node is MASTER. */
  SingleMaster: "SingleMaster",
  /** SplitBrain=True: several nodes are MASTER; the message names them. */
  MultipleMasters: "MultipleMasters",

  // Conflict
  /** Conflict=False: VRID and addresses are this resource's alone. */
  NoConflict: "NoConflict",
  /** Conflict=True: another HighAvailabilityVIP uses the same VRID on a shared node and interface. */
  VirtualRouterIDInUse: "VirtualRouterIDInUse",
  /** Conflict=True: another HighAvailabilityVIP claims one of the same addresses. */
  AddressInUse: "AddressInUse",
  /** Conflict=True: spec.virtualRouterID is omitted and all 255 VRIDs of the address family are taken in the cluster. */
  VirtualRouterIDsExhausted: "VirtualRouterIDsExhausted",

  // VirtualRouterIDShared
  /** VirtualRouterIDShared=False: no other HighAvailabilityVIP of the address family uses this VRID. */
  VirtualRouterIDUnique: "VirtualRouterIDUnique",
  /** VirtualRouterIDShared=True: another resource sets the same spec.virtualRouterID on other nodes; the message names it. */
  SameVirtualRouterIDOnOtherNodes: "SameVirtualRouterIDOnOtherNodes",

  // Invalid
  /** Invalid=False: the spec passed validation. */
  SpecValid: "SpecValid",
  /** Invalid=True: the spec failed validation; the message lists `path: problem; fix`. */
  ValidationFailed: "ValidationFailed",

  // NotAdmitted
  /** NotAdmitted=False: a VIPAddressPool admits the resource; the message names it. */
  AdmittedByPool: "AdmittedByPool",
  /** NotAdmitted=True: no VIPAddressPool admits the resource; the message says why for each pool, and the fix. */
  NoPoolAdmits: "NoPoolAdmits",

  // WeightIneffective
  /** WeightIneffective=False: weight 0 (FAULT releases the VIP), or a weight that drops an unhealthy node below the next. */
  WeightEffective: "WeightEffective",
  /** WeightIneffective=True: an unhealthy node's lowered priority still ties or beats the best BACKUP (RFC 5798 §6.4.2). */
  WeightTooSmall: "WeightTooSmall",
  /** WeightIneffective=True: preemption mode Never, so no BACKUP takes over from a live MASTER whatever its priority. */
  PreemptionDisabled: "PreemptionDisabled",
} as const;
export type ConditionReason = (typeof ConditionReason)[keyof typeof ConditionReason];
