import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { FINALIZE_TIMEOUT_MS, FINALIZER, finalize, type FinalizeContext } from "../../src/controller/finalizer.js";
import type { HavipRef } from "../../src/controller/k8s/cluster.js";
import type { PlannedEvent } from "../../src/controller/plan.js";
import type { RawHavip } from "../../src/controller/reconcile.js";

const deletedAt = Date.parse("2026-11-23T10:00:00Z");

function aDeletedHavip(finalizers: string[] = [FINALIZER, "other.io/keep"]): RawHavip {
  return {
    apiVersion: "ha-nginx.io/v1alpha1",
    kind: "HighAvailabilityVIP",
    metadata: { name: "edge", namespace: "default", uid: "u1", resourceVersion: "7", finalizers, deletionTimestamp: new Date(deletedAt) },
  };
}

function fakeCluster(options: { daemonSetMissing?: boolean; passwordRoleMissing?: boolean } = {}) {
  const calls = { deleted: [] as string[], events: [] as PlannedEvent[], finalizers: [] as (readonly string[])[] };
  const cluster: FinalizeContext["cluster"] = {
    async deleteDaemonSet(namespace, name) {
      calls.deleted.push(`${namespace}/${name}`);
      if (options.daemonSetMissing === true) throw Object.assign(new Error("not found"), { code: 404 });
    },
    async deleteRole(namespace, name) {
      calls.deleted.push(`role ${namespace}/${name}`);
      // No authentication, so never a password Role: the finalizer must take the 404 as done.
      if (options.passwordRoleMissing === true) throw Object.assign(new Error("not found"), { code: 404 });
    },
    async deleteRoleBinding(namespace, name) {
      calls.deleted.push(`rolebinding ${namespace}/${name}`);
      if (options.passwordRoleMissing === true && name.startsWith("ha-nginx-password-")) throw Object.assign(new Error("not found"), { code: 404 });
    },
    async deleteServiceAccount(namespace, name) {
      calls.deleted.push(`serviceaccount ${namespace}/${name}`);
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
const pod = { name: "ha-nginx-agent-edge-x", node: "node-1", isTerminating: true };

describe("the release finalizer", () => {
  it("agent pods still there before the deadline: DaemonSet deleted, finalizer kept, requeue at the deadline", async () => {
    const { cluster, calls } = fakeCluster();
    const outcome = await finalize(aDeletedHavip(), { cluster, logger, pods: () => [pod], now: deletedAt + 5_000 });
    expect(calls.deleted).toEqual(["default/ha-nginx-agent-edge"]);
    expect(calls.finalizers).toEqual([]);
    expect(outcome).toEqual({ kind: "done", requeueAt: deletedAt + FINALIZE_TIMEOUT_MS });
  });

  it("every agent pod gone: only our finalizer is removed, others stay", async () => {
    const { cluster, calls } = fakeCluster({ daemonSetMissing: true });
    const outcome = await finalize(aDeletedHavip(), { cluster, logger, pods: () => [], now: deletedAt + 5_000 });
    expect(calls.deleted).toEqual([
      "default/ha-nginx-agent-edge",
      "rolebinding default/ha-nginx-password-edge",
      "role default/ha-nginx-password-edge",
      "rolebinding default/ha-nginx-agent-edge",
      "serviceaccount default/ha-nginx-agent-edge",
    ]);
    expect(calls.finalizers).toEqual([["other.io/keep"]]);
    expect(calls.events).toEqual([]);
    expect(outcome).toEqual({ kind: "done" });
  });

  it("a resource without authentication has no password Role: its 404s do not stop the release", async () => {
    const { cluster, calls } = fakeCluster({ passwordRoleMissing: true });
    const outcome = await finalize(aDeletedHavip(), { cluster, logger, pods: () => [], now: deletedAt + 5_000 });
    expect(calls.deleted).toContain("serviceaccount default/ha-nginx-agent-edge");
    expect(calls.finalizers).toEqual([["other.io/keep"]]);
    expect(outcome).toEqual({ kind: "done" });
  });

  it("pods left when the wait runs out: a Warning Event naming them, then the finalizer goes anyway", async () => {
    const { cluster, calls } = fakeCluster();
    await finalize(aDeletedHavip(), { cluster, logger, pods: () => [pod], now: deletedAt + FINALIZE_TIMEOUT_MS });
    expect(calls.events).toHaveLength(1);
    expect(calls.events[0]).toMatchObject({ type: "Warning", reason: "ReleaseTimedOut" });
    expect(calls.events[0]?.message).toContain("ha-nginx-agent-edge-x on node-1");
    expect(calls.finalizers).toEqual([["other.io/keep"]]);
  });

  it("our finalizer already removed: nothing to do", async () => {
    const { cluster, calls } = fakeCluster();
    await finalize(aDeletedHavip(["other.io/keep"]), { cluster, logger, pods: () => [pod], now: deletedAt });
    expect(calls).toEqual({ deleted: [], events: [], finalizers: [] });
  });
});
