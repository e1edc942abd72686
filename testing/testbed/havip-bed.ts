// A HighAvailabilityVIP running on the e2e test bed: the CRD, the chart's RBAC, the real controller process with its
// ServiceAccount kubeconfig, an nginx DaemonSet (readinessProbe, preStop sleep) and one HAVIP on lab.vip(0). The one way
// the e2e tests and bench/k8s.ts bring it up, so all of them measure the same deployment.
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HAVIP_GROUP, HAVIP_PLURAL, HAVIP_VERSION, type HaVipStatus, type NodeStatusEntry } from "../../src/api/v1alpha1/index.js";
import { DEFAULT_AGENT_HTTP_PORT } from "../../src/controller/command.js";
import { vipHolders } from "../lab/agent.js";
import { waitFor } from "../lab/wait.js";
import type { StateKind } from "../../src/vrrp/machine.js";
import { installControllerAccess, spawnController } from "./controller-process.js";
import { startTestbed, type Testbed, type TestbedOptions } from "./testbed.js";

export { havipSystemNamespace, renderChart } from "./controller-process.js";
export const havipNamespace = "edge";
export const havipName = "web-vip";

export const nginxManifest = `
apiVersion: v1
kind: ConfigMap
metadata: { name: web-conf, namespace: ${havipNamespace} }
data:
  default.conf: |
    server {
      listen 80;
      location = /healthz { return 200 "ok\\n"; }
      location / { default_type text/plain; return 200 "web\\n"; }
    }
---
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: web, namespace: ${havipNamespace} }
spec:
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 20
      containers:
        - name: nginx
          image: nginx:1.27
          ports: [{ containerPort: 80, name: http }]
          readinessProbe:
            httpGet: { path: /healthz, port: http }
            periodSeconds: 1
          lifecycle:
            preStop: { exec: { command: ["sleep", "5"] } }
          volumeMounts: [{ name: conf, mountPath: /etc/nginx/conf.d }]
      volumes: [{ name: conf, configMap: { name: web-conf } }]
`;

/** The bed's agent settings that its tests vary; the rest (eth0, 1 s adverts, node-1..3 at 150/100/50) is fixed. */
export interface BedAgentSettings {
  /** RFC 5798 §6.1 Preempt_Mode. Default Never: a node that comes back does not take the VIP back. */
  readonly preemption?: "Never" | "Always";
  /** healthCheck.weight; unset, the schema's 0 (an unhealthy node goes FAULT). */
  readonly weight?: number;
  /** Default true: the agent's own 200 ms nginx probe next to the pods' readiness, so failures show within 0.5 s. */
  readonly hasLocalProbe?: boolean;
}

export interface BedHaVipManifestOptions {
  readonly name?: string;
  readonly namespace?: string;
  /** null: addresses only, every other field at the schema's default, for tests of the controller alone. */
  readonly agents?: BedAgentSettings | null;
}

/** A HighAvailabilityVIP on `vip`/24; by default the bed's own (web-vip in edge, tuned for fast failover). */
export function haVipManifest(vip: string, options: BedHaVipManifestOptions = {}): string {
  const { name = havipName, namespace = havipNamespace, agents = {} } = options;
  const head = `
apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  addresses: [${vip}/24]
`;
  if (agents === null) return head;
  const { preemption = "Never", weight, hasLocalProbe = true } = agents;
  const probe = `    probe:
      httpGet: { path: /healthz, port: 80, host: 127.0.0.1 }
      period: 200ms
      timeout: 100ms
      failureThreshold: 2
`;
  return `${head}  interface: eth0
  advertisementInterval: 1s
  preemption: { mode: ${preemption} }
  nodes:
    priorities:
      - { node: node-1, priority: 150 }
      - { node: node-2, priority: 100 }
      - { node: node-3, priority: 50 }
  healthCheck:
    nginxPodSelector: { matchLabels: { app: web } }
${hasLocalProbe ? probe : ""}${weight === undefined ? "" : `    weight: ${weight}\n`}`;
}

export function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") === true;
}

/** The fields of an agent's /state that tests read. */
export interface AgentStateView {
  readonly state?: StateKind;
  readonly holdsVip?: boolean;
  readonly isLinkUp?: boolean;
  readonly lastTransition?: { readonly at?: string; readonly reason?: string };
}

export interface HaVipBedOptions {
  readonly testbed?: TestbedOptions;
  // Waits for every nginx pod to be Ready before the HAVIP is applied, so that apply-to-answer times the HAVIP alone.
  readonly shouldWaitForNginx?: boolean;
  readonly log?: (line: string) => void;
  // Replaces the default HAVIP (haVipManifest); it must keep the name, namespace and lab.vip(0) address.
  readonly havipManifest?: (vip: string) => string;
  // Objects applied before the HAVIP, e.g. the Secret an `authentication` block refers to.
  readonly extraManifest?: string;
}

export interface HaVipBed {
  readonly testbed: Testbed;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly vip: string;
  readonly vrid: number;
  /** Epoch milliseconds just after `kubectl apply` of the HAVIP returned. */
  readonly appliedAt: number;
  readonly controllerLog: string;
  havipStatus(): Promise<HaVipStatus>;
  statusNodes(): Promise<readonly NodeStatusEntry[]>;
  /** Waits for one MASTER holding the VIP alone and two BACKUP in status.nodes. */
  settled(timeoutMs?: number): Promise<{ master: string; backups: string[] }>;
  /**
   * `node`'s agent's /state, asked from inside the node's own namespace so that it answers while the node is cut off
   * the segment. Empty when the agent does not answer (restarting).
   */
  agentState(node: string): Promise<AgentStateView>;
  /** The epoch milliseconds of `node`'s agent's last transition, from its /state endpoint. */
  transitionAt(node: string): Promise<number>;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolveExit) => child.once("exit", resolveExit));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function startHaVipBed(options: HaVipBedOptions = {}): Promise<HaVipBed> {
  const log = options.log ?? ((): void => undefined);
  const scratch = mkdtempSync(join(tmpdir(), "ha-nginx-havip-bed-"));
  const controllerLog = join(scratch, "controller.log");
  let testbed: Testbed | undefined;
  let controller: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    // Its log is removed below; a controller that died mid-run is the first thing to know about a failed test.
    if (controller !== undefined && (controller.exitCode !== null || controller.signalCode !== null)) {
      log(`the controller exited early (${controller.exitCode ?? controller.signalCode}):\n${readFileSync(controllerLog, "utf8").slice(-3000)}`);
    }
    if (controller !== undefined) await stopChild(controller);
    await testbed?.stop();
    rmSync(scratch, { recursive: true, force: true });
  };
  try {
    const bed = await startTestbed({ nodes: 3, ...options.testbed });
    testbed = bed;
    log(`test bed up in ${bed.timings.totalMs} ms`);
    const kc = new KubeConfig();
    kc.loadFromFile(bed.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const must = async (what: string, args: readonly string[], input?: string): Promise<void> => {
      const result = await bed.kubectl(args, input === undefined ? undefined : { input });
      if (result.code !== 0) throw new Error(`${what}: ${result.stderr}`);
    };
    const controllerKubeconfig = await installControllerAccess(bed);
    await bed.createNamespace(havipNamespace);
    controller = spawnController({
      scratch,
      logName: "controller.log",
      env: { KUBECONFIG: controllerKubeconfig },
      agentImage: bed.imageForOurs,
      metricsPort: 0,
    }).child;
    await must("nginx", ["apply", "-f", "-"], nginxManifest);
    if (options.shouldWaitForNginx === true) {
      await waitFor(
        async () => {
          const pods = await core.listNamespacedPod({ namespace: havipNamespace, labelSelector: "app=web" });
          return pods.items.length === bed.nodeNames.length && pods.items.every(isPodReady);
        },
        { timeoutMs: 90_000, intervalMs: 250, what: "every nginx pod Ready" },
      );
      log("nginx Ready on every node");
    }
    const vip = bed.lab.vip(0).address;
    if (options.extraManifest !== undefined) await must("extra manifest", ["apply", "-f", "-"], options.extraManifest);
    await must("HighAvailabilityVIP", ["apply", "-f", "-"], (options.havipManifest ?? haVipManifest)(vip));
    const appliedAt = Date.now();
    const havipStatus = async (): Promise<HaVipStatus> => {
      const object = (await custom.getNamespacedCustomObject({ group: HAVIP_GROUP, version: HAVIP_VERSION, namespace: havipNamespace, plural: HAVIP_PLURAL, name: havipName })) as {
        status?: HaVipStatus;
      };
      return object.status ?? {};
    };
    let vrid = 0;
    await waitFor(
      async () => {
        vrid = (await havipStatus()).virtualRouterID ?? 0;
        return vrid > 0;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "the controller to allocate status.virtualRouterID" },
    );
    const statePort = DEFAULT_AGENT_HTTP_PORT;
    const statusNodes = async (): Promise<readonly NodeStatusEntry[]> => (await havipStatus()).nodes ?? [];
    const agentState = async (node: string): Promise<AgentStateView> => {
      const host = bed.hostOf(node);
      // The agent serves on the node's own address only, which answers inside the node even while it is cut off.
      const answer = await bed.lab.httpGet(host, `http://${host.address}:${statePort}/state`);
      if (answer.status !== 200) return {};
      const routers = (JSON.parse(answer.body) as { routers?: (AgentStateView & { havip?: string })[] }).routers ?? [];
      return routers.find((router) => router.havip === `${havipNamespace}/${havipName}`) ?? {};
    };
    return {
      testbed: bed,
      core,
      custom,
      vip,
      vrid,
      appliedAt,
      controllerLog,
      havipStatus,
      statusNodes,
      async settled(timeoutMs = 90_000) {
        let result: { master: string; backups: string[] } | undefined;
        await waitFor(
          async () => {
            const nodes = await statusNodes();
            const master = nodes.filter((entry) => entry.state === "MASTER");
            const backups = nodes.filter((entry) => entry.state === "BACKUP");
            if (master.length !== 1 || backups.length !== 2 || master[0] === undefined) return false;
            const holders = await vipHolders(bed.lab, vip);
            if (holders.length !== 1 || holders[0] !== bed.hostOf(master[0].node).name) return false;
            result = { master: master[0].node, backups: backups.map((entry) => entry.node).sort() };
            return true;
          },
          { timeoutMs, intervalMs: 250, what: "one MASTER holding the VIP and two BACKUP in status.nodes" },
        );
        if (result === undefined) throw new Error("unreachable");
        return result;
      },
      agentState,
      async transitionAt(node) {
        return Date.parse((await agentState(node)).lastTransition?.at ?? "");
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
