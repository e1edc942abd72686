import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { FINALIZE_TIMEOUT_MS, FINALIZER, finalize, type FinalizeContext } from "../../src/controller/finalizer.js";
import type { HavipRef, UncheckedHavip } from "../../src/controller/k8s/cluster.js";
import type { PlannedEvent } from "../../src/controller/plan.js";

const deletedAt = Date.parse("2026-11-23T10:00:00Z");

function aDeletedHavip(options: { finalizers?: string[]; entries?: { node: string; state: string }[] } = {}): UncheckedHavip {
  return {
    apiVersion: "ha-nginx.io/v1alpha1",
    kind: "HighAvailabilityVIP",
    metadata: { name: "edge", namespace: "default", uid: "u1", resourceVersion: "7", finalizers: options.finalizers ?? [FINALIZER, "other.io/keep"], deletionTimestamp: new Date(deletedAt) },
    status: { nodes: (options.entries ?? []).map((entry) => ({ ...entry, healthy: true })) },
  };
}

function fakeCluster(options: { passwordRoleMissing?: boolean } = {}) {
  const calls = { deleted: [] as string[], events: [] as PlannedEvent[], finalizers: [] as (readonly string[])[] };
  const cluster: FinalizeContext["cluster"] = {
    async deleteRole(namespace: string, name: string) {
      calls.deleted.push(`role ${namespace}/${name}`);
      // No authentication, so never a password Role: the finalizer must take the 404 as done.
      if (options.passwordRoleMissing === true) throw Object.assign(new Error("not found"), { code: 404 });
    },
    async deleteRoleBinding(namespace: string, name: string) {
      calls.deleted.push(`rolebinding ${namespace}/${name}`);
      if (options.passwordRoleMissing === true) throw Object.assign(new Error("not found"), { code: 404 });
    },
    async emit(_ref: HavipRef, event: PlannedEvent) {
      calls.events.push(event);
    },
    async setFinalizers(_ref: HavipRef, finalizers: readonly string[]) {
      calls.finalizers.push(finalizers);
      return {};
    },
  };
  return { cluster, calls };
}

const logger = pino({ level: "silent" });
const agentOn = (node: string, isTerminating = false) => ({ name: `ha-nginx-agent-${node}`, node, isTerminating });
const agents = () => [agentOn("node-1"), agentOn("node-2")];

describe("the release finalizer", () => {
  it("a running agent still MASTER or BACKUP before the deadline: nothing deleted, finalizer kept, requeue at the deadline", async () => {
    const { cluster, calls } = fakeCluster();
    const serving = aDeletedHavip({ entries: [{ node: "node-1", state: "MASTER" }, { node: "node-2", state: "INIT" }] });
    const outcome = await finalize(serving, { cluster, logger, pods: agents, now: deletedAt + 5_000 });
    expect(calls).toEqual({ deleted: [], events: [], finalizers: [] });
    expect(outcome).toEqual({ kind: "done", requeueAt: deletedAt + FINALIZE_TIMEOUT_MS });
  });

  it("every running agent has stopped its router (INIT): the password access goes, then only our finalizer", async () => {
    const { cluster, calls } = fakeCluster();
    const released = aDeletedHavip({ entries: [{ node: "node-1", state: "INIT" }, { node: "node-2", state: "INIT" }] });
    const outcome = await finalize(released, { cluster, logger, pods: agents, now: deletedAt + 5_000 });
    expect(calls.deleted).toEqual(["rolebinding default/ha-nginx-password-edge", "role default/ha-nginx-password-edge"]);
    expect(calls.finalizers).toEqual([["other.io/keep"]]);
    expect(calls.events).toEqual([]);
    expect(outcome).toEqual({ kind: "done" });
  });

  it("an entry whose node has no running agent cannot be released, and does not hold the resource", async () => {
    const { cluster, calls } = fakeCluster();
    const stale = aDeletedHavip({ entries: [{ node: "node-3", state: "MASTER" }, { node: "node-1", state: "BACKUP" }] });
    await finalize(stale, { cluster, logger, pods: () => [agentOn("node-1", true), agentOn("node-2")], now: deletedAt + 5_000 });
    expect(calls.finalizers).toEqual([["other.io/keep"]]);
  });

  it("a resource without authentication has no password Role: its 404s do not stop the release", async () => {
    const { cluster, calls } = fakeCluster({ passwordRoleMissing: true });
    const outcome = await finalize(aDeletedHavip(), { cluster, logger, pods: agents, now: deletedAt + 5_000 });
    expect(calls.finalizers).toEqual([["other.io/keep"]]);
    expect(outcome).toEqual({ kind: "done" });
  });

  it("agents still serving when the wait runs out: a Warning Event naming them, then the finalizer goes anyway", async () => {
    const { cluster, calls } = fakeCluster();
    const serving = aDeletedHavip({ entries: [{ node: "node-1", state: "MASTER" }] });
    await finalize(serving, { cluster, logger, pods: agents, now: deletedAt + FINALIZE_TIMEOUT_MS });
    expect(calls.events).toHaveLength(1);
    expect(calls.events[0]).toMatchObject({ type: "Warning", reason: "ReleaseTimedOut" });
    expect(calls.events[0]?.message).toContain("node-1 (MASTER)");
    expect(calls.finalizers).toEqual([["other.io/keep"]]);
  });

  it("our finalizer already removed: nothing to do", async () => {
    const { cluster, calls } = fakeCluster();
    await finalize(aDeletedHavip({ finalizers: ["other.io/keep"], entries: [{ node: "node-1", state: "MASTER" }] }), { cluster, logger, pods: agents, now: deletedAt });
    expect(calls).toEqual({ deleted: [], events: [], finalizers: [] });
  });
});
