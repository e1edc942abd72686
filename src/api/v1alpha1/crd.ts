// Builds the HighAvailabilityVIP and VIPAddressPool CRDs from the zod schemas, so they cannot drift from the types and
// the validation. Kubernetes wants a *structural* OpenAPI v3 schema (every node typed; no $ref, anyOf/oneOf or
// `additionalProperties: false`): toStructural translates the constructs the schemas use and refuses anything else, so
// a new zod construct fails the generator instead of yielding a CRD the API server rejects.
import { stringify } from "yaml";
import { z } from "zod";
import {
  HAVIP_API_VERSION,
  HAVIP_GROUP,
  HAVIP_KIND,
  HAVIP_PLURAL,
  HAVIP_SHORT_NAME,
  HAVIP_SINGULAR,
  HAVIP_VERSION,
  haVipSpecSchema,
  haVipStatusSchema,
} from "./schema.js";
import { POOL_API_VERSION, POOL_KIND, POOL_PLURAL, POOL_SHORT_NAME, POOL_SINGULAR, vipAddressPoolSpecSchema } from "./pool.js";

/** Where the generated CRD lives, relative to the repository root. */
export const CRD_FILE = `crds/${HAVIP_GROUP}_${HAVIP_PLURAL}.yaml`;
/** Where the generated VIPAddressPool CRD lives, relative to the repository root. */
export const POOL_CRD_FILE = `crds/${HAVIP_GROUP}_${POOL_PLURAL}.yaml`;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

// Emitted in this order, for a CRD a person can read.
const KEY_ORDER = [
  "description", "type", "format", "enum", "default", "minimum", "maximum", "minLength", "maxLength", "pattern",
  "minItems", "maxItems", "required", "properties", "items", "additionalProperties",
] as const;
const EXTENSION_PREFIX = "x-kubernetes-";
// zod's bounds for z.int(); they say "any integer" and only add noise to the CRD.
const SAFE_INTEGER_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(path: string, problem: string): never {
  throw new Error(`generate-crd: ${path || "<root>"}: ${problem}; express it differently in the zod schema`);
}

/** Converts zod's JSON Schema (OpenAPI 3.0 target) for one node, and its children, to Kubernetes' structural form. */
export function toStructural(node: JsonObject, path = ""): JsonObject {
  const out: JsonObject = {};
  const extensions: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith(EXTENSION_PREFIX)) {
      extensions[key] = value;
      continue;
    }
    switch (key) {
      case "$schema":
      case "propertyNames": // record keys are strings in Kubernetes anyway
        break;
      case "const":
        out["enum"] = [value];
        break;
      case "properties": {
        if (!isJsonObject(value)) fail(path, "properties is not an object");
        const properties: JsonObject = {};
        for (const [name, child] of Object.entries(value)) {
          if (!isJsonObject(child)) fail(`${path}.${name}`, "schema is not an object");
          properties[name] = toStructural(child, `${path}.${name}`);
        }
        out["properties"] = properties;
        break;
      }
      case "items":
        if (!isJsonObject(value)) fail(path, "tuple items are not structural");
        out["items"] = toStructural(value, `${path}[]`);
        break;
      case "additionalProperties":
        // false: Kubernetes prunes unknown fields by itself and forbids the keyword. {}: anything goes.
        if (value === false) break;
        if (!isJsonObject(value)) fail(path, "additionalProperties must be a schema");
        if (Object.keys(value).length === 0) extensions["x-kubernetes-preserve-unknown-fields"] = true;
        else out["additionalProperties"] = toStructural(value, `${path}{}`);
        break;
      case "minimum":
      case "maximum":
        if (typeof value === "number" && !SAFE_INTEGER_BOUNDS.has(value)) out[key] = value;
        break;
      case "format":
        if (value !== "date-time") fail(path, `format ${String(value)} is not one Kubernetes and zod agree on`);
        out[key] = value;
        break;
      case "pattern":
        // A date-time pattern is zod's spelling of the format, which the API server already checks.
        if (node["format"] !== "date-time") out[key] = value;
        break;
      case "type":
      case "description":
      case "default":
      case "enum":
      case "required":
      case "minLength":
      case "maxLength":
      case "minItems":
      case "maxItems":
        out[key] = value;
        break;
      default:
        fail(path, `"${key}" has no structural form`);
    }
  }
  const enumValues = out["enum"];
  if (out["type"] === "number" && Array.isArray(enumValues) && enumValues.every((v) => Number.isInteger(v))) {
    out["type"] = "integer";
  }
  if (isJsonObject(out["properties"]) && Object.keys(out["properties"]).length === 0 && extensions["x-kubernetes-preserve-unknown-fields"] === true) {
    delete out["properties"];
  }
  if (out["type"] === undefined && extensions["x-kubernetes-int-or-string"] !== true) fail(path, "has no type");
  if (out["default"] !== undefined) out["default"] = withNestedDefaults(out, out["default"]);
  const ordered: JsonObject = {};
  for (const key of KEY_ORDER) {
    const value = out[key];
    if (value !== undefined) ordered[key] = value;
  }
  return { ...ordered, ...extensions };
}

// The API server validates a default as written, before the defaults of its fields apply, so `preemption: {}` would
// fail the CEL rules that read `self.mode`. Writing the nested defaults into the default keeps them valid and shows
// the reader the full effective value.
function withNestedDefaults(schema: JsonObject, value: JsonValue): JsonValue {
  const properties = schema["properties"];
  if (!isJsonObject(value) || !isJsonObject(properties)) return value;
  const filled: JsonObject = { ...value };
  for (const [name, child] of Object.entries(properties)) {
    if (!isJsonObject(child)) continue;
    const current = filled[name] ?? child["default"];
    if (current !== undefined) filled[name] = withNestedDefaults(child, current);
  }
  return filled;
}

function schemaOf(schema: z.ZodType, path: string): JsonObject {
  // io "input": fields with defaults are optional for the author, and the API server fills them in.
  const json: unknown = z.toJSONSchema(schema, { target: "openapi-3.0", io: "input", reused: "inline", unrepresentable: "throw" });
  if (!isJsonObject(json)) fail(path, "zod produced no object schema");
  return toStructural(json, path);
}

interface CrdShape {
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortName: string;
  readonly scope: "Namespaced" | "Cluster";
  readonly printerColumns: readonly JsonObject[];
  readonly description: string;
  /** The top-level fields besides apiVersion, kind and metadata. */
  readonly properties: JsonObject;
  readonly hasStatus: boolean;
}

/** The envelope both of our CRDs share: one served, stored version, the ha-nginx category, spec required. */
function crdOf(shape: CrdShape): JsonObject {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${shape.plural}.${HAVIP_GROUP}` },
    spec: {
      group: HAVIP_GROUP,
      names: {
        kind: shape.kind,
        listKind: `${shape.kind}List`,
        plural: shape.plural,
        singular: shape.singular,
        shortNames: [shape.shortName],
        categories: ["ha-nginx"],
      },
      scope: shape.scope,
      versions: [
        {
          name: HAVIP_VERSION,
          served: true,
          storage: true,
          ...(shape.hasStatus ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: [...shape.printerColumns],
          schema: {
            openAPIV3Schema: {
              description: shape.description,
              type: "object",
              required: ["spec"],
              properties: { apiVersion: { type: "string" }, kind: { type: "string" }, metadata: { type: "object" }, ...shape.properties },
            },
          },
        },
      ],
    },
  };
}

/** The CustomResourceDefinition, as a plain object ready for YAML or the API server. */
export function buildCrd(): JsonObject {
  return crdOf({
    kind: HAVIP_KIND,
    plural: HAVIP_PLURAL,
    singular: HAVIP_SINGULAR,
    shortName: HAVIP_SHORT_NAME,
    scope: "Namespaced",
    printerColumns: [
      { name: "VIP", type: "string", jsonPath: ".spec.addresses[0]" },
      { name: "MASTER", type: "string", jsonPath: ".status.master" },
      { name: "READY", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: "AGE", type: "date", jsonPath: ".metadata.creationTimestamp" },
      { name: "VRID", type: "integer", jsonPath: ".status.virtualRouterID", priority: 1 },
      { name: "HEALTHY", type: "integer", description: "Selected nodes whose agent reports BACKUP or MASTER and healthy", jsonPath: ".status.healthyNodes", priority: 1 },
      { name: "TRANSPORT", type: "string", jsonPath: ".spec.transport.mode", priority: 1 },
    ],
    description: `${HAVIP_KIND} gives a set of nodes a floating virtual IP, elected over VRRP (${HAVIP_API_VERSION}).`,
    properties: { spec: schemaOf(haVipSpecSchema, ".spec"), status: schemaOf(haVipStatusSchema, ".status") },
    hasStatus: true,
  });
}

/** The VIPAddressPool CustomResourceDefinition: cluster-scoped, spec only (the controller writes nothing back). */
export function buildPoolCrd(): JsonObject {
  return crdOf({
    kind: POOL_KIND,
    plural: POOL_PLURAL,
    singular: POOL_SINGULAR,
    shortName: POOL_SHORT_NAME,
    scope: "Cluster",
    printerColumns: [
      { name: "ADDRESSES", type: "string", jsonPath: ".spec.addresses" },
      { name: "NAMESPACES", type: "string", jsonPath: ".spec.namespaces" },
      { name: "AGE", type: "date", jsonPath: ".metadata.creationTimestamp" },
    ],
    description: `${POOL_KIND} admits ${HAVIP_KIND}s: the addresses they may claim, from which namespaces, on which nodes and interfaces (${POOL_API_VERSION}).`,
    properties: { spec: schemaOf(vipAddressPoolSpecSchema, ".spec") },
    hasStatus: false,
  });
}

function renderYaml(crd: JsonObject, source: string): string {
  const header = `# Generated by scripts/generate-crd.ts from src/api/v1alpha1/${source}. Do not edit; run\n` +
    "# `npx tsx scripts/generate-crd.ts` after changing the schema.\n";
  return header + stringify(crd, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** The CRD file's exact text: a header, then YAML with no line folding, so the output is stable. */
export function renderCrdYaml(crd: JsonObject = buildCrd()): string {
  return renderYaml(crd, "schema.ts");
}

/** The VIPAddressPool CRD file's exact text. */
export function renderPoolCrdYaml(crd: JsonObject = buildPoolCrd()): string {
  return renderYaml(crd, "pool.ts");
}
