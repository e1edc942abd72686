import { parseAllDocuments, type Document } from "yaml";
import type { z } from "zod";
import {
  HAVIP_API_VERSION,
  HAVIP_KIND,
  haVipSpecSchema,
  haVipStatusSchema,
  highAvailabilityVipSchema,
  nodeStatusEntrySchema,
  priorityOf,
  type HaVipSpec,
  type HaVipStatus,
  type HighAvailabilityVIP,
} from "./schema.js";
import { vipAddressPoolSpecSchema, type VipAddressPoolSpec } from "./pool.js";

/** One problem: where (e.g. "spec.addresses[1]") and what to do about it. */
export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

export type ValidationResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly issues: readonly ValidationIssue[] };

/** Writes a zod path the way kubectl does: spec.nodes.priorities[0].node. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => {
    if (typeof key === "number") return `${text}[${key}]`;
    const name = String(key);
    return text === "" ? name : `${text}.${name}`;
  }, "");
}

/** "path: message" lines joined by "; ", for a condition message or a log line. */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((issue) => (issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`)).join("; ");
}

const describe = (value: unknown): string => JSON.stringify(value) ?? String(value);

// zod's built-in messages say what is wrong but not how to fix it; this rewrites the generic ones. Schemas that know
// a better fix (ranges with RFC reasons, durations, addresses) carry their own messages, which take precedence.
function explainIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined
        ? `is required; add it`
        : `expected ${issue.expected}, got ${describe(issue.input)}; write a ${issue.expected}`;
    case "too_small":
      if (issue.origin === "array") return `needs at least ${issue.minimum} item(s); add more`;
      if (issue.origin === "string") return `needs at least ${issue.minimum} character(s); fill it in`;
      return `${describe(issue.input)} is below the minimum ${issue.minimum}; use a value ≥ ${issue.minimum}`;
    case "too_big":
      if (issue.origin === "array") return `holds more than ${issue.maximum} items; remove some`;
      if (issue.origin === "string") return `is longer than ${issue.maximum} characters; shorten it`;
      return `${describe(issue.input)} is above the maximum ${issue.maximum}; use a value ≤ ${issue.maximum}`;
    case "invalid_value":
      return `${describe(issue.input)} is not allowed; use one of ${issue.values.map((value) => String(value)).join(", ")}`;
    case "invalid_format":
      return `${describe(issue.input)} is not a valid ${issue.format}; fix its format`;
    default:
      return undefined;
  }
}

function toIssues(error: z.core.$ZodError, prefix: readonly PropertyKey[]): ValidationIssue[] {
  return error.issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        path: formatPath([...path, key]),
        message: `unknown field; remove it or fix its spelling`,
      }));
    }
    return [{ path: formatPath(path), message: issue.message }];
  });
}

/**
 * Validates a whole HighAvailabilityVIP object (apiVersion, kind, metadata, spec, status) and fills in defaults.
 * Never throws. Issues name the field path ("spec.advertisementInterval") and say how to fix it.
 */
export function validateHaVip(object: unknown): ValidationResult<HighAvailabilityVIP> {
  const result = highAvailabilityVipSchema.safeParse(object, { error: explainIssue });
  return result.success ? { ok: true, value: result.data } : { ok: false, issues: toIssues(result.error, []) };
}

/**
 * A stored status, field by field: a malformed field or nodes entry (a hand edit, an older version's) is left out
 * instead of blanking the whole status, whose VRID, master and conditions still count.
 */
export function readHaVipStatus(status: unknown): HaVipStatus {
  const raw: Record<string, unknown> = typeof status === "object" && status !== null ? (status as Record<string, unknown>) : {};
  const fields = Object.entries(haVipStatusSchema.shape).flatMap(([key, schema]): [string, unknown][] => {
    if (key === "nodes") {
      if (!Array.isArray(raw.nodes)) return [];
      return [[key, raw.nodes.flatMap((entry: unknown) => {
        const parsed = nodeStatusEntrySchema.safeParse(entry);
        return parsed.success ? [parsed.data] : [];
      })]];
    }
    const parsed = schema.safeParse(raw[key]);
    return parsed.success && parsed.data !== undefined ? [[key, parsed.data]] : [];
  });
  return Object.fromEntries(fields) as HaVipStatus;
}

/** Validates a spec alone and fills in defaults; issue paths still start with "spec.". */
export function validateHaVipSpec(spec: unknown): ValidationResult<HaVipSpec> {
  const result = haVipSpecSchema.safeParse(spec, { error: explainIssue });
  return result.success ? { ok: true, value: result.data } : { ok: false, issues: toIssues(result.error, ["spec"]) };
}

/** Checks a VIPAddressPool's spec; issue paths start at "spec". */
export function validateVipAddressPoolSpec(spec: unknown): ValidationResult<VipAddressPoolSpec> {
  const result = vipAddressPoolSpecSchema.safeParse(spec, { error: explainIssue });
  return result.success ? { ok: true, value: result.data } : { ok: false, issues: toIssues(result.error, ["spec"]) };
}

/** One document of a standalone file: where it is (1-based), and the resource or why it cannot run. */
export interface LoadedDocument {
  readonly position: number;
  /** metadata.name whenever the document has one, valid or not, so a broken document still names its resource. */
  readonly name: string | undefined;
  readonly result: ValidationResult<HighAvailabilityVIP>;
}

/**
 * Reads a standalone file, as the agent's `--standalone --config FILE` does: one HighAvailabilityVIP per YAML
 * document, like a keepalived.conf with one `vrrp_instance` per block. Each document is judged on its own, so one
 * broken document never hides the others. Never throws.
 */
export function loadHaVipManifests(yamlText: string): LoadedDocument[] {
  const documents = parseAllDocuments(yamlText);
  const nonEmpty = Array.isArray(documents) ? documents.filter((document) => document.contents !== null) : [];
  if (nonEmpty.length === 0) {
    return [{ position: 1, name: undefined, result: { ok: false, issues: [{ path: "", message: "the file holds no document; write at least one HighAvailabilityVIP manifest" }] } }];
  }
  return nonEmpty.map((document, index) => ({ position: index + 1, name: nameOf(document), result: documentToHaVip(document) }));
}

function nameOf(document: Document.Parsed): string | undefined {
  const name: unknown = document.errors.length === 0 ? document.getIn(["metadata", "name"]) : undefined;
  return typeof name === "string" ? name : undefined;
}

function documentToHaVip(document: Document.Parsed): ValidationResult<HighAvailabilityVIP> {
  const [syntaxError] = document.errors;
  if (syntaxError !== undefined) {
    // Later YAML errors are mostly echoes of the first.
    const message = `YAML syntax: ${syntaxError.message.split("\n")[0] ?? ""}; fix the file`;
    return { ok: false, issues: [{ path: "", message }] };
  }
  const object: unknown = document.toJS();
  if (typeof object !== "object" || object === null || Array.isArray(object)) {
    return { ok: false, issues: [{ path: "", message: "the document is not a mapping; write a HighAvailabilityVIP manifest" }] };
  }
  const header = object as { apiVersion?: unknown; kind?: unknown };
  // Check apiVersion and kind first: a Deployment or a v1beta1 object would otherwise drown in field errors.
  const headerIssues: ValidationIssue[] = [];
  if (header.apiVersion !== HAVIP_API_VERSION) {
    headerIssues.push({ path: "apiVersion", message: `${describe(header.apiVersion)} is not ${HAVIP_API_VERSION}; set apiVersion: ${HAVIP_API_VERSION}` });
  }
  if (header.kind !== HAVIP_KIND) {
    headerIssues.push({ path: "kind", message: `${describe(header.kind)} is not ${HAVIP_KIND}; set kind: ${HAVIP_KIND}` });
  }
  return headerIssues.length > 0 ? { ok: false, issues: headerIssues } : validateHaVip(object);
}

export interface HaVipWarning {
  readonly path: string;
  /** The node that would keep the VIP while unhealthy. */
  readonly node: string;
  readonly message: string;
  /** Why the VIP stays: the weight is too small, or preemption is off and no weight can help. */
  readonly cause: "weight-too-small" | "preemption-never";
  /**
   * The weakest weight that would move the VIP off `node`; undefined when no weight in -253..-1 can, and only
   * weight 0 (FAULT) releases it.
   */
  readonly neededWeight: number | undefined;
}

/**
 * Nodes whose negative health-check weight cannot move the VIP (keepalived's #942 trap): a BACKUP takes over only from
 * a *lower* advert (RFC 5798 §6.4.2; the address tie-break of §6.4.3 is between MASTERs), so a node is flagged while
 * priority − |weight| (at least 1) still ties or beats the best node not above it. With preemption Never, every node.
 * `nodeNames`: the nodes that run the router, unlisted ones at DEFAULT_PRIORITY; by default those in spec.nodes.priorities.
 */
export function weightWarnings(spec: HaVipSpec, nodeNames?: readonly string[]): HaVipWarning[] {
  const weight = spec.healthCheck?.weight ?? 0;
  if (weight >= 0) return [];
  const names = [...new Set(nodeNames ?? spec.nodes.priorities.map((entry) => entry.node))].sort();
  if (names.length < 2) return [];
  const nodes = names.map((node) => ({ node, priority: priorityOf(spec, node) }));
  const path = "spec.healthCheck.weight";
  if (spec.preemption.mode === "Never") {
    return nodes.map(({ node, priority }) => ({
      path,
      node,
      cause: "preemption-never" as const,
      neededWeight: undefined,
      message: `${node} (priority ${priority}) keeps the VIP while unhealthy: with preemption mode Never no BACKUP takes over from a live MASTER`,
    }));
  }
  return nodes.flatMap(({ node, priority }) => {
    // The node that takes over from this one: the best of those not above it, since this one is MASTER only while
    // every node above it is gone. For the top node that is the runner-up.
    const below = nodes.filter((other) => other.node !== node && other.priority <= priority);
    const best = below.reduce<(typeof below)[number] | undefined>((a, b) => (a === undefined || b.priority > a.priority ? b : a), undefined);
    if (best === undefined) return [];
    // The agent never lowers a priority below 1 (src/vrrp/config.ts computeEffectivePriority), as keepalived.
    const unhealthy = Math.max(1, priority + weight);
    if (unhealthy < best.priority) return [];
    const needed = -(priority - best.priority + 1);
    return [
      {
        path,
        node,
        cause: "weight-too-small" as const,
        neededWeight: needed >= -253 ? needed : undefined,
        message:
          `${node} (priority ${priority}) keeps the VIP while unhealthy: weight ${weight} lowers it only to ${unhealthy}, ` +
          `not below ${best.node} (priority ${best.priority})`,
      },
    ];
  });
}

/** One sentence on how to make the weight work for every flagged node, for a condition message. */
export function weightFix(spec: HaVipSpec, warnings: readonly HaVipWarning[]): string {
  if (warnings.some((warning) => warning.cause === "preemption-never")) {
    return "set spec.healthCheck.weight: 0 so an unhealthy node goes FAULT and releases the VIP, or spec.preemption.mode: Always";
  }
  const needed = warnings.map((warning) => warning.neededWeight);
  if (needed.some((value) => value === undefined)) {
    return "no weight in -253..-1 bridges that gap; set spec.healthCheck.weight: 0 so an unhealthy node goes FAULT, or bring the priorities closer";
  }
  const strongest = Math.min(...needed.flatMap((value) => (value === undefined ? [] : [value])));
  return `set spec.healthCheck.weight ≤ ${strongest} (now ${spec.healthCheck?.weight ?? 0}), or 0 so an unhealthy node goes FAULT`;
}
