// Issue 7, crash and restart: the controller is SIGKILLed in the middle of a reconcile, on the real API server, and a
// fresh process must finish the job. The kill is timed by the cluster itself: the test watches for an object the
// controller (or the user) writes and SIGKILLs the controller from the watch callback, at once or a few milliseconds
// later, so it lands between the controller's writes (finalizer, ServiceAccount, RoleBinding, DaemonSet, status; or,
// on deletion, DaemonSet, RoleBinding, ServiceAccount, finalizer). What the controller had done when it died is read
// back and printed, so the log shows which gaps were really hit. Agent pods are created by the real DaemonSet
// controller but not run (an image the test bed refuses), as in controller.test.ts: this file is about the controller.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
  Watch,
  type KubernetesObject,
  type V1DaemonSet,
} from "@kubernetes/client-node";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION } from "../../src/api/v1alpha1/index.js";
import { AGENT_LABEL } from "../../src/controller/agent-objects.js";
import { FINALIZER } from "../../src/controller/finalizer.js";
import { agentObjectName } from "../../src/controller/names.js";
import { APPLIED_HASH_ANNOTATION } from "../../src/controller/reconcile.js";
import { freePort, installControllerAccess, killControllers, spawnController, waitUntilReady, type ControllerProcess as Controller } from "../../src/testbed/controller-process.js";
import { haVipManifest } from "../../src/testbed/havip-bed.js";
import { startTestbed, type Testbed } from "../../src/testbed/testbed.js";
import { waitForValue } from "../support/wait-value.js";

const repo = resolve(import.meta.dirname, "../..");
const ns = "default";
const agentImage = "example.invalid/ha-nginx-agent-stub:0";
// The agent's HTTP port is 9800 + VRID for IPv4 (src/controller/agent-objects.ts): a DaemonSet built for another VRID
// than the status shows would have agents listening where nobody looks.
const agentPortBase = 9800;
const convergeTimeoutMs = 30_000;

interface Havip extends KubernetesObject {
  spec?: { nodes?: { tolerations?: unknown[] } };
  status?: { virtualRouterID?: number; observedGeneration?: number; conditions?: { type: string; status: string }[] };
}

/** A watch event that kills the controller: on `path`, the first event `matches` accepts. */
interface Trigger {
  readonly what: string;
  readonly path: string;
  readonly list: () => Promise<{ metadata?: { resourceVersion?: string } }>;
  readonly matches: (phase: string, object: KubernetesObject) => boolean;
}

function isNotFound(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === 404;
}

/** The object, or undefined when the API server says 404. */
async function getOrUndefined<T>(get: () => Promise<T>): Promise<T | undefined> {
  try {
    return await get();
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

function havipManifest(name: string, address: string): string {
  return haVipManifest(address, { name, namespace: ns, agents: null });
}

describe("e2e: the controller SIGKILLed mid-reconcile", () => {
  let bed: Testbed | undefined;
  let saKubeconfig = "";
  let custom: CustomObjectsApi;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let rbac: RbacAuthorizationV1Api;
  let watcher: Watch;
  let controller: Controller | undefined;
  const controllers: Controller[] = [];
  const scratch = mkdtempSync(join(tmpdir(), "ha-nginx-controller-crash-"));
  const tried: string[] = [];

  const kubectl = async (args: readonly string[], input?: string) => {
    if (bed === undefined) throw new Error("no test bed");
    const result = await bed.kubectl(args, input === undefined ? undefined : { input });
    if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
    return result.stdout;
  };
  const getHavip = (name: string) => getOrUndefined(async () => (await custom.getNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL, namespace: ns, name })) as Havip);
  const getDaemonSet = (name: string) => getOrUndefined(() => apps.readNamespacedDaemonSet({ namespace: ns, name: agentObjectName(name) }));
  const getServiceAccount = (name: string) => getOrUndefined(() => core.readNamespacedServiceAccount({ namespace: ns, name: agentObjectName(name) }));
  const getRoleBinding = (name: string) => getOrUndefined(() => rbac.readNamespacedRoleBinding({ namespace: ns, name: agentObjectName(name) }));
  const agentPods = async (name: string) => (await core.listNamespacedPod({ namespace: ns, labelSelector: `${AGENT_LABEL}=${agentObjectName(name)}` })).items;

  async function startController(): Promise<Controller> {
    const metricsPort = await freePort();
    const started = spawnController({ scratch, logName: `controller-${controllers.length}.log`, env: { KUBECONFIG: saKubeconfig }, agentImage, metricsPort });
    controllers.push(started);
    controller = started;
    await waitUntilReady(started, 60_000);
    return started;
  }

  /**
   * Arms `trigger`, runs `action`, and SIGKILLs the controller `delayMs` after the trigger's event. Returns what the
   * controller had done when it died, read back once it is gone.
   */
  async function killDuring(name: string, trigger: Trigger, delayMs: number, action: () => Promise<void>): Promise<{ firedAfterMs: number; stage: string }> {
    const victim = controller;
    if (victim === undefined) throw new Error("no controller running");
    const list = await trigger.list();
    let actionAt = 0;
    let firedAt = 0;
    let disarm: AbortController | undefined;
    const fired = new Promise<void>((resolveFired, reject) => {
      void watcher
        .watch(trigger.path, { resourceVersion: list.metadata?.resourceVersion }, (phase, object: KubernetesObject) => {
          if (firedAt !== 0 || !trigger.matches(phase, object)) return;
          firedAt = Date.now();
          const kill = (): void => {
            victim.child.kill("SIGKILL");
            resolveFired();
          };
          if (delayMs === 0) kill();
          else setTimeout(kill, delayMs);
        }, (error: unknown) => {
          if (firedAt === 0 && error !== null && error !== undefined && !(error instanceof Error && error.name === "AbortError")) reject(error instanceof Error ? error : new Error(String(error)));
        })
        .then((abort) => { disarm = abort; }, reject);
    });
    // The watch must be open before the action, or the event it waits for could pass unseen.
    await waitForValue(`the watch on ${trigger.path}`, 10_000, async () => disarm, 100);
    actionAt = Date.now();
    await action();
    await Promise.race([fired, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${trigger.what} within 30 s`)), 30_000))]);
    disarm?.abort();
    await victim.exited;
    return { firedAfterMs: firedAt - actionAt, stage: await stageOf(name) };
  }

  /** What exists of `name` and its agent objects, in a compact line for the log. */
  async function stageOf(name: string): Promise<string> {
    const [havip, daemonSet, account, binding, pods] = await Promise.all([getHavip(name), getDaemonSet(name), getServiceAccount(name), getRoleBinding(name), agentPods(name)]);
    const parts = [
      havip === undefined ? "HAVIP gone" : `HAVIP${havip.metadata?.deletionTimestamp === undefined ? "" : " deleting"} finalizer=${havip.metadata?.finalizers?.includes(FINALIZER) === true ? "yes" : "no"}`,
      `status vrid=${havip?.status?.virtualRouterID ?? "-"} observed=${havip?.status?.observedGeneration ?? "-"}/${havip?.metadata?.generation ?? "-"}`,
      `SA=${account === undefined ? "no" : "yes"}`,
      `RB=${binding === undefined ? "no" : "yes"}`,
      `DS=${daemonSet === undefined ? "no" : `gen ${daemonSet.metadata?.generation ?? "?"}${tolerationTag(daemonSet)}`}`,
      `pods=${pods.length}`,
    ];
    return parts.join(", ");
  }

  function tolerationTag(daemonSet: V1DaemonSet): string {
    const tags = (daemonSet.spec?.template.spec?.tolerations ?? []).map((toleration) => toleration.value ?? "");
    return tags.length === 0 ? "" : ` tol ${tags.join("+")}`;
  }

  /** Undefined once `name` is fully reconciled: finalizer, status for this generation, and agent objects owned and in step. */
  async function unconverged(name: string): Promise<string | undefined> {
    const havip = await getHavip(name);
    if (havip === undefined) return "HAVIP missing";
    const uid = havip.metadata?.uid;
    if (havip.metadata?.finalizers?.includes(FINALIZER) !== true) return "no finalizer";
    const vrid = havip.status?.virtualRouterID;
    if (vrid === undefined) return "no VRID in status";
    if (havip.status?.observedGeneration !== havip.metadata?.generation) return `status observed generation ${havip.status?.observedGeneration} of ${havip.metadata?.generation}`;
    if (havip.status?.conditions?.find((condition) => condition.type === "Invalid")?.status !== "False") return "Invalid is not False";
    const [daemonSet, account, binding] = await Promise.all([getDaemonSet(name), getServiceAccount(name), getRoleBinding(name)]);
    for (const [kind, object] of [["DaemonSet", daemonSet], ["ServiceAccount", account], ["RoleBinding", binding]] as const) {
      if (object === undefined) return `no ${kind}`;
      if (object.metadata?.ownerReferences?.[0]?.uid !== uid) return `${kind} not owned by this HAVIP`;
    }
    const port = await agentPort(name);
    if (port !== String(agentPortBase + vrid)) return `DaemonSet port ${port} for VRID ${vrid}`;
    if (daemonSet?.metadata?.annotations?.[APPLIED_HASH_ANNOTATION] === undefined) return "DaemonSet without the applied hash";
    const wanted = JSON.stringify(havip.spec?.nodes?.tolerations ?? []);
    const actual = JSON.stringify(daemonSet?.spec?.template.spec?.tolerations ?? []);
    if (wanted !== actual) return `DaemonSet tolerations ${actual}, spec ${wanted}`;
    return undefined;
  }

  async function restartAndConverge(name: string, isDeleted: boolean): Promise<number> {
    const restartedAt = Date.now();
    await startController();
    let last: string | undefined;
    try {
      await waitForValue(isDeleted ? `${name} to be released` : `${name} to converge`, convergeTimeoutMs, async () => {
        last = isDeleted ? ((await getHavip(name)) === undefined ? undefined : "HAVIP still there") : await unconverged(name);
        return last === undefined ? true : undefined;
      }, 100);
    } catch (error) {
      throw new Error(`${String(error)}; last: ${last}; now: ${await stageOf(name)}; controller log: ${readFileSync(controller?.logFile ?? "", "utf8").slice(-3000)}`);
    }
    return Date.now() - restartedAt;
  }

  async function agentPort(name: string): Promise<string | undefined> {
    const args = (await getDaemonSet(name))?.spec?.template.spec?.containers[0]?.args ?? [];
    return args[args.indexOf("--http-port") + 1];
  }

  /** Nothing of `name` left: no DaemonSet, pods, ServiceAccount, RoleBinding or Role carrying its agent label. */
  async function leftovers(name: string): Promise<string> {
    return (await kubectl(["get", "daemonsets,pods,serviceaccounts,rolebindings,roles", "-n", ns, "-l", `${AGENT_LABEL}=${agentObjectName(name)}`, "-o", "name"])).trim();
  }

  const havipPath = `/apis/${HAVIP_GROUP}/${HAVIP_VERSION}/namespaces/${ns}/${HAVIP_PLURAL}`;
  const listHavips = () => custom.listNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL, namespace: ns }) as Promise<{ metadata?: { resourceVersion?: string } }>;
  const named = (name: string) => (object: KubernetesObject) => object.metadata?.name === name;
  const on = {
    finalizerAdded: (name: string): Trigger => ({
      what: "finalizer added (the controller's first write)",
      path: havipPath,
      list: listHavips,
      matches: (phase, object) => phase === "MODIFIED" && named(name)(object) && object.metadata?.finalizers?.includes(FINALIZER) === true,
    }),
    accountApplied: (name: string): Trigger => ({
      what: "ServiceAccount applied",
      path: `/api/v1/namespaces/${ns}/serviceaccounts`,
      list: () => core.listNamespacedServiceAccount({ namespace: ns }),
      matches: (phase, object) => phase === "ADDED" && named(agentObjectName(name))(object),
    }),
    bindingApplied: (name: string): Trigger => ({
      what: "RoleBinding applied",
      path: `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
      list: () => rbac.listNamespacedRoleBinding({ namespace: ns }),
      matches: (phase, object) => phase === "ADDED" && named(agentObjectName(name))(object),
    }),
    daemonSetWritten: (name: string, phase: "ADDED" | "MODIFIED" | "DELETED"): Trigger => ({
      what: `DaemonSet ${phase.toLowerCase()}`,
      path: `/apis/apps/v1/namespaces/${ns}/daemonsets`,
      list: () => apps.listNamespacedDaemonSet({ namespace: ns }),
      // MODIFIED: only a template change (a new generation), not the DaemonSet controller's status updates.
      matches: (eventPhase, object) => eventPhase === phase && named(agentObjectName(name))(object) &&
        (phase !== "MODIFIED" || ((object as V1DaemonSet).metadata?.generation !== 1 && (object as V1DaemonSet).status?.observedGeneration !== (object as V1DaemonSet).metadata?.generation)),
    }),
    specChanged: (name: string): Trigger => ({
      what: "spec change accepted by the API server",
      path: havipPath,
      list: listHavips,
      matches: (phase, object) => phase === "MODIFIED" && named(name)(object) && (object as Havip).status?.observedGeneration !== object.metadata?.generation,
    }),
    deletionStarted: (name: string): Trigger => ({
      what: "deletionTimestamp set (kubectl delete)",
      path: havipPath,
      list: listHavips,
      matches: (phase, object) => phase === "MODIFIED" && named(name)(object) && object.metadata?.deletionTimestamp !== undefined,
    }),
    bindingDeleted: (name: string): Trigger => ({
      what: "RoleBinding deleted (pods gone, finalizer about to go)",
      path: `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
      list: () => rbac.listNamespacedRoleBinding({ namespace: ns }),
      matches: (phase, object) => phase === "DELETED" && named(agentObjectName(name))(object),
    }),
    accountDeleted: (name: string): Trigger => ({
      what: "ServiceAccount deleted (the write before the finalizer's removal)",
      path: `/api/v1/namespaces/${ns}/serviceaccounts`,
      list: () => core.listNamespacedServiceAccount({ namespace: ns }),
      matches: (phase, object) => phase === "DELETED" && named(agentObjectName(name))(object),
    }),
  };

  beforeAll(async () => {
    if (!existsSync(join(repo, "dist/controller/main.js"))) throw new Error("dist/ lacks the controller; run `npm run build` first");
    bed = await startTestbed({ nodes: 2 });
    saKubeconfig = await installControllerAccess(bed);
    const kc = new KubeConfig();
    kc.loadFromFile(bed.kubeconfig);
    custom = kc.makeApiClient(CustomObjectsApi);
    apps = kc.makeApiClient(AppsV1Api);
    core = kc.makeApiClient(CoreV1Api);
    rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    watcher = new Watch(kc);
    await startController();
  }, 240_000);

  afterAll(async () => {
    await killControllers(controllers);
    await bed?.stop();
    rmSync(scratch, { recursive: true, force: true });
    process.stdout.write(`[controller crash] ${tried.length} SIGKILLs mid-reconcile:\n${tried.map((line) => `  ${line}`).join("\n")}\n`);
  }, 120_000);

  // Each lifecycle creates, changes and deletes one HAVIP with a kill in each phase; the triggers and delays rotate
  // so that the kills land at different writes.
  const lifecycles = [
    { create: on.finalizerAdded, createDelayMs: 0, change: (name: string) => on.specChanged(name), changeDelayMs: 0, remove: on.deletionStarted, removeDelayMs: 0 },
    { create: on.accountApplied, createDelayMs: 0, change: (name: string) => on.daemonSetWritten(name, "MODIFIED"), changeDelayMs: 0, remove: (name: string) => on.daemonSetWritten(name, "DELETED"), removeDelayMs: 0 },
    { create: on.bindingApplied, createDelayMs: 0, change: (name: string) => on.specChanged(name), changeDelayMs: 30, remove: on.bindingDeleted, removeDelayMs: 0 },
    { create: (name: string) => on.daemonSetWritten(name, "ADDED"), createDelayMs: 0, change: (name: string) => on.specChanged(name), changeDelayMs: 80, remove: on.accountDeleted, removeDelayMs: 0 },
    { create: on.finalizerAdded, createDelayMs: 15, change: (name: string) => on.daemonSetWritten(name, "MODIFIED"), changeDelayMs: 5, remove: on.deletionStarted, removeDelayMs: 40 },
  ];

  it.each(lifecycles.map((lifecycle, index) => [index + 1, lifecycle] as const))("lifecycle %i: killed while creating, while changing the spec and while deleting, it converges and leaves nothing", async (index, lifecycle) => {
    const name = `crash-${index}`;
    const address = `10.77.0.${210 + index}`;
    const record = async (phase: string, trigger: Trigger, delayMs: number, action: () => Promise<void>, isDeleted: boolean): Promise<void> => {
      const { firedAfterMs, stage } = await killDuring(name, trigger, delayMs, action);
      const convergedMs = await restartAndConverge(name, isDeleted);
      tried.push(`${name} ${phase}: on ${trigger.what} +${delayMs} ms (${firedAfterMs} ms after the action) -> at death: ${stage}; restarted and ${isDeleted ? "released" : "converged"} in ${convergedMs} ms`);
    };

    await record("create", lifecycle.create(name), lifecycle.createDelayMs, async () => {
      await kubectl(["apply", "-f", "-"], havipManifest(name, address));
    }, false);
    const ownerUid = (await getHavip(name))?.metadata?.uid;

    const toleration = JSON.stringify({ spec: { nodes: { tolerations: [{ key: "crash-test", operator: "Equal", value: `v${index}`, effect: "NoSchedule" }] } } });
    await record("spec change", lifecycle.change(name), lifecycle.changeDelayMs, async () => {
      await kubectl(["patch", "havip", name, "-n", ns, "--type=merge", "-p", toleration]);
    }, false);
    expect(tolerationTag((await getDaemonSet(name)) ?? {})).toBe(` tol v${index}`);

    await record("delete", lifecycle.remove(name), lifecycle.removeDelayMs, async () => {
      await kubectl(["delete", "havip", name, "-n", ns, "--wait=false"]);
    }, true);
    // The finalizer deletes what it owns before it lets go, so nothing is left the moment the HAVIP is gone; the
    // garbage collector, which would tidy up later, has not had to.
    expect(await leftovers(name)).toBe("");
    // And nothing comes back: a restarted controller that re-applied from a stale view would show here.
    await new Promise((resolveWait) => setTimeout(resolveWait, 2_000));
    expect(await leftovers(name)).toBe("");
    const owned = (await apps.listNamespacedDaemonSet({ namespace: ns })).items.filter((daemonSet) => daemonSet.metadata?.ownerReferences?.some((reference) => reference.uid === ownerUid));
    expect(owned).toEqual([]);
  }, 150_000);

  it("two HAVIPs applied together, killed as the first DaemonSet appears: each keeps a VRID of its own, and its DaemonSet matches it", async () => {
    const names = ["pair-a", "pair-b"];
    const trigger: Trigger = {
      what: "the first of two DaemonSets added",
      path: `/apis/apps/v1/namespaces/${ns}/daemonsets`,
      list: () => apps.listNamespacedDaemonSet({ namespace: ns }),
      matches: (phase, object) => phase === "ADDED" && names.some((name) => object.metadata?.name === agentObjectName(name)),
    };
    const { firedAfterMs } = await killDuring(names[0] ?? "", trigger, 0, async () => {
      await kubectl(["apply", "-f", "-"], names.map((name, i) => havipManifest(name, `10.77.0.${230 + i}`)).join("---\n"));
    });
    const stages = await Promise.all(names.map(async (name) => `${name}: ${await stageOf(name)}`));
    const portsAtDeath = await Promise.all(names.map(agentPort));
    const convergedMs = await restartAndConverge(names[0] ?? "", false);
    await waitForValue("pair-b to converge", convergeTimeoutMs, async () => ((await unconverged(names[1] ?? "")) === undefined ? true : undefined), 100);
    // A DaemonSet written before the crash whose VRID the restarted controller gave away is rewritten (its agents
    // roll): legal, since unconverged() checked port and VRID agree, but worth seeing.
    const ports = await Promise.all(names.map(agentPort));
    tried.push(`pair: on ${trigger.what} +0 ms (${firedAfterMs} ms after the apply) -> at death: ${stages.join("; ")}; restarted and converged in ${convergedMs} ms; ` +
      `agent ports at death ${JSON.stringify(portsAtDeath)}, after ${JSON.stringify(ports)}`);
    const vrids = await Promise.all(names.map(async (name) => (await getHavip(name))?.status?.virtualRouterID));
    expect(new Set(vrids).size).toBe(2);
    await kubectl(["delete", "havip", ...names, "-n", ns, "--wait=true", "--timeout=60s"]);
    for (const name of names) expect(await leftovers(name)).toBe("");
  }, 120_000);
});
