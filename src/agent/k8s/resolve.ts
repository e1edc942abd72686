// What the agent needs from a HighAvailabilityVIP before its router can run: a valid spec that the controller has
// seen and not refused, a VRID (the spec's, or the one the controller allocated into status) and the unicast peers
// the controller published. Pure.

import { ConditionReason, ConditionType, nodeStatusEntrySchema, validateHaVipSpec, formatIssues, type HaVipSpec, type NodeStatusEntry } from "../../api/v1alpha1/index.js";

export interface SecretKeyRef {
  readonly name: string;
  readonly key: string;
}

export type HaVipResolution =
  | { readonly kind: "invalid"; readonly message: string }
  | { readonly kind: "waiting"; readonly message: string }
  /** No VIPAddressPool admits it: no router may run, and a running one is withdrawn with its VIP. */
  | { readonly kind: "refused"; readonly message: string }
  | {
      readonly kind: "ready";
      readonly spec: HaVipSpec;
      readonly vrid: number;
      readonly publishedPeers: readonly string[];
      /** Nodes the controller reports cordoned: an agent there counts as unhealthy. */
      readonly cordonedNodes: readonly string[];
      /** The VRRPv2 password's Secret; only for version 2, where RFC 3768 carries it. */
      readonly passwordRef: SecretKeyRef | undefined;
      /** That Secret's resourceVersion as the controller last saw it: the password is read again when it changes. */
      readonly passwordSecretVersion: string | undefined;
    };

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// The status is written by the controller and by every agent; one odd field there must not stop this agent, so
// only the fields it reads are checked, one by one.
function statusVrid(status: unknown): number | undefined {
  if (!isRecord(status)) return undefined;
  const vrid = status.virtualRouterID;
  return typeof vrid === "number" && Number.isInteger(vrid) && vrid >= 1 && vrid <= 255 ? vrid : undefined;
}

function statusStrings(status: unknown, field: "peers" | "cordonedNodes"): readonly string[] {
  if (!isRecord(status)) return [];
  const list = status[field];
  if (!Array.isArray(list)) return [];
  return list.filter((item): item is string => typeof item === "string" && item !== "");
}

function conditionsOf(status: unknown): readonly Readonly<Record<string, unknown>>[] {
  if (!isRecord(status) || !Array.isArray(status.conditions)) return [];
  return status.conditions.filter(isRecord);
}

/**
 * Why the controller refuses the resource outright, if it does: no VIPAddressPool admits it. Unlike a conflict, this is
 * the cluster admin saying the resource may not claim its address at all, so it counts whatever generation it was
 * written for: a pool deleted or narrowed takes a running router down too.
 */
function policyRefusal(object: Readonly<Record<string, unknown>>): string | undefined {
  const notAdmitted = conditionsOf(object.status).find((condition) => condition.type === ConditionType.NotAdmitted && condition.status === "True");
  return notAdmitted === undefined ? undefined : `the controller refuses it: NotAdmitted (${String(notAdmitted.reason)}): ${String(notAdmitted.message)}`;
}

/**
 * Why the controller holds this generation back, if it does: it has not seen it yet, or it refused it (a VRID or
 * address conflict, too many nodes). The agents then keep what runs and start nothing new.
 */
function controllerRefusal(object: Readonly<Record<string, unknown>>): string | undefined {
  const generation = isRecord(object.metadata) ? object.metadata.generation : undefined;
  if (typeof generation !== "number") return undefined;
  const observed = isRecord(object.status) ? object.status.observedGeneration : undefined;
  if (observed !== generation) return `waiting for the controller to see generation ${generation} (status.observedGeneration is ${typeof observed === "number" ? observed : "unset"})`;
  const conditions = conditionsOf(object.status);
  const conflict = conditions.find((condition) => condition.type === ConditionType.Conflict && condition.status === "True");
  if (conflict !== undefined) return `the controller refuses it: Conflict (${String(conflict.reason)}): ${String(conflict.message)}`;
  const tooMany = conditions.find((condition) => condition.type === ConditionType.Ready && condition.reason === ConditionReason.TooManyNodes);
  if (tooMany !== undefined) return `the controller refuses it: ${String(tooMany.message)}`;
  return undefined;
}

export function resolveHaVip(object: unknown): HaVipResolution {
  if (!isRecord(object)) return { kind: "invalid", message: "the object is not a HighAvailabilityVIP" };
  const validated = validateHaVipSpec(object.spec);
  if (!validated.ok) return { kind: "invalid", message: formatIssues(validated.issues) };
  const spec = validated.value;
  const refused = policyRefusal(object);
  if (refused !== undefined) return { kind: "refused", message: refused };
  const refusal = controllerRefusal(object);
  if (refusal !== undefined) return { kind: "waiting", message: refusal };
  const vrid = spec.virtualRouterID ?? statusVrid(object.status);
  if (vrid === undefined) {
    return { kind: "waiting", message: "waiting for the controller to allocate status.virtualRouterID (spec.virtualRouterID is not set)" };
  }
  const ref = spec.authentication?.passwordSecretRef;
  return {
    kind: "ready",
    spec,
    vrid,
    publishedPeers: spec.transport.mode === "Unicast" ? statusStrings(object.status, "peers") : [],
    cordonedNodes: statusStrings(object.status, "cordonedNodes"),
    passwordRef: spec.vrrpVersion === 2 && ref !== undefined ? { name: ref.name, key: ref.key } : undefined,
    passwordSecretVersion: isRecord(object.status) && typeof object.status.passwordSecretVersion === "string" ? object.status.passwordSecretVersion : undefined,
  };
}

/** This node's entry in status.nodes as the API server holds it; undefined when absent or malformed. */
export function observedStatusEntry(object: unknown, node: string): NodeStatusEntry | undefined {
  if (!isRecord(object) || !isRecord(object.status) || !Array.isArray(object.status.nodes)) return undefined;
  const entry: unknown = object.status.nodes.find((candidate: unknown) => isRecord(candidate) && candidate.node === node);
  const parsed = nodeStatusEntrySchema.safeParse(entry);
  return parsed.success ? parsed.data : undefined;
}
