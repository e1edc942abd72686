// The pure heart of the controller: from one HighAvailabilityVIP and what the cluster looks like, the objects that
// should exist, the status to write and the Events to emit. No I/O, no clock: `now` comes in with the inputs.
import {
  addressFamilyOf,
  ConditionReason,
  ConditionType,
  formatIssues,
  MAX_NODES,
  parseIpAddress,
  readHaVipStatus,
  validateHaVip,
  weightWarnings,
  type HaVipCondition,
  type HaVipSpec,
  type HaVipStatus,
  type NodeStatusEntry,
} from "../api/v1alpha1/index.js";
import { desiredPasswordAccess, type Owner, type PasswordAccess } from "./agent-objects.js";
import { decideAdmission, type Admission } from "./admission.js";
import {
  degradedCondition,
  isAbnormal,
  claimedMasters,
  healthyNodeCount,
  mastersOf,
  readyCondition,
  splitBrainCondition,
  stampConditions,
  virtualRouterIdSharedCondition,
  weightCondition,
  type ConditionDraft,
} from "./compute-conditions.js";
import { keyOf, type NodeInfo, type PeerResource, type PlanInputs } from "./plan-inputs.js";
import { isPlacedOn } from "../api/v1alpha1/placement.js";
import { claimOf, decideVrid, type Claim } from "./vrid.js";

/** How long an agent may be gone (pod or node) before its node is listed in status.goneNodes: a pod restart fits inside. */
export const AGENT_GONE_GRACE_MS = 30_000;

/** How often the controller looks at a VRRPv2 password Secret's resourceVersion: a rotation reaches the agents within it. */
export const PASSWORD_CHECK_INTERVAL_MS = 10_000;

export interface PlannedEvent {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
}

export interface Plan {
  /** The agents' access to this resource's password Secret, if it has one; undefined: leave what exists alone (invalid
   * spec, or a conflict this resource must not act on). */
  readonly agentObjects: { readonly passwordAccess: PasswordAccess | undefined } | undefined;
  /** The status fields the controller owns: all but the agents' nodes entries. */
  readonly status: ControllerStatus;
  readonly isStatusChanged: boolean;
  /** Nodes whose status.nodes entry is to be removed: no longer selected, and their agent gone past the grace. */
  readonly staleEntries: readonly string[];
  readonly events: readonly PlannedEvent[];
  /** When to look again for a time-based reason (an agent's or the start-up grace running out), ms since the epoch. */
  readonly requeueAt: number | undefined;
  /** Nodes whose agent is gone now; the caller records when it first saw each. */
  readonly agentsGone: readonly string[];
}

export type ControllerStatus = Omit<HaVipStatus, "nodes">;

function controllerFields(status: HaVipStatus): ControllerStatus {
  const { nodes: _agentsOwnThem, ...owned } = status;
  return owned;
}

function toIso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
}

/**
 * The nodes a spec selects and whose taints it tolerates, among those that exist: where the agents serve it. `running`
 * names the nodes whose agent already serves it, which a NoSchedule taint does not take it off.
 */
export function selectNodes(spec: HaVipSpec, nodes: readonly NodeInfo[], running: ReadonlySet<string>): readonly NodeInfo[] {
  return nodes.filter((node) => isPlacedOn(spec, node, running.has(node.name)));
}

/**
 * Selected nodes marked unschedulable, whose agents then hand the VIP over. None when every selected node is: tools
 * and admins cordon edge nodes for other reasons too, and a VIP held on a cordoned node beats no VIP at all.
 */
function cordonedNodes(selected: readonly NodeInfo[]): string[] {
  const cordoned = selected.filter((node) => node.isCordoned).map((node) => node.name).sort();
  return cordoned.length === selected.length ? [] : cordoned;
}

/** Unicast peers: each selected node's InternalIP of the spec's family (NotReady ones too), sorted for a stable status. */
export function publishedPeers(spec: HaVipSpec, selected: readonly NodeInfo[]): string[] {
  const family = addressFamilyOf(spec);
  // NotReady nodes stay: a node cut off and coming back must hear the Master's adverts from its first moment, or
  // it would take over (preemption Never notwithstanding) before the controller re-published it.
  const peers = selected.flatMap((node) => node.internalAddresses.filter((address) => parseIpAddress(address)?.family === family).slice(0, 1));
  return [...new Set(peers)].sort();
}

interface AgentsSeen {
  /** Nodes whose agent is gone now for this resource (no pod on the node, a node that is not Ready whose pod object
   * lingers, or a node the resource no longer selects). */
  readonly gone: string[];
  /** Selected nodes gone past the grace: status.goneNodes. */
  readonly goneNodes: string[];
  /** Nodes gone past the grace that are no longer selected (unlabelled or deleted): their entries are removed. */
  readonly staleEntries: string[];
  readonly requeueAt: number | undefined;
}

// An agent's entry is its own; the controller only judges whether the agent behind it is still there. Within the
// grace a restart of the pod fits, so the entry stays news; past it, the node is gone, or leaves status altogether
// once it is no longer selected.
function seeAgents(inputs: PlanInputs, entries: readonly NodeStatusEntry[], selected: ReadonlySet<string>): AgentsSeen {
  const ready = new Set(inputs.nodes.filter((node) => node.isReady).map((node) => node.name));
  const withPod = new Set(inputs.agentPods.map((pod) => pod.node));
  const seen: AgentsSeen = { gone: [], goneNodes: [], staleEntries: [], requeueAt: undefined };
  let requeueAt: number | undefined;
  for (const entry of entries) {
    if (entry.state === "UNKNOWN") {
      // The 0.1.0 controller's mark for a gone agent: gone past the grace already, and its live agent rewrites it.
      (selected.has(entry.node) ? seen.goneNodes : seen.staleEntries).push(entry.node);
      continue;
    }
    // A node no longer selected still runs the agent, which serves other resources: its entry here is as stale.
    if (selected.has(entry.node) && ready.has(entry.node) && withPod.has(entry.node)) continue;
    seen.gone.push(entry.node);
    const expiresAt = (inputs.agentGoneSince.get(entry.node) ?? inputs.now) + AGENT_GONE_GRACE_MS;
    if (inputs.now < expiresAt) {
      requeueAt = requeueAt === undefined ? expiresAt : Math.min(requeueAt, expiresAt);
    } else if (selected.has(entry.node)) {
      seen.goneNodes.push(entry.node);
    } else {
      seen.staleEntries.push(entry.node);
    }
  }
  seen.goneNodes.sort();
  return { ...seen, requeueAt };
}

function invalidDrafts(message: string): ConditionDraft[] {
  return [
    { type: ConditionType.Ready, status: "False", reason: ConditionReason.SpecInvalid, message: "the spec is invalid; see the Invalid condition" },
    { type: ConditionType.Invalid, status: "True", reason: ConditionReason.ValidationFailed, message },
  ];
}

// Refused in a condition rather than by a failed write: the status lists hold one entry per selected node, at most
// MAX_NODES, and a refused status write would store no VRID and say nothing in kubectl describe. Why 128:
// docs/design-notes/api-v1alpha1.md.
function tooManyNodesDrafts(selectedCount: number): ConditionDraft[] {
  return [
    {
      type: ConditionType.Ready,
      status: "False",
      reason: ConditionReason.TooManyNodes,
      message:
        `spec.nodes.selector matches ${selectedCount} nodes, more than the limit of ${MAX_NODES} per HighAvailabilityVIP; ` +
        `narrow spec.nodes.selector to at most ${MAX_NODES} nodes (label only those that may hold the VIP); until then the agents neither start nor change its routers`,
    },
    { type: ConditionType.Invalid, status: "False", reason: ConditionReason.SpecValid, message: "the spec is valid" },
  ];
}

function admittedDrafts(admission: Admission | undefined): ConditionDraft[] {
  if (admission?.isAdmitted !== true) return [];
  return [{ type: ConditionType.NotAdmitted, status: "False", reason: ConditionReason.AdmittedByPool, message: `VIPAddressPool "${admission.pool}" admits it` }];
}

// Refused like too many nodes, with one difference: the agents withdraw a running router (the pool that let it run was
// deleted or narrowed), so the status keeps the VRID but tells the MASTER and healthy count from the agents' entries.
function notAdmittedDrafts(message: string): ConditionDraft[] {
  return [
    { type: ConditionType.Ready, status: "False", reason: ConditionReason.AddressNotAdmitted, message: "no VIPAddressPool admits it; see the NotAdmitted condition" },
    { type: ConditionType.NotAdmitted, status: "True", reason: ConditionReason.NoPoolAdmits, message },
    { type: ConditionType.Invalid, status: "False", reason: ConditionReason.SpecValid, message: "the spec is valid" },
  ];
}

/**
 * A resource whose VRID changes has its agents restarted on the new one, and the VIP moves once: say so, and why, so
 * that the move is explained in kubectl describe (a clash with a resource created or upgraded elsewhere, say).
 */
function renumberEvent(before: number | undefined, after: number | undefined, spec: HaVipSpec, others: readonly PeerResource[]): PlannedEvent | undefined {
  if (before === undefined || after === undefined || before === after) return undefined;
  const claimant = others.find((other) => other.spec.virtualRouterID === before || other.statusVirtualRouterID === before);
  const why =
    spec.virtualRouterID === after
      ? "spec.virtualRouterID changed"
      : claimant === undefined
        ? `VRID ${before} is taken`
        : `VRID ${before} is claimed by HighAvailabilityVIP ${keyOf(claimant)}, which keeps it`;
  return { type: "Warning", reason: "VirtualRouterIDChanged", message: `VRID ${before} -> ${after}: ${why}; the agents restart on the new VRID and the VIP moves once` };
}

// Conditions about the spec are news at once. Those about the running agents (Ready, Degraded, SplitBrain) are not
// while the resource starts: agents pending and nginx not Ready yet are its normal first moments, not a Warning.
const specConditions: ReadonlySet<string> = new Set([
  ConditionType.Invalid,
  ConditionType.Conflict,
  ConditionType.VirtualRouterIDShared,
  ConditionType.WeightIneffective,
  ConditionType.NotAdmitted,
]);
const specReadyReasons: ReadonlySet<string> = new Set([ConditionReason.NoEligibleNodes, ConditionReason.TooManyNodes, ConditionReason.AddressNotAdmitted]);
// Ready reasons that only point at another condition, which raises its own Event: one Warning per refusal, not two.
const readyReasonsToldElsewhere: ReadonlySet<string> = new Set([ConditionReason.AddressNotAdmitted]);

/** How long a resource that has not been Ready yet counts as starting. */
export const STARTUP_GRACE_MS = 120_000;

function isAboutSpec(condition: HaVipCondition): boolean {
  return specConditions.has(condition.type) || (condition.type === ConditionType.Ready && specReadyReasons.has(condition.reason));
}

/**
 * The agents' bad conditions whose Warning the start-up grace held back, seen once the grace is over: Ready is bad and
 * last changed inside the grace, and so did each of them. Telling one moves its lastTransitionTime to now, past the
 * grace, so the status itself records it as told. A resource Ready by the grace's end is told nothing; one Ready and
 * lost again inside the grace is told its loss a second time, as the status cannot tell it from one never Ready.
 */
function heldBackConditions(conditions: readonly HaVipCondition[], graceEndsAt: number): ReadonlySet<string> {
  const isHeldBack = (condition: HaVipCondition) => isAbnormal(condition) && Date.parse(condition.lastTransitionTime) < graceEndsAt;
  const ready = conditions.find((condition) => condition.type === ConditionType.Ready);
  if (ready === undefined || !isHeldBack(ready)) return new Set();
  return new Set(conditions.filter((condition) => isHeldBack(condition) && !isAboutSpec(condition)).map((condition) => condition.type));
}

function conditionEvents(before: readonly HaVipCondition[], after: readonly HaVipCondition[], isStarting: boolean): PlannedEvent[] {
  return after.flatMap((condition) => {
    const previous = before.find((candidate) => candidate.type === condition.type);
    if (previous !== undefined && previous.status === condition.status && previous.reason === condition.reason) return [];
    const isBad = isAbnormal(condition);
    // A condition's first value is news only when it is bad: SpecValid or NoConflict is the normal state.
    if (previous === undefined && !isBad) return [];
    if (isStarting && !isAboutSpec(condition)) return [];
    if (condition.type === ConditionType.Ready && readyReasonsToldElsewhere.has(condition.reason)) return [];
    return [{ type: isBad ? "Warning" as const : "Normal" as const, reason: condition.reason, message: `${condition.type}=${condition.status}: ${condition.message}` }];
  });
}

// Key order differs between what zod parsed and what the planner built; only values count.
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, item]) => [key, canonical(item)]));
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** Everything the controller should do for one resource, given the cluster as it is. */
export function computeDesired(inputs: PlanInputs): Plan {
  const { metadata } = inputs.object;
  const previous = readHaVipStatus(inputs.object.status);
  const previousConditions = previous.conditions ?? [];
  const nowIso = toIso(inputs.now);
  const owner: Owner = { name: metadata.name, namespace: metadata.namespace, uid: metadata.uid };
  const validation = validateHaVip({
    apiVersion: "ha-nginx.io/v1alpha1",
    kind: "HighAvailabilityVIP",
    metadata: { name: metadata.name, namespace: metadata.namespace },
    spec: inputs.object.spec,
  });

  let drafts: ConditionDraft[];
  let status: ControllerStatus;
  let agentObjects: Plan["agentObjects"];
  let requeueAt: number | undefined;
  let gone: string[] = [];
  let staleEntries: string[] = [];
  const events: PlannedEvent[] = [];

  const running = new Set((previous.nodes ?? []).map((entry) => entry.node));
  const selected = validation.ok ? selectNodes(validation.value.spec, inputs.nodes, running) : [];
  const admission: Admission | undefined = validation.ok
    ? decideAdmission({ namespace: metadata.namespace, spec: validation.value.spec, nodes: selected }, inputs.pools)
    : undefined;
  if (!validation.ok) {
    drafts = invalidDrafts(formatIssues(validation.issues));
    status = controllerFields(previous);
    agentObjects = undefined;
  } else if (admission?.isAdmitted === false) {
    drafts = notAdmittedDrafts(admission.message);
    const entries = previous.nodes ?? [];
    const masters = mastersOf(entries);
    status = { ...controllerFields(previous), master: masters.length === 1 ? (masters[0] ?? "") : "", healthyNodes: healthyNodeCount({ entries }) };
    agentObjects = undefined;
  } else if (selected.length > MAX_NODES) {
    // Refused like an invalid spec: the status keeps what the API server accepted before (a running resource keeps
    // its VRID and peers), and running agents are left alone rather than torn down over a selector change.
    drafts = [...tooManyNodesDrafts(selected.length), ...admittedDrafts(admission)];
    status = controllerFields(previous);
    agentObjects = undefined;
  } else {
    const spec = validation.value.spec;
    const selectedNames = new Set(selected.map((node) => node.name));
    const mine: Claim = {
      key: keyOf(owner),
      creationTimestamp: metadata.creationTimestamp,
      spec,
      statusVirtualRouterID: previous.virtualRouterID,
      nodes: selectedNames,
    };
    // Another resource may still run where a NoSchedule taint came later: its claim counts those nodes too.
    const everyNode = new Set(inputs.nodes.map((node) => node.name));
    const others = inputs.others.map((other) => claimOf(other, new Set(selectNodes(other.spec, inputs.nodes, everyNode).map((node) => node.name))));
    const vrid = decideVrid(mine, others);
    const entries = previous.nodes ?? [];
    const seen = seeAgents(inputs, entries, selectedNames);
    gone = seen.gone;
    requeueAt = seen.requeueAt;
    staleEntries = seen.staleEntries;
    const silent = new Set([...seen.goneNodes, ...seen.staleEntries]);
    const summary = {
      entries: entries.filter((entry) => !silent.has(entry.node)),
      selectedNodes: [...selectedNames].sort(),
      addresses: spec.addresses,
      gone: new Set(seen.gone),
    };
    const [firstConflict] = vrid.conflicts;
    drafts = [
      readyCondition(summary),
      degradedCondition(summary),
      splitBrainCondition(summary),
      firstConflict === undefined
        ? { type: ConditionType.Conflict, status: "False", reason: ConditionReason.NoConflict, message: "the VRID and addresses are this resource's alone" }
        : { type: ConditionType.Conflict, status: "True", reason: firstConflict.reason, message: vrid.conflicts.map((conflict) => conflict.message).join("; ") },
      virtualRouterIdSharedCondition(vrid.sharings),
      { type: ConditionType.Invalid, status: "False", reason: ConditionReason.SpecValid, message: "the spec is valid" },
      ...admittedDrafts(admission),
      // A weak weight is legal, so it gets its own condition rather than Invalid; turning True raises a Warning Event.
      weightCondition(spec, weightWarnings(spec, summary.selectedNodes)),
    ];
    agentObjects =
      vrid.virtualRouterID === undefined || firstConflict !== undefined
        ? undefined
        : { passwordAccess: desiredPasswordAccess(owner, spec, inputs.agent) };
    const { passwordSecretVersion: _readBelow, ...previousOwned } = controllerFields(previous);
    const hasPassword = spec.vrrpVersion === 2 && spec.authentication !== undefined;
    // Nothing tells the controller of a changed Secret (it may get one, not watch them all), so it looks again.
    if (hasPassword) requeueAt = Math.min(requeueAt ?? Infinity, inputs.now + PASSWORD_CHECK_INTERVAL_MS);
    const masters = claimedMasters(summary);
    status = {
      ...previousOwned,
      ...(hasPassword && inputs.passwordSecretVersion !== undefined ? { passwordSecretVersion: inputs.passwordSecretVersion } : {}),
      ...(vrid.virtualRouterID === undefined ? {} : { virtualRouterID: vrid.virtualRouterID }),
      master: masters.length === 1 ? (masters[0] ?? "") : "",
      peers: publishedPeers(spec, selected),
      cordonedNodes: cordonedNodes(selected),
      goneNodes: seen.goneNodes,
      healthyNodes: healthyNodeCount(summary),
    };
    const renumbered = renumberEvent(previous.virtualRouterID, vrid.virtualRouterID, spec, inputs.others);
    if (renumbered !== undefined) events.push(renumbered);
    const previousMaster = previous.master ?? "";
    if (status.master !== previousMaster) {
      events.push(
        status.master === ""
          ? { type: "Warning", reason: "MasterLost", message: `no node is MASTER any more (was ${previousMaster})` }
          : { type: "Normal", reason: "MasterChanged", message: `${status.master} is MASTER${previousMaster === "" ? "" : ` (was ${previousMaster})`}` },
      );
    }
  }

  const stamped = stampConditions(drafts, previousConditions, metadata.generation, nowIso);
  const wasReady = previousConditions.some((condition) => condition.type === ConditionType.Ready && condition.status === "True");
  const graceEndsAt = Date.parse(metadata.creationTimestamp) + STARTUP_GRACE_MS;
  const isStarting = !wasReady && inputs.now < graceEndsAt;
  // Nothing else wakes the controller when the grace ends, and a Warning held back until then must not wait for news.
  if (isStarting) requeueAt = Math.min(requeueAt ?? graceEndsAt, graceEndsAt);
  // Once the grace is over, what it held back is told as if the condition had just turned bad.
  const heldBack = inputs.now < graceEndsAt ? new Set<string>() : heldBackConditions(stamped, graceEndsAt);
  const conditions = stamped.map((condition) => (heldBack.has(condition.type) ? { ...condition, lastTransitionTime: nowIso } : condition));
  // Conditions this plan does not compute (an invalid spec or too many nodes computes only two) keep their values.
  const kept = previousConditions.filter((condition) => !conditions.some((fresh) => fresh.type === condition.type));
  status = {
    ...status,
    ...(metadata.generation === undefined ? {} : { observedGeneration: metadata.generation }),
    conditions: [...conditions, ...kept],
  };
  events.push(...conditionEvents(previousConditions.filter((condition) => !heldBack.has(condition.type)), conditions, isStarting));
  return {
    agentObjects,
    status,
    isStatusChanged: !sameJson(status, controllerFields(previous)),
    staleEntries,
    events,
    requeueAt,
    agentsGone: gone,
  };
}
