import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { loadHaVipManifests, weightWarnings } from "../../src/api/v1alpha1/index.js";

const exampleUrl = new URL("../../examples/vip.yaml", import.meta.url);

const manifest = (spec: string) => `apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata:
  name: edge
spec:
${spec}`;

/** The file's only document, as most cases here hold one. */
const loadHaVipManifest = (text: string) => {
  const [document, ...more] = loadHaVipManifests(text);
  if (document === undefined || more.length > 0) throw new Error(`one document expected, got ${more.length + 1}`);
  return document.result;
};

const pathsOf = (result: ReturnType<typeof loadHaVipManifest>) => (result.ok ? [] : result.issues.map((issue) => issue.path));

describe("loadHaVipManifests", () => {
  it("loads examples/vip.yaml, valid and as the design describes it", async () => {
    const result = loadHaVipManifest(await readFile(exampleUrl, "utf8"));
    expect(result.ok ? [] : result.issues).toEqual([]);
    if (!result.ok) return;
    expect(result.value.metadata.name).toBe("edge");
    expect(result.value.spec.addresses).toEqual(["10.77.0.200/24"]);
    expect(result.value.spec.nodes.selector?.matchLabels).toEqual({ "ha-nginx.io/edge": "true" });
    expect(result.value.spec.healthCheck?.nginxPodSelector?.matchLabels).toEqual({ app: "nginx" });
    expect(result.value.spec.healthCheck?.probe?.httpGet.host).toBe("127.0.0.1");
    expect(weightWarnings(result.value.spec)).toEqual([]);
  });

  it("fills in defaults", () => {
    const result = loadHaVipManifest(manifest("  addresses: [10.77.0.200]\n"));
    expect(result.ok && result.value.spec).toMatchObject({ vrrpVersion: 3, transport: { mode: "Unicast" } });
  });

  it("names the field of a spec error", () => {
    const result = loadHaVipManifest(manifest("  addresses: [10.77.0.200]\n  vrrpVersion: 2\n  advertisementInterval: 150ms\n"));
    expect(pathsOf(result)).toEqual(["spec.advertisementInterval"]);
  });

  it("refuses another apiVersion before looking at the spec", () => {
    const result = loadHaVipManifest(manifest("  addresses: []\n").replace("ha-nginx.io/v1alpha1", "ha-nginx.io/v1beta1"));
    expect(pathsOf(result)).toEqual(["apiVersion"]);
    expect(result.ok ? "" : result.issues[0]?.message).toContain("set apiVersion: ha-nginx.io/v1alpha1");
  });

  it("refuses another kind", () => {
    const result = loadHaVipManifest("apiVersion: ha-nginx.io/v1alpha1\nkind: Service\nmetadata: {name: edge}\n");
    expect(pathsOf(result)).toEqual(["kind"]);
    expect(result.ok ? "" : result.issues[0]?.message).toContain("set kind: HighAvailabilityVIP");
  });

  it("judges each of several documents on its own, numbered from 1", () => {
    const text = [manifest("  addresses: [10.77.0.200]\n"), "kind: Service\n", manifest("  addresses: [10.77.0.202]\n").replace("name: edge", "name: edge-2")].join("---\n");
    const documents = loadHaVipManifests(text);
    expect(documents.map((document) => document.position)).toEqual([1, 2, 3]);
    expect(documents.map((document) => (document.result.ok ? document.result.value.metadata.name : pathsOf(document.result).join()))).toEqual(["edge", "apiVersion,kind", "edge-2"]);
  });

  it.each([
    ["an empty file", "", "at least one"],
    ["a list", "- a\n- b\n", "not a mapping"],
    ["broken YAML", "spec: {addresses: [10.77.0.200\n", "fix the file"],
  ])("reports %s with path \"\"", (_name, text, fix) => {
    const result = loadHaVipManifest(text);
    expect(pathsOf(result)).toEqual([""]);
    expect(result.ok ? "" : result.issues[0]?.message).toContain(fix);
  });
});
