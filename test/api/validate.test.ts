import { describe, expect, it } from "vitest";
import {
  DEFAULT_PRIORITY,
  formatIssues,
  priorityOf,
  addressFamilyOf,
  validateHaVip,
  validateHaVipSpec,
  type HaVipSpec,
} from "../../src/api/v1alpha1/index.js";
import { invalidSpecCases, validSpecCases } from "./havip-cases.js";

const resource = (spec: unknown) => ({
  apiVersion: "ha-nginx.io/v1alpha1",
  kind: "HighAvailabilityVIP",
  metadata: { name: "edge", namespace: "default" },
  spec,
});

describe("validateHaVip accepts", () => {
  it.each(validSpecCases)("$name", ({ spec }) => {
    const result = validateHaVip(resource(spec));
    expect(result.ok ? [] : result.issues).toEqual([]);
  });
});

describe("validateHaVip rejects, naming the field and the fix", () => {
  it.each(invalidSpecCases)("$name → $path", ({ spec, path, fix }) => {
    const result = validateHaVip(resource(spec));
    expect(result.ok).toBe(false);
    const issues = result.ok ? [] : result.issues;
    const atPath = issues.filter((issue) => issue.path === path);
    expect(atPath, `issues were ${JSON.stringify(issues)}`).not.toHaveLength(0);
    expect(atPath.some((issue) => issue.message.includes(fix)), `messages were ${JSON.stringify(atPath)}`).toBe(true);
  });
});

describe("defaults", () => {
  it("fills every default of the design into a minimal spec", () => {
    const result = validateHaVipSpec({ addresses: ["10.77.0.200/24"] });
    const expected: HaVipSpec = {
      addresses: ["10.77.0.200/24"],
      vrrpVersion: 3,
      preemption: { mode: "Always" },
      nodes: { tolerations: [], priorities: [] },
      transport: { mode: "Unicast", peers: [], successorNaming: "Enabled" },
      garp: { repeat: 5, refresh: "0s" },
    };
    expect(result).toEqual({ ok: true, value: expected });
  });

  it("fills the probe's and the health check's defaults", () => {
    const result = validateHaVipSpec({
      addresses: ["10.77.0.200"],
      healthCheck: { probe: { httpGet: { path: "/healthz", port: 80 } } },
    });
    expect(result.ok && result.value.healthCheck).toEqual({
      probe: {
        httpGet: { path: "/healthz", port: 80, host: "127.0.0.1" },
        period: "200ms",
        timeout: "100ms",
        failureThreshold: 2,
        successThreshold: 1,
      },
      weight: 0,
    });
  });

  it("keeps values that are set", () => {
    const result = validateHaVipSpec({ addresses: ["10.77.0.200"], garp: { repeat: 3 }, preemption: { mode: "Never" } });
    expect(result.ok && [result.value.garp, result.value.preemption]).toEqual([{ repeat: 3, refresh: "0s" }, { mode: "Never" }]);
  });
});

describe("whole resource", () => {
  it("rejects a wrong apiVersion and kind by name", () => {
    const result = validateHaVip({ ...resource({ addresses: ["10.77.0.200"] }), apiVersion: "v1", kind: "Service" });
    expect(result.ok ? [] : result.issues.map((issue) => issue.path)).toEqual(["apiVersion", "kind"]);
  });

  it("requires metadata.name", () => {
    const result = validateHaVip({ ...resource({ addresses: ["10.77.0.200"] }), metadata: {} });
    expect(result.ok ? [] : result.issues.map((issue) => [issue.path, issue.message.includes("add it")])).toEqual([["metadata.name", true]]);
  });

  it("keeps metadata it does not know and accepts a status written by the controller and agents", () => {
    const object = {
      ...resource({ addresses: ["10.77.0.200"] }),
      metadata: { name: "edge", uid: "1234", generation: 4, creationTimestamp: "2026-11-23T10:00:00Z" },
      status: {
        observedGeneration: 4,
        virtualRouterID: 51,
        master: "edge-1",
        nodes: [
          {
            node: "edge-1",
            state: "MASTER",
            priority: 150,
            effectivePriority: 150,
            healthy: true,
            reason: "master down timer expired",
            address: "10.77.0.11",
            lastTransitionTime: "2026-11-23T10:00:00Z",
          },
        ],
        conditions: [
          { type: "Ready", status: "True", reason: "MasterElected", message: "edge-1 holds 10.77.0.200", lastTransitionTime: "2026-11-23T10:00:00Z" },
        ],
      },
    };
    const result = validateHaVip(object);
    expect(result.ok && result.value.metadata["creationTimestamp"]).toBe("2026-11-23T10:00:00Z");
    expect(result.ok && result.value.status?.nodes?.[0]?.state).toBe("MASTER");
  });

  it("rejects a node state that is not one of the five", () => {
    const result = validateHaVip({ ...resource({ addresses: ["10.77.0.200"] }), status: { nodes: [{ node: "a", state: "STANDBY" }] } });
    expect(result.ok ? [] : result.issues.map((issue) => issue.path)).toEqual(["status.nodes[0].state"]);
  });

  it("reports every misspelt field under its own path", () => {
    const result = validateHaVipSpec({ addresses: ["10.77.0.200"], garp: { repaet: 3, refrsh: "1s" } });
    expect(result.ok ? [] : result.issues.map((issue) => issue.path)).toEqual(["spec.garp.repaet", "spec.garp.refrsh"]);
  });

  it("never throws on junk", () => {
    for (const junk of [null, 42, "spec", [], { spec: null }, resource(null), resource([1])]) {
      expect(validateHaVip(junk).ok).toBe(false);
    }
  });
});

describe("formatIssues", () => {
  it("writes path: message pairs for a condition message", () => {
    const result = validateHaVipSpec({ addresses: ["10.77.0.200"], virtualRouterID: 0 });
    expect(result.ok ? "" : formatIssues(result.issues)).toMatch(/^spec\.virtualRouterID: 0 is out of range; use 1\.\.255/);
  });

  it("the VRRPv2 interval message reads as designed", () => {
    const result = validateHaVipSpec({ addresses: ["10.77.0.200"], vrrpVersion: 2, advertisementInterval: "150ms" });
    expect(result.ok ? "" : formatIssues(result.issues)).toBe(
      'spec.advertisementInterval: "150ms" is not a whole number of seconds; VRRPv2 advertises in seconds (use 1s..255s, or vrrpVersion: 3)',
    );
  });
});

describe("helpers on a validated spec", () => {
  const spec = validateHaVipSpec({
    addresses: ["2001:db8::10/64"],
    nodes: { priorities: [{ node: "edge-1", priority: 150 }] },
  });

  it("priorityOf reads the list and falls back to the default", () => {
    expect(spec.ok && [priorityOf(spec.value, "edge-1"), priorityOf(spec.value, "edge-9")]).toEqual([150, DEFAULT_PRIORITY]);
  });

  it("addressFamilyOf tells IPv6 from IPv4", () => {
    expect(spec.ok && addressFamilyOf(spec.value)).toBe("ipv6");
  });
});
