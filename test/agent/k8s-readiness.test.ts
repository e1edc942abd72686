import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { combineHealth, cordonReadiness, nodeReadiness } from "../../src/agent/k8s/readiness.js";

function aPod(name: string, options: { isReady?: boolean; isTerminating?: boolean } = {}): V1Pod {
  return {
    metadata: { name, ...(options.isTerminating ? { deletionTimestamp: new Date("2026-11-23T10:00:00Z") } : {}) },
    status: { conditions: [{ type: "Ready", status: options.isReady === false ? "False" : "True" }] },
  };
}

describe("nginx readiness on the node", () => {
  it("no pod on the node: unhealthy", () => {
    expect(nodeReadiness([])).toEqual({ isHealthy: false, detail: "no nginx pod on this node" });
  });

  it("one Ready pod: healthy", () => {
    expect(nodeReadiness([aPod("web-a")])).toEqual({ isHealthy: true, detail: "nginx pod web-a is Ready" });
  });

  it("a Ready pod with a deletionTimestamp (planned move) is unhealthy at once", () => {
    const readiness = nodeReadiness([aPod("web-a", { isTerminating: true })]);
    expect(readiness.isHealthy).toBe(false);
    expect(readiness.detail).toBe("nginx pod web-a is terminating");
  });

  it("a terminating pod next to a Ready replacement: healthy", () => {
    expect(nodeReadiness([aPod("old", { isTerminating: true }), aPod("new")]).isHealthy).toBe(true);
  });

  it("pods that are not Ready: unhealthy", () => {
    const readiness = nodeReadiness([aPod("web-a", { isReady: false }), aPod("web-b", { isReady: false })]);
    expect(readiness.isHealthy).toBe(false);
    expect(readiness.detail).toContain("2 not Ready");
  });

  it("a pod without conditions (just scheduled) is not Ready", () => {
    expect(nodeReadiness([{ metadata: { name: "fresh" } }]).isHealthy).toBe(false);
  });
});

describe("combining pod readiness with the local probe", () => {
  const up = { isHealthy: true, detail: "up" };
  const down = { isHealthy: false, detail: "down" };

  it.each([
    ["both pass", up, up, true],
    ["pods fail, probe passes", down, up, false],
    ["pods pass, probe fails", up, down, false],
    ["only pods configured, passing", up, undefined, true],
    ["only probe configured, failing", undefined, down, false],
    ["nothing configured", undefined, undefined, true],
  ] as const)("%s", (_name, pods, probe, isHealthy) => {
    expect(combineHealth(pods, probe).isHealthy).toBe(isHealthy);
  });

  it("reports the failing check's detail", () => {
    expect(combineHealth(up, { isHealthy: false, detail: "local probe fails" }).detail).toBe("local probe fails");
  });
});

describe("a cordoned node (kubectl cordon or drain)", () => {
  it("is unhealthy, whatever nginx says, and says how to rejoin", () => {
    const cordon = cordonReadiness(["node-2"], "node-2");
    const verdict = combineHealth(cordon, { isHealthy: true, detail: "nginx Ready" }, { isHealthy: true, detail: "probe passes" });
    expect(verdict.isHealthy).toBe(false);
    expect(verdict.detail).toMatch(/cordoned.*uncordon/);
  });

  it("another node's cordon leaves this one alone", () => {
    expect(cordonReadiness(["node-1"], "node-2")).toBeUndefined();
  });
});
