import { parseAllDocuments } from "yaml";
import type { z } from "zod";
import {
  HAVIP_API_VERSION,
  HAVIP_KIND,
  haVipSpecSchema,
  highAvailabilityVipSchema,
  priorityOf,
  type HaVipSpec,
  type HighAvailabilityVIP,
} from "./schema.js";

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

/** Validates a spec alone and fills in defaults; issue paths still start with "spec.". */
export function validateHaVipSpec(spec: unknown): ValidationResult<HaVipSpec> {
  const result = haVipSpecSchema.safeParse(spec, { error: explainIssue });
  return result.success ? { ok: true, value: result.data } : { ok: false, issues: toIssues(result.error, ["spec"]) };
}

/**
 * Reads a standalone manifest (one YAML document holding one HighAvailabilityVIP), as the agent's
 * `--standalone --config FILE` does. Never throws; YAML syntax errors come back as issues with path "".
 */
export function loadHaVipManifest(yamlText: string): ValidationResult<HighAvailabilityVIP> {
  const documents = parseAllDocuments(yamlText);
  if (!Array.isArray(documents)) {
    return { ok: false, issues: [{ path: "", message: "the file is empty; write one HighAvailabilityVIP manifest" }] };
  }
  const nonEmpty = documents.filter((document) => document.contents !== null);
  if (nonEmpty.length !== 1) {
    return {
      ok: false,
      issues: [{ path: "", message: `the file holds ${nonEmpty.length} YAML documents; keep exactly one HighAvailabilityVIP` }],
    };
  }
  const [document] = nonEmpty;
  if (document === undefined) return { ok: false, issues: [] };
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

/** A configuration that validates but will not do what its author most likely wants. */
export interface HaVipWarning {
  readonly path: string;
  /** The node the warning is about. */
  readonly node: string;
  readonly message: string;
}

/**
 * Finds nodes whose negative health-check weight is too small to move the VIP (keepalived issue #942): an unhealthy
 * node advertises priority − |weight|, and while that is still at least the best other node's priority, that node
 * never preempts it, so the failing node keeps the VIP. A tie is flagged too: RFC 5798 §6.4.3 then lets the higher
 * primary address win, which may be the failing node.
 *
 * `nodeNames` are the nodes that run the router (e.g. those the selector matches); unlisted ones have priority
 * DEFAULT_PRIORITY. Without it, the nodes in `spec.nodes.priorities` are used.
 */
export function weightWarnings(spec: HaVipSpec, nodeNames?: readonly string[]): HaVipWarning[] {
  const weight = spec.healthCheck?.weight ?? 0;
  if (weight >= 0) return [];
  const names = [...new Set(nodeNames ?? spec.nodes.priorities.map((entry) => entry.node))];
  if (names.length < 2) return [];
  const nodes = names.map((node) => ({ node, priority: priorityOf(spec, node) }));
  return nodes.flatMap(({ node, priority }) => {
    const others = nodes.filter((other) => other.node !== node);
    const best = others.reduce((a, b) => (b.priority > a.priority ? b : a));
    // keepalived never lowers a priority below 1.
    const unhealthy = Math.max(1, priority + weight);
    if (unhealthy < best.priority) return [];
    const needed = -(priority - best.priority + 1);
    const fix = needed >= -253 ? `set weight ≤ ${needed}, or weight: 0` : "set weight: 0";
    return [
      {
        path: "spec.healthCheck.weight",
        node,
        message:
          `weight ${weight} cannot move the VIP off ${node}: unhealthy, its priority ${priority} drops only to ${unhealthy}, ` +
          `not below ${best.node} at ${best.priority}; ${fix} so an unhealthy node goes FAULT`,
      },
    ];
  });
}
