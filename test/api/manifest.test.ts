import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { loadHaVipManifest, weightWarnings } from "../../src/api/v1alpha1/index.js";

const exampleUrl = new URL("../../examples/vip.yaml", import.meta.url);

const manifest = (spec: string) => `apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata:
  name: edge
spec:
${spec}`;

const pathsOf = (result: ReturnType<typeof loadHaVipManifest>) => (result.ok ? [] : result.issues.map((issue) => issue.path));

describe("loadHaVipManifest", () => {
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
    expect(result.ok && result.value.spec).toMatchObject({ vrrpVersion: 3, advertisementInterval: "1s", transport: { mode: "Unicast" } });
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

  it.each([
    ["an empty file", "", "exactly one"],
    ["two documents", `${manifest("  addresses: [10.77.0.200]\n")}---\n${manifest("  addresses: [10.77.0.201]\n")}`, "exactly one"],
    ["a list", "- a\n- b\n", "not a mapping"],
    ["broken YAML", "spec: {addresses: [10.77.0.200\n", "fix the file"],
  ])("reports %s with path \"\"", (_name, text, fix) => {
    const result = loadHaVipManifest(text);
    expect(pathsOf(result)).toEqual([""]);
    expect(result.ok ? "" : result.issues[0]?.message).toContain(fix);
  });
});
