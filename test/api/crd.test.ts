import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { parse } from "yaml";
import {
  CRD_FILE,
  buildCrd,
  renderCrdYaml,
  toStructural,
  validateHaVipSpec,
  type JsonObject,
  type JsonValue,
} from "../../src/api/v1alpha1/index.js";

const crd = buildCrd();

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function at(root: JsonValue | undefined, ...keys: (string | number)[]): JsonValue | undefined {
  return keys.reduce<JsonValue | undefined>((node, key) => {
    if (typeof key === "number") return Array.isArray(node) ? node[key] : undefined;
    return isObject(node) ? node[key] : undefined;
  }, root);
}

const version = at(crd, "spec", "versions", 0);
const root = at(version, "schema", "openAPIV3Schema");
const spec = at(root, "properties", "spec");
const status = at(root, "properties", "status");

/** Every schema node under `node`, with a kubectl-style path. */
function* schemaNodes(node: JsonValue | undefined, path: string): Generator<[string, JsonObject]> {
  if (!isObject(node)) return;
  yield [path, node];
  const properties = node["properties"];
  if (isObject(properties)) {
    for (const [name, child] of Object.entries(properties)) yield* schemaNodes(child, `${path}.${name}`);
  }
  yield* schemaNodes(node["items"], `${path}[]`);
  yield* schemaNodes(node["additionalProperties"], `${path}{}`);
}

describe("the committed CRD", () => {
  it(`equals what the generator writes (run \`npx tsx scripts/generate-crd.ts\` when this fails)`, async () => {
    const committed = await readFile(new URL(`../../${CRD_FILE}`, import.meta.url), "utf8").catch(() => "<missing>");
    expect(committed === renderCrdYaml(crd), `${CRD_FILE} is stale: run npx tsx scripts/generate-crd.ts`).toBe(true);
  });

  it("parses back to the generated object", () => {
    expect(parse(renderCrdYaml(crd))).toEqual(crd);
  });
});

describe("CRD identity", () => {
  it("names the resource as agreed", () => {
    expect(at(crd, "metadata", "name")).toBe("highavailabilityvips.ha-nginx.io");
    expect(at(crd, "spec", "group")).toBe("ha-nginx.io");
    expect(at(crd, "spec", "scope")).toBe("Namespaced");
    expect(at(crd, "spec", "names")).toMatchObject({
      kind: "HighAvailabilityVIP",
      plural: "highavailabilityvips",
      singular: "highavailabilityvip",
      shortNames: ["havip"],
      categories: ["ha-nginx"],
    });
    expect(at(crd, "spec", "versions")).toHaveLength(1);
    expect(version).toMatchObject({ name: "v1alpha1", served: true, storage: true, subresources: { status: {} } });
  });

  it("prints NAME VIP MASTER READY AGE, and with -o wide the VRID, the healthy nodes and the transport", () => {
    expect(at(version, "additionalPrinterColumns")).toEqual([
      { name: "VIP", type: "string", jsonPath: ".spec.addresses[0]" },
      { name: "MASTER", type: "string", jsonPath: ".status.master" },
      { name: "READY", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: "AGE", type: "date", jsonPath: ".metadata.creationTimestamp" },
      { name: "VRID", type: "integer", jsonPath: ".status.virtualRouterID", priority: 1 },
      { name: "HEALTHY", type: "integer", description: "Selected nodes whose agent reports BACKUP or MASTER and healthy", jsonPath: ".status.healthyNodes", priority: 1 },
      { name: "TRANSPORT", type: "string", jsonPath: ".spec.transport.mode", priority: 1 },
    ]);
  });
});

describe("the schema is structural", () => {
  const nodes = [...schemaNodes(root, "")];

  it("has a type on every node", () => {
    expect(nodes.length).toBeGreaterThan(50);
    expect(nodes.filter(([, node]) => typeof node["type"] !== "string").map(([path]) => path)).toEqual([]);
  });

  it("has no $ref, $defs, anyOf, oneOf, allOf, not, const or additionalProperties: false", () => {
    const forbidden = ["$ref", "$defs", "definitions", "anyOf", "oneOf", "allOf", "not", "const", "$schema"];
    const offenders = nodes.flatMap(([path, node]) =>
      Object.keys(node).filter((key) => forbidden.includes(key) || (key === "additionalProperties" && node[key] === false)).map((key) => `${path}: ${key}`),
    );
    expect(offenders).toEqual([]);
  });

  it("never sets both properties and additionalProperties", () => {
    expect(nodes.filter(([, node]) => "properties" in node && "additionalProperties" in node).map(([path]) => path)).toEqual([]);
  });

  it("keys status.nodes by node and status.conditions by type", () => {
    expect(at(status, "properties", "nodes")).toMatchObject({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["node"] });
    expect(at(status, "properties", "nodes", "items", "required")).toContain("node");
    expect(at(status, "properties", "conditions")).toMatchObject({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] });
    expect(at(spec, "properties", "nodes", "properties", "priorities")).toMatchObject({
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["node"],
    });
  });

  it("passes tolerations through unpruned", () => {
    expect(at(spec, "properties", "nodes", "properties", "tolerations", "items")).toEqual({
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
    });
  });

  it("bounds every list and string a CEL rule can reach, so the API server can estimate the cost", () => {
    const unbounded = nodes.flatMap(([path, node]) => {
      const isUnboundedList = node["type"] === "array" && node["maxItems"] === undefined;
      const isUnboundedString = node["type"] === "string" && node["maxLength"] === undefined && node["enum"] === undefined && node["format"] === undefined;
      return isUnboundedList || isUnboundedString ? [path] : [];
    });
    expect(unbounded.filter((path) => path.startsWith(".spec") || path.startsWith(".status"))).toEqual([]);
  });

  it("gives every CEL rule a message that names a fix", () => {
    const rules = nodes.flatMap(([, node]) => {
      const validations = node["x-kubernetes-validations"];
      return Array.isArray(validations) ? validations : [];
    });
    expect(rules.length).toBeGreaterThanOrEqual(12);
    for (const rule of rules) {
      expect(rule).toMatchObject({ rule: expect.any(String), message: expect.stringMatching(/must|use|set|remove|add|lower|create/) });
    }
  });

  it("covers each cross-field rule with CEL", () => {
    const specRules = JSON.stringify(at(spec, "x-kubernetes-validations"));
    for (const fieldPath of [".addresses", ".vrrpVersion", ".advertisementInterval", ".authentication", ".transport.peers"]) {
      expect(specRules).toContain(`"fieldPath":"${fieldPath}"`);
    }
    expect(JSON.stringify(at(spec, "properties", "preemption", "x-kubernetes-validations"))).toContain("Delayed");
  });
});

describe("defaults", () => {
  it("match zod's defaults for every object the API server fills in", () => {
    const result = validateHaVipSpec({ addresses: ["10.77.0.200"] });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    for (const field of ["preemption", "nodes", "transport", "garp", "vrrpVersion", "advertisementInterval"] as const) {
      expect(at(spec, "properties", field, "default"), field).toEqual(result.value[field]);
    }
  });
});

describe("toStructural", () => {
  const convert = (schema: z.ZodType) => toStructural(z.toJSONSchema(schema, { target: "openapi-3.0", io: "input" }) as JsonObject);

  it("refuses constructs that have no structural form, naming the field", () => {
    expect(() => convert(z.object({ port: z.union([z.string(), z.number()]) }))).toThrow(/\.port: "anyOf"/);
  });

  it("turns a literal into an enum and a number enum of integers into an integer", () => {
    expect(convert(z.object({ a: z.literal("x"), b: z.literal([2, 3]) }))).toMatchObject({
      properties: { a: { type: "string", enum: ["x"] }, b: { type: "integer", enum: [2, 3] } },
    });
  });
});
