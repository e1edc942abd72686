// Conditions from the agents' status.nodes entries. The controller never drives VRRP; it only reads what each agent
// reports about itself and summarises it, so `kubectl get havip` tells the truth about the VIP.
import {
  ConditionReason,
  ConditionType,
  weightFix,
  type HaVipCondition,
  type HaVipSpec,
  type HaVipWarning,
  type NodeStatusEntry,
} from "../api/v1alpha1/index.js";

/** A condition before the controller stamps lastTransitionTime and observedGeneration on it. */
export interface ConditionDraft {
  readonly type: ConditionType;
  readonly status: "True" | "False" | "Unknown";
  readonly reason: ConditionReason;
  readonly message: string;
}

export interface NodeSummary {
  /** Entries of the agents still heard from: those of status.goneNodes are left out. */
  readonly entries: readonly NodeStatusEntry[];
  /** Selected nodes (matching the selector, existing). */
  readonly selectedNodes: readonly string[];
  readonly addresses: readonly string[];
  /** Nodes whose agent is gone but still inside the grace: their entries are a last word, not news. */
  readonly gone?: ReadonlySet<string>;
}

const isHealthy = (entry: NodeStatusEntry): boolean => entry.healthy !== false && entry.state !== "FAULT";

/** How many nodes could hold the VIP now: a healthy agent in BACKUP or MASTER. */
export function healthyNodeCount(summary: Pick<NodeSummary, "entries">): number {
  return summary.entries.filter((entry) => (entry.state === "BACKUP" || entry.state === "MASTER") && isHealthy(entry)).length;
}

export function mastersOf(entries: readonly NodeStatusEntry[]): readonly string[] {
  return entries.filter((entry) => entry.state === "MASTER").map((entry) => entry.node).sort();
}

/**
 * The MASTER claims to believe. A gone agent's last MASTER stands while nothing live contradicts it (an agent pod
 * restarting leaves the VIP where it was); once a live agent claims MASTER, the gone one's claim is stale (a node cut
 * off holds nothing: its agent went to FAULT or its link is dead), and counting it would report a split brain and no
 * master for the whole grace.
 */
export function claimedMasters(summary: Pick<NodeSummary, "entries" | "gone">): readonly string[] {
  const masters = mastersOf(summary.entries);
  const live = masters.filter((node) => summary.gone?.has(node) !== true);
  return live.length > 0 ? live : masters;
}

export function readyCondition(summary: NodeSummary): ConditionDraft {
  const masters = claimedMasters(summary);
  const type = ConditionType.Ready;
  if (summary.selectedNodes.length === 0) {
    return { type, status: "False", reason: ConditionReason.NoEligibleNodes, message: "no node matches spec.nodes.selector; label the nodes that may hold the VIP" };
  }
  if (masters.length > 1) {
    return { type, status: "False", reason: ConditionReason.MultipleMasters, message: `${masters.join(", ")} all claim MASTER; see the SplitBrain condition` };
  }
  const [master] = masters;
  const masterEntry = summary.entries.find((entry) => entry.node === master);
  if (master !== undefined && masterEntry !== undefined) {
    if (!isHealthy(masterEntry)) {
      return { type, status: "False", reason: ConditionReason.NoMaster, message: `${master} is MASTER but reports unhealthy` };
    }
    return { type, status: "True", reason: ConditionReason.MasterElected, message: `${master} holds ${summary.addresses.join(", ")}` };
  }
  if (summary.entries.length === 0) {
    return { type, status: "False", reason: ConditionReason.AgentsPending, message: "no agent has reported yet" };
  }
  const states = summary.entries.map((entry) => `${entry.node} ${entry.state}`).join(", ");
  return { type, status: "False", reason: ConditionReason.NoMaster, message: `no node is MASTER (${states})` };
}

export function degradedCondition(summary: NodeSummary): ConditionDraft {
  const type = ConditionType.Degraded;
  const byNode = new Map(summary.entries.map((entry) => [entry.node, entry]));
  const missing = summary.selectedNodes.filter((node) => !byNode.has(node));
  const unhealthy = summary.entries.filter((entry) => !isHealthy(entry)).map((entry) => entry.node);
  const healthyBackups = summary.entries.filter((entry) => entry.state === "BACKUP" && isHealthy(entry));
  const hasMaster = mastersOf(summary.entries).length > 0;
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`no reporting agent on ${missing.join(", ")}`);
  if (unhealthy.length > 0) problems.push(`unhealthy: ${unhealthy.join(", ")}`);
  if (hasMaster && healthyBackups.length === 0) problems.push("no healthy BACKUP is left to take over");
  if (problems.length === 0) {
    return { type, status: "False", reason: ConditionReason.AllNodesHealthy, message: "every selected node runs a healthy agent" };
  }
  // The most actionable cause names the reason; the message lists them all.
  const reason =
    hasMaster && healthyBackups.length === 0
      ? ConditionReason.NoBackup
      : missing.length > 0
        ? ConditionReason.AgentsMissing
        : ConditionReason.NodesUnhealthy;
  return { type, status: "True", reason, message: problems.join("; ") };
}

export function splitBrainCondition(summary: Pick<NodeSummary, "entries" | "gone">): ConditionDraft {
  const masters = claimedMasters(summary);
  return masters.length > 1
    ? { type: ConditionType.SplitBrain, status: "True", reason: ConditionReason.MultipleMasters, message: `MASTER on ${masters.join(", ")}: they do not hear each other's advertisements` }
    : { type: ConditionType.SplitBrain, status: "False", reason: ConditionReason.SingleMaster, message: "at most one node is MASTER" };
}

/**
 * VirtualRouterIDShared from the resources that set the same spec VRID on other nodes. A warning, not a Conflict: two
 * sites on separate LANs may reuse a VRID, as keepalived setups do, and only the person who wired them knows.
 */
export function virtualRouterIdSharedCondition(sharings: readonly { readonly message: string }[]): ConditionDraft {
  const type = ConditionType.VirtualRouterIDShared;
  return sharings.length === 0
    ? { type, status: "False", reason: ConditionReason.VirtualRouterIDUnique, message: "no other HighAvailabilityVIP of this address family uses this VRID" }
    : { type, status: "True", reason: ConditionReason.SameVirtualRouterIDOnOtherNodes, message: sharings.map((sharing) => sharing.message).join("; ") };
}

/**
 * WeightIneffective from the weight warnings of the selected nodes (weightWarnings). A warning, not an error: the
 * spec is valid and the VIP works while every node is healthy, so Ready and Invalid do not change.
 */
export function weightCondition(spec: HaVipSpec, warnings: readonly HaVipWarning[]): ConditionDraft {
  const type = ConditionType.WeightIneffective;
  const weight = spec.healthCheck?.weight ?? 0;
  if (warnings.length === 0) {
    return {
      type,
      status: "False",
      reason: ConditionReason.WeightEffective,
      message:
        weight === 0
          ? "weight 0: an unhealthy node goes FAULT and releases the VIP"
          : `weight ${weight} lowers an unhealthy MASTER below the best BACKUP, which then takes over`,
    };
  }
  const reason = warnings.some((warning) => warning.cause === "preemption-never") ? ConditionReason.PreemptionDisabled : ConditionReason.WeightTooSmall;
  return {
    type,
    status: "True",
    reason,
    message: `${warnings.map((warning) => warning.message).join("; ")}; ${weightFix(spec, warnings)}`,
  };
}

/**
 * Turns drafts into conditions: a condition whose status did not change keeps its lastTransitionTime, as
 * metav1.Condition requires, even when its reason or message moved.
 */
export function stampConditions(
  drafts: readonly ConditionDraft[],
  previous: readonly HaVipCondition[],
  generation: number | undefined,
  nowIso: string,
): HaVipCondition[] {
  return drafts.map((draft) => {
    const before = previous.find((condition) => condition.type === draft.type);
    const lastTransitionTime = before !== undefined && before.status === draft.status ? before.lastTransitionTime : nowIso;
    return {
      type: draft.type,
      status: draft.status,
      reason: draft.reason,
      message: draft.message,
      lastTransitionTime,
      ...(generation === undefined ? {} : { observedGeneration: generation }),
    };
  });
}

/** Conditions whose status is bad news; an Event about them is a Warning. */
export function isAbnormal(condition: Pick<HaVipCondition, "type" | "status">): boolean {
  return condition.type === ConditionType.Ready ? condition.status !== "True" : condition.status === "True";
}
