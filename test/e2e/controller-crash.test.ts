// Issue 7, crash and restart: the controller is SIGKILLed in the middle of its work, on the real API server, and a
// fresh process must finish the job. The kill is timed by the cluster itself: the test watches for an object the
// controller (or the user) writes and SIGKILLs the controller from the watch callback, at once or a few milliseconds
// later. Creating a resource, it writes the finalizer, the password Role and RoleBinding, the status, and (under its
// own work-queue key) the one agent DaemonSet in ha-nginx-system; a spec change rewrites the status and the
// DaemonSet's placement; deleting, it deletes the RoleBinding and Role, removes the finalizer, and deletes the
// DaemonSet once no resource is left. What the controller had done when it died, and what it still had to write, is
// read back and printed. A kill at once on an event that the controller writes more after in the same reconcile must
// find work left: that is asserted, so those kills provably land between its writes. The timed kills (+5..+80 ms) and
// those on the DaemonSet (its own work-queue key, not ordered against the status write) may land after the phase's
// last write; the log says which. Agent pods are created by the real DaemonSet controller but not run (an image the
// test bed refuses), as in controller.test.ts: this file is about the controller.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
  Watch,
  type KubernetesObject,
  type V1DaemonSet,
  type V1NodeSelectorTerm,
  type V1Pod,
} from "@kubernetes/client-node";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION } from "../../src/api/v1alpha1/index.js";
import { matchesSelector } from "../../src/api/v1alpha1/selector.js";
import { AGENT_LABEL, AGENT_NAME, AGENT_REVISION_ANNOTATION } from "../../src/controller/agent-objects.js";
import { FINALIZER } from "../../src/controller/finalizer.js";
import { passwordAccessName } from "../../src/controller/names.js";
import { APPLIED_HASH_ANNOTATION } from "../../src/controller/reconcile.js";
import { freePort, havipSystemNamespace as system, installControllerAccess, killControllers, spawnController, waitUntilReady, type ControllerProcess as Controller } from "../../testing/testbed/controller-process.js";
import { haVipManifest } from "../../testing/testbed/havip-bed.js";
import { startTestbed, type Testbed } from "../../testing/testbed/testbed.js";
import { waitForValue } from "../support/wait-value.js";

const repo = resolve(import.meta.dirname, "../..");
const ns = "default";
const agentImage = "example.invalid/ha-nginx-agent-stub:0";
// Named by every resource here, so each gets a password Role and RoleBinding. The Secret itself need not exist: the
// controller never reads it, and no agent runs.
const passwordSecret = "crash-password";
const hostnameLabel = "kubernetes.io/hostname";
const convergeTimeoutMs = 30_000;

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: "In" | "NotIn" | "Exists" | "DoesNotExist"; values?: string[] }[];
}

interface Havip extends KubernetesObject {
  spec?: { nodes?: { selector?: Selector; tolerations?: unknown[] } };
  status?: { virtualRouterID?: number; observedGeneration?: number; conditions?: { type: string; status: string }[] };
}

/** A watch event that kills the controller: on `path`, the first event `matches` accepts. */
interface Trigger {
  readonly what: string;
  /** The controller writes more after this event in the same reconcile, so a kill at once leaves work undone. */
  readonly isFollowedByWrites: boolean;
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

/** A resource with a VRRPv2 password, its agents on `node` only. */
function havipManifest(name: string, address: string, node: string): string {
  return `${haVipManifest(address, { name, namespace: ns, agents: null })}  vrrpVersion: 2
  authentication:
    passwordSecretRef: { name: ${passwordSecret}, key: password }
  nodes:
    selector: { matchLabels: { "${hostnameLabel}": ${node} } }
`;
}

/** Order-free JSON: key order and the order of list items do not change what a term or a toleration means. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).sort().join(",")}]`;
  if (typeof value !== "object" || value === null) return JSON.stringify(value);
  const entries = Object.entries(value).filter(([, item]) => item !== undefined && item !== null).sort(([a], [b]) => (a < b ? -1 : 1));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(",")}}`;
}

/** The distinct items of `items`, order-free, as one string. */
function setOf(items: readonly unknown[]): string {
  return [...new Set(items.map(canonical))].sort().join(",");
}

/** The node affinity term that places agents where `selector` selects, as the API documents the two forms. */
function termOf(selector: Selector): V1NodeSelectorTerm {
  return {
    matchExpressions: [
      ...Object.entries(selector.matchLabels ?? {}).map(([key, value]) => ({ key, operator: "In", values: [value] })),
      ...(selector.matchExpressions ?? []),
    ],
  };
}

const isTerminating = (pod: V1Pod): boolean => pod.metadata?.deletionTimestamp !== undefined;

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
  const listHavipItems = async () => ((await custom.listNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL, namespace: ns })) as { items: Havip[] }).items;
  const getDaemonSet = () => getOrUndefined(() => apps.readNamespacedDaemonSet({ namespace: system, name: AGENT_NAME }));
  const getRole = (name: string) => getOrUndefined(() => rbac.readNamespacedRole({ namespace: ns, name: passwordAccessName(name) }));
  const getRoleBinding = (name: string) => getOrUndefined(() => rbac.readNamespacedRoleBinding({ namespace: ns, name: passwordAccessName(name) }));
  /** The agent pods the DaemonSet controller has made and not yet been told to remove. */
  const agentPods = async () => (await core.listNamespacedPod({ namespace: system, labelSelector: `${AGENT_LABEL}=${AGENT_NAME}` })).items.filter((pod) => !isTerminating(pod));

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

  /** What exists of `name`, its password access and the agent DaemonSet, in a compact line for the log. */
  async function stageOf(name: string): Promise<string> {
    const [havip, role, binding, daemonSet, pods] = await Promise.all([getHavip(name), getRole(name), getRoleBinding(name), getDaemonSet(), agentPods()]);
    const parts = [
      havip === undefined ? "HAVIP gone" : `HAVIP${havip.metadata?.deletionTimestamp === undefined ? "" : " deleting"} finalizer=${havip.metadata?.finalizers?.includes(FINALIZER) === true ? "yes" : "no"}`,
      `status vrid=${havip?.status?.virtualRouterID ?? "-"} observed=${havip?.status?.observedGeneration ?? "-"}/${havip?.metadata?.generation ?? "-"}`,
      `Role=${role === undefined ? "no" : "yes"}`,
      `RB=${binding === undefined ? "no" : "yes"}`,
      `DS=${daemonSet === undefined ? "no" : `gen ${daemonSet.metadata?.generation ?? "?"} terms ${termsOf(daemonSet)?.length ?? "all"}${tolerationTag(daemonSet)}`}`,
      `pods=${pods.map((pod) => pod.spec?.nodeName ?? "?").sort().join("+") || "none"}`,
    ];
    return parts.join(", ");
  }

  function termsOf(daemonSet: V1DaemonSet): V1NodeSelectorTerm[] | undefined {
    return daemonSet.spec?.template.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  }

  function tolerationTag(daemonSet: V1DaemonSet): string {
    const tags = (daemonSet.spec?.template.spec?.tolerations ?? []).map((toleration) => toleration.value ?? "");
    return tags.length === 0 ? "" : ` tol ${tags.join("+")}`;
  }

  /**
   * Undefined once the agent DaemonSet serves exactly the resources there are: one affinity term per distinct selector
   * and the union of their tolerations, and agent pods, all on the DaemonSet's current agent revision, on exactly the
   * nodes some resource selects.
   */
  async function agentsUnconverged(shouldCheckPods = true): Promise<string | undefined> {
    const [havips, daemonSet, pods, nodes] = await Promise.all([listHavipItems(), getDaemonSet(), agentPods(), core.listNode()]);
    if (havips.length === 0) return daemonSet === undefined ? undefined : "a DaemonSet with no resource left";
    if (daemonSet === undefined) return "no DaemonSet";
    if (daemonSet.metadata?.annotations?.[APPLIED_HASH_ANNOTATION] === undefined) return "DaemonSet without the applied hash";
    const selectors = havips.map((havip) => havip.spec?.nodes?.selector);
    // A resource without a selector runs on every node, and so must the agents: no affinity at all.
    const selectsAll = selectors.some((selector) => selector === undefined || termOf(selector).matchExpressions?.length === 0);
    const wantedTerms = selectsAll ? undefined : setOf(selectors.map((selector) => termOf(selector ?? {})));
    const terms = termsOf(daemonSet);
    const actualTerms = terms === undefined ? undefined : setOf(terms);
    if (actualTerms !== wantedTerms) return `DaemonSet terms ${actualTerms ?? "(every node)"}, resources' ${wantedTerms ?? "(every node)"}`;
    const wantedTolerations = setOf(havips.flatMap((havip) => havip.spec?.nodes?.tolerations ?? []));
    const actualTolerations = setOf(daemonSet.spec?.template.spec?.tolerations ?? []);
    if (actualTolerations !== wantedTolerations) return `DaemonSet tolerations ${actualTolerations}, resources' ${wantedTolerations}`;
    const revision = daemonSet.spec?.template.metadata?.annotations?.[AGENT_REVISION_ANNOTATION];
    if (revision === undefined || revision === "") return "DaemonSet template without an agent revision";
    if (!shouldCheckPods) return undefined;
    const stale = pods.filter((pod) => pod.metadata?.annotations?.[AGENT_REVISION_ANNOTATION] !== revision);
    if (stale.length > 0) return `agent pods ${stale.map((pod) => pod.metadata?.name).join(", ")} not on revision ${revision}`;
    const selected = nodes.items.filter((node) => selectors.some((selector) => matchesSelector(selector, node.metadata?.labels ?? {}))).map((node) => node.metadata?.name ?? "").sort();
    const placed = pods.map((pod) => pod.spec?.nodeName ?? "(unscheduled)").sort();
    if (JSON.stringify(placed) !== JSON.stringify(selected)) return `agent pods on ${placed.join("+") || "no node"}, resources select ${selected.join("+")}`;
    return undefined;
  }

  /** Undefined once `name` is fully reconciled: finalizer, status for this generation, password access, agents. */
  async function unconverged(name: string, shouldCheckPods = true): Promise<string | undefined> {
    const havip = await getHavip(name);
    if (havip === undefined) return "HAVIP missing";
    const uid = havip.metadata?.uid;
    if (havip.metadata?.finalizers?.includes(FINALIZER) !== true) return "no finalizer";
    if (havip.status?.virtualRouterID === undefined) return "no VRID in status";
    if (havip.status.observedGeneration !== havip.metadata?.generation) return `status observed generation ${havip.status.observedGeneration} of ${havip.metadata?.generation}`;
    if (havip.status.conditions?.find((condition) => condition.type === "Invalid")?.status !== "False") return "Invalid is not False";
    const [role, binding] = await Promise.all([getRole(name), getRoleBinding(name)]);
    for (const [kind, object] of [["Role", role], ["RoleBinding", binding]] as const) {
      if (object === undefined) return `no password ${kind}`;
      if (object.metadata?.ownerReferences?.[0]?.uid !== uid) return `password ${kind} not owned by this HAVIP`;
    }
    if (canonical(role?.rules) !== canonical([{ apiGroups: [""], resources: ["secrets"], resourceNames: [passwordSecret], verbs: ["get"] }])) return `password Role rules ${JSON.stringify(role?.rules)}`;
    if (canonical(binding?.subjects) !== canonical([{ kind: "ServiceAccount", name: AGENT_NAME, namespace: system }])) return `password RoleBinding subjects ${JSON.stringify(binding?.subjects)}`;
    return agentsUnconverged(shouldCheckPods);
  }

  /**
   * What the controller itself still had to write for `name` (created or changed; released when `isDeleted`), or
   * undefined when its part was done. The agent pods are the DaemonSet controller's work, so they are not asked.
   */
  async function controllerWorkLeft(name: string, isDeleted: boolean): Promise<string | undefined> {
    if (!isDeleted) return unconverged(name, false);
    if ((await getHavip(name)) !== undefined) return "HAVIP still there";
    const access = await passwordAccessLeft(name);
    return access === "" ? agentsUnconverged(false) : `password ${access} left`;
  }

  /**
   * What is left of ours once no resource is: the agent DaemonSet and its pods in the controller's namespace, and any
   * password Role or RoleBinding, anywhere (every agent object carries the agent label).
   */
  async function leftovers(): Promise<string> {
    return (await kubectl(["get", "daemonsets,pods,rolebindings,roles", "-A", "-l", `${AGENT_LABEL}=${AGENT_NAME}`, "-o", "name"])).trim();
  }

  /** `name`'s password Role and RoleBinding, if either is still there. */
  async function passwordAccessLeft(name: string): Promise<string> {
    const [role, binding] = await Promise.all([getRole(name), getRoleBinding(name)]);
    return [role === undefined ? "" : "Role", binding === undefined ? "" : "RoleBinding"].filter((kind) => kind !== "").join(", ");
  }

  /**
   * Starts a fresh controller and waits until `name` is reconciled, or, when deleted, gone with its password access
   * and the agents reconciled for the resources left (none: no DaemonSet).
   */
  async function restartAndConverge(name: string, isDeleted: boolean): Promise<{ convergedMs: number; accessWhenGone: string; waits: string }> {
    const restartedAt = Date.now();
    await startController();
    const readyMs = Date.now() - restartedAt;
    let last: string | undefined;
    let accessWhenGone: string | undefined;
    // What convergence waited on, and from when: the log then shows where the time after a restart went.
    const waits = [`ready@${readyMs}`];
    const note = (reason: string | undefined): void => {
      if (reason !== undefined && reason !== last) waits.push(`${reason.replace(/^(.{60}).+$/, "$1…")}@${Date.now() - restartedAt}`);
    };
    try {
      await waitForValue(isDeleted ? `${name} to be released` : `${name} to converge`, convergeTimeoutMs, async () => {
        let reason: string | undefined;
        if (!isDeleted) reason = await unconverged(name);
        else if ((await getHavip(name)) !== undefined) reason = "HAVIP still there";
        else {
          // Read at the first poll that finds the resource gone, before the garbage collector could have stepped in.
          accessWhenGone ??= await passwordAccessLeft(name);
          const access = await passwordAccessLeft(name);
          reason = access === "" ? await agentsUnconverged() : `password ${access} left`;
        }
        note(reason);
        last = reason;
        return last === undefined ? true : undefined;
      }, 100);
    } catch (error) {
      throw new Error(`${String(error)}; last: ${last}; now: ${await stageOf(name)}; controller log: ${readFileSync(controller?.logFile ?? "", "utf8").slice(-3000)}`);
    }
    return { convergedMs: Date.now() - restartedAt, accessWhenGone: accessWhenGone ?? "", waits: waits.join(", ") };
  }

  /** Agent pod UIDs by node. */
  async function podUids(): Promise<Map<string, string>> {
    return new Map((await agentPods()).map((pod) => [pod.spec?.nodeName ?? "", pod.metadata?.uid ?? ""]));
  }

  const havipPath = `/apis/${HAVIP_GROUP}/${HAVIP_VERSION}/namespaces/${ns}/${HAVIP_PLURAL}`;
  const listHavips = () => custom.listNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, plural: HAVIP_PLURAL, namespace: ns }) as Promise<{ metadata?: { resourceVersion?: string } }>;
  const named = (name: string) => (object: KubernetesObject) => object.metadata?.name === name;
  const rolePath = `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`;
  const bindingPath = `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`;
  const daemonSetPath = `/apis/apps/v1/namespaces/${system}/daemonsets`;
  const on = {
    finalizerAdded: (name: string): Trigger => ({
      what: "finalizer added (the controller's first write)",
      isFollowedByWrites: true,
      path: havipPath,
      list: listHavips,
      matches: (phase, object) => phase === "MODIFIED" && named(name)(object) && object.metadata?.finalizers?.includes(FINALIZER) === true,
    }),
    roleApplied: (name: string): Trigger => ({
      what: "password Role applied",
      isFollowedByWrites: true,
      path: rolePath,
      list: () => rbac.listNamespacedRole({ namespace: ns }),
      matches: (phase, object) => phase === "ADDED" && named(passwordAccessName(name))(object),
    }),
    bindingApplied: (name: string): Trigger => ({
      what: "password RoleBinding applied",
      isFollowedByWrites: true,
      path: bindingPath,
      list: () => rbac.listNamespacedRoleBinding({ namespace: ns }),
      matches: (phase, object) => phase === "ADDED" && named(passwordAccessName(name))(object),
    }),
    statusObserved: (name: string): Trigger => ({
      what: "status written for the current generation",
      // The DaemonSet write has followed it in every run so far, but under its own work-queue key: not a fixed order.
      isFollowedByWrites: false,
      path: havipPath,
      list: listHavips,
      matches: (phase, object) => phase === "MODIFIED" && named(name)(object) && (object as Havip).status?.virtualRouterID !== undefined &&
        (object as Havip).status?.observedGeneration === object.metadata?.generation,
    }),
    daemonSetWritten: (phase: "ADDED" | "MODIFIED" | "DELETED"): Trigger => ({
      what: `agent DaemonSet ${phase.toLowerCase()}`,
      // Each phase's last write so far, as far as the order of two work-queue keys allows.
      isFollowedByWrites: false,
      path: daemonSetPath,
      list: () => apps.listNamespacedDaemonSet({ namespace: system }),
      // MODIFIED: only a template change (a new generation), not the DaemonSet controller's status updates.
      matches: (eventPhase, object) => eventPhase === phase && named(AGENT_NAME)(object) &&
        (phase !== "MODIFIED" || ((object as V1DaemonSet).metadata?.generation !== 1 && (object as V1DaemonSet).status?.observedGeneration !== (object as V1DaemonSet).metadata?.generation)),
    }),
    specChanged: (name: string): Trigger => ({
      what: "spec change accepted by the API server",
      isFollowedByWrites: true,
      path: havipPath,
      list: listHavips,
      matches: (phase, object) => phase === "MODIFIED" && named(name)(object) && (object as Havip).status?.observedGeneration !== object.metadata?.generation,
    }),
    deletionStarted: (name: string): Trigger => ({
      what: "deletionTimestamp set (kubectl delete)",
      isFollowedByWrites: true,
      path: havipPath,
      list: listHavips,
      matches: (phase, object) => phase === "MODIFIED" && named(name)(object) && object.metadata?.deletionTimestamp !== undefined,
    }),
    bindingDeleted: (name: string): Trigger => ({
      what: "password RoleBinding deleted (the finalizer's first write)",
      isFollowedByWrites: true,
      path: bindingPath,
      list: () => rbac.listNamespacedRoleBinding({ namespace: ns }),
      matches: (phase, object) => phase === "DELETED" && named(passwordAccessName(name))(object),
    }),
    roleDeleted: (name: string): Trigger => ({
      what: "password Role deleted (the write before the finalizer's removal)",
      isFollowedByWrites: true,
      path: rolePath,
      list: () => rbac.listNamespacedRole({ namespace: ns }),
      matches: (phase, object) => phase === "DELETED" && named(passwordAccessName(name))(object),
    }),
    havipGone: (name: string): Trigger => ({
      what: "HAVIP gone (finalizer removed; the agents' DaemonSet not yet reconciled)",
      isFollowedByWrites: true,
      path: havipPath,
      list: listHavips,
      matches: (phase, object) => phase === "DELETED" && named(name)(object),
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
  // so that the kills land at different writes. Each starts with no resource, so its create makes the DaemonSet anew.
  const lifecycles = [
    { create: on.finalizerAdded, createDelayMs: 0, change: on.specChanged, changeDelayMs: 0, remove: on.deletionStarted, removeDelayMs: 0 },
    { create: on.roleApplied, createDelayMs: 0, change: () => on.daemonSetWritten("MODIFIED"), changeDelayMs: 0, remove: on.bindingDeleted, removeDelayMs: 0 },
    { create: on.bindingApplied, createDelayMs: 0, change: on.specChanged, changeDelayMs: 30, remove: on.roleDeleted, removeDelayMs: 0 },
    { create: () => on.daemonSetWritten("ADDED"), createDelayMs: 0, change: on.statusObserved, changeDelayMs: 0, remove: on.havipGone, removeDelayMs: 0 },
    { create: on.statusObserved, createDelayMs: 0, change: () => on.daemonSetWritten("MODIFIED"), changeDelayMs: 5, remove: () => on.daemonSetWritten("DELETED"), removeDelayMs: 0 },
    { create: on.finalizerAdded, createDelayMs: 15, change: on.specChanged, changeDelayMs: 80, remove: on.deletionStarted, removeDelayMs: 40 },
  ];

  it.each(lifecycles.map((lifecycle, index) => [index + 1, lifecycle] as const))("lifecycle %i: killed while creating, while changing the spec and while deleting, it converges and leaves nothing", async (index, lifecycle) => {
    const name = `crash-${index}`;
    const address = `10.77.0.${210 + index}`;
    const firstNode = index % 2 === 0 ? "node-2" : "node-1";
    const record = async (phase: string, trigger: Trigger, delayMs: number, action: () => Promise<void>, isDeleted: boolean): Promise<void> => {
      const { firedAfterMs, stage } = await killDuring(name, trigger, delayMs, action);
      const workLeft = await controllerWorkLeft(name, isDeleted);
      const landed = workLeft === undefined ? "after the phase's last write" : `between writes (left: ${workLeft})`;
      // Killed at once on an event the controller writes more after: the kill must land before those writes.
      if (delayMs === 0 && trigger.isFollowedByWrites) expect({ phase, trigger: trigger.what, stage, workLeft }).toEqual({ phase, trigger: trigger.what, stage, workLeft: expect.any(String) });
      const { convergedMs, accessWhenGone, waits } = await restartAndConverge(name, isDeleted);
      // The finalizer deletes the password access before it lets go: the garbage collector, which would tidy it up
      // later, has not had to.
      expect({ phase, accessWhenGone }).toEqual({ phase, accessWhenGone: "" });
      tried.push(`${name} ${phase}: on ${trigger.what} +${delayMs} ms (${firedAfterMs} ms after the action), ${landed} -> at death: ${stage}; restarted and ${isDeleted ? "released" : "converged"} in ${convergedMs} ms (${waits})`);
    };

    await record("create", lifecycle.create(name), lifecycle.createDelayMs, async () => {
      await kubectl(["apply", "-f", "-"], havipManifest(name, address, firstNode));
    }, false);
    const ownerUid = (await getHavip(name))?.metadata?.uid;
    const firstAgent = (await podUids()).get(firstNode);
    expect(firstAgent).toBeDefined();

    // Wider placement and a toleration: a new DaemonSet generation, whose template the restarted controller must write.
    const toleration = { key: "crash-test", operator: "Equal", value: `v${index}`, effect: "NoSchedule" };
    const selector = { matchExpressions: [{ key: hostnameLabel, operator: "In" as const, values: ["node-1", "node-2"] }] };
    const change = JSON.stringify({ spec: { nodes: { selector: { matchLabels: null, ...selector }, tolerations: [toleration] } } });
    await record("spec change", lifecycle.change(name), lifecycle.changeDelayMs, async () => {
      await kubectl(["patch", "havip", name, "-n", ns, "--type=merge", "-p", change]);
    }, false);
    const daemonSet = (await getDaemonSet()) ?? {};
    expect(termsOf(daemonSet)).toEqual([termOf(selector)]);
    expect(daemonSet.spec?.template.spec?.tolerations).toEqual([toleration]);
    // The update strategy is OnDelete and the agent revision did not change: neither the placement change nor the
    // restart replaced the agent already running, and the newly selected node got one.
    expect(Object.fromEntries(await podUids())).toEqual({ [firstNode]: firstAgent, [firstNode === "node-1" ? "node-2" : "node-1"]: expect.any(String) });

    await record("delete", lifecycle.remove(name), lifecycle.removeDelayMs, async () => {
      await kubectl(["delete", "havip", name, "-n", ns, "--wait=false"]);
    }, true);
    // The controller deleted the DaemonSet once no resource was left (restartAndConverge waited for that); its pods
    // follow it, and no password Role or RoleBinding is left anywhere.
    await waitForValue("the agent pods to follow their DaemonSet", convergeTimeoutMs, async () => ((await leftovers()) === "" ? true : undefined), 250);
    // And nothing comes back: a restarted controller that re-applied from a stale view would show here.
    await new Promise((resolveWait) => setTimeout(resolveWait, 2_000));
    expect(await leftovers()).toBe("");
    const owned = [...(await rbac.listNamespacedRole({ namespace: ns })).items, ...(await rbac.listNamespacedRoleBinding({ namespace: ns })).items]
      .filter((object) => object.metadata?.ownerReferences?.some((reference) => reference.uid === ownerUid));
    expect(owned).toEqual([]);
  }, 180_000);

  it("two HAVIPs applied together, killed as the DaemonSet appears: each keeps a VRID of its own, and the one DaemonSet serves both until the last is deleted", async () => {
    const names = ["pair-a", "pair-b"] as const;
    const nodeOf = { "pair-a": "node-1", "pair-b": "node-2" };
    const { firedAfterMs } = await killDuring(names[0], on.daemonSetWritten("ADDED"), 0, async () => {
      await kubectl(["apply", "-f", "-"], names.map((name, i) => havipManifest(name, `10.77.0.${230 + i}`, nodeOf[name])).join("---\n"));
    });
    const stages = await Promise.all(names.map(async (name) => `${name}: ${await stageOf(name)}`));
    const pairLeft = (await Promise.all(names.map(async (name) => controllerWorkLeft(name, false)))).find((reason) => reason !== undefined);
    const { convergedMs, waits } = await restartAndConverge(names[0], false);
    await waitForValue("pair-b to converge", convergeTimeoutMs, async () => ((await unconverged(names[1])) === undefined ? true : undefined), 100);
    tried.push(`pair: on agent DaemonSet added +0 ms (${firedAfterMs} ms after the apply), ${pairLeft === undefined ? "after the last write" : `between writes (left: ${pairLeft})`} -> at death: ${stages.join("; ")}; restarted and converged in ${convergedMs} ms (${waits})`);
    const vrids = await Promise.all(names.map(async (name) => (await getHavip(name))?.status?.virtualRouterID));
    expect(new Set(vrids).size).toBe(2);
    // One DaemonSet, placed for both, one agent on each resource's node (unconverged checked the terms and pods).
    expect(termsOf((await getDaemonSet()) ?? {})).toHaveLength(2);
    const pairBAgent = (await podUids()).get(nodeOf["pair-b"]);
    expect(pairBAgent).toBeDefined();

    // pair-a goes, killed just as its finalizer lets go: the restarted controller must narrow the DaemonSet to pair-b,
    // not delete it, and pair-b's agent keeps running throughout.
    const { firedAfterMs: goneAfterMs, stage } = await killDuring(names[0], on.havipGone(names[0]), 0, async () => {
      await kubectl(["delete", "havip", names[0], "-n", ns, "--wait=false"]);
    });
    // The DaemonSet's narrowing to pair-b follows the finalizer's removal: the kill lands before it.
    const goneLeft = await controllerWorkLeft(names[0], true);
    expect({ stage, goneLeft }).toEqual({ stage, goneLeft: expect.any(String) });
    const { convergedMs: releasedMs, accessWhenGone, waits: releaseWaits } = await restartAndConverge(names[0], true);
    expect(accessWhenGone).toBe("");
    tried.push(`pair-a delete: on HAVIP gone +0 ms (${goneAfterMs} ms after the delete), between writes (left: ${goneLeft ?? "-"}) -> at death: ${stage}; restarted and released in ${releasedMs} ms (${releaseWaits})`);
    expect(await unconverged(names[1])).toBeUndefined();
    expect(termsOf((await getDaemonSet()) ?? {})).toEqual([termOf({ matchLabels: { [hostnameLabel]: nodeOf["pair-b"] } })]);
    expect(Object.fromEntries(await podUids())).toEqual({ [nodeOf["pair-b"]]: pairBAgent });

    await kubectl(["delete", "havip", names[1], "-n", ns, "--wait=true", "--timeout=60s"]);
    await waitForValue("nothing of ours left", convergeTimeoutMs, async () => ((await leftovers()) === "" ? true : undefined), 250);
    expect(await leftovers()).toBe("");
  }, 150_000);
});
