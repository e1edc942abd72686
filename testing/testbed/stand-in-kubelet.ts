// The test bed's stand-in kubelet: a minimal kubelet for network-namespace "nodes". It runs in the test process (root
// network namespace) with the admin kubeconfig, registers one Node per lab host, keeps it Ready with Lease heartbeats,
// and runs the containers of the pods the scheduler binds to those nodes as processes inside the node's namespace.
// Its parts are in stand-in-kubelet/.
//
// Simplifications, each chosen because the ha-nginx tests do not depend on the real behaviour:
// - Every pod shares its node's network namespace, whether or not it asks for hostNetwork. Two pods on one node that
//   listen on the same port collide, as two hostNetwork pods would.
// - Images are not pulled. A repository ending in `ha-nginx` runs the built CLI (`node <repo>/dist/cli.js`); `nginx`
//   runs Debian's /usr/sbin/nginx with the pod's configuration; any other image is refused with the reason
//   ImageNotSupportedByTestbed (a bare pod fails; a controller's pod stays Pending, like an image that cannot be pulled,
//   so a ReplicaSet does not spin creating replacements).
// - There is no container file system. configMap, secret, emptyDir, downwardAPI and projected volumes are written to a
//   per-pod folder, and every argument, environment value and nginx configuration file that names a mount path is
//   rewritten to that folder.
// - The service account token is not mounted at /var/run/secrets/kubernetes.io/serviceaccount (the host has one such
//   path for all pods). Instead each pod gets KUBECONFIG=<per-pod kubeconfig> holding a TokenRequest token bound to the
//   pod, for https://127.0.0.1:6443, which the API relay (api-relay.ts) forwards to the API server. Clients that call
//   loadFromDefault() read it first. The projected volume is still written into the pod folder.
// - The kubelet side (heartbeats, status, the relay's socket) lives outside the node's namespace, so lab.cutLink cuts
//   the data plane only. Use stopNode (a silent kubelet, with or without its pods) and cutApi (pods lose the API).
// - There is no kubelet API: `kubectl logs/exec` do not work. Container output goes to <dir>/pods/<pod>/<container>.log;
//   stop() removes <dir> unless HA_NGINX_KEEP_KUBELET_DIR is set.
import { CoordinationV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startApiRelay, type ApiRelay } from "./api-relay.js";
import { minStopAfterPreStopMs } from "./stand-in-kubelet/container-lifecycle.js";
import { NodeHeartbeat, type NodeHost, type NodeState } from "./stand-in-kubelet/node-heartbeat.js";
import { PodInformer } from "./stand-in-kubelet/pod-informer.js";
import type { PodProcess } from "./stand-in-kubelet/pod-worker.js";
import { ProbeHelper } from "./stand-in-kubelet/probe-helper.js";
import { rfc3339 } from "./stand-in-kubelet/time.js";

export type { NodeHost } from "./stand-in-kubelet/node-heartbeat.js";
export type { PodProcess } from "./stand-in-kubelet/pod-worker.js";

export interface KubeletControlPlane {
  readonly adminKubeconfig: string;
  readonly caFile: string;
  readonly apiPort: number;
  readonly versions?: { readonly kubernetes?: string };
}

export interface StandInKubeletOptions {
  readonly cp: KubeletControlPlane;
  readonly hosts: readonly NodeHost[];
  // Defaults to node-1 … node-N, in the order of `hosts`.
  readonly nodeNames?: readonly string[];
  readonly nodeLabels?: Readonly<Record<string, string>>;
  // Where dist/cli.js lives; defaults to this repository.
  readonly repoDir?: string;
  readonly dir?: string;
  // How often each node renews its Lease and posts its status; the kubelet's 10 s by default. Tests that shorten the
  // controller manager's --node-monitor-grace-period shorten this too, to stay well inside it.
  readonly heartbeatIntervalMs?: number;
  readonly log?: (line: string) => void;
}

export interface StandInKubelet {
  readonly dir: string;
  readonly nodeNames: readonly string[];
  hostOf(nodeName: string): NodeHost;
  processes(): readonly PodProcess[];
  // The per-pod folder (logs, volumes, kubeconfig) of a pod this kubelet is running.
  podDir(namespace: string, name: string): string | undefined;
  relayPids(): readonly number[];
  // Like a powered-off machine: heartbeats stop and the node's pods die. With keepPods the processes keep running and
  // only the kubelet goes quiet, as in an API partition.
  stopNode(nodeName: string, options?: { readonly keepPods?: boolean }): Promise<void>;
  startNode(nodeName: string): Promise<void>;
  // The relay bridges namespaces through the file system, so lab.cutLink does not cut a node's pods off the API
  // server; these do, by stopping and restarting that node's relay.
  cutApi(nodeName: string): Promise<void>;
  restoreApi(nodeName: string): Promise<void>;
  stop(options?: { readonly deleteNodes?: boolean }): Promise<void>;
}

const defaultHeartbeatMs = 10_000;
const defaultKubeletVersion = "v1.37.2";
const defaultRepoDir = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

class Kubelet implements StandInKubelet {
  private readonly core: CoreV1Api;
  private readonly nodes = new Map<string, NodeState>();
  private readonly heartbeat: NodeHeartbeat;
  private readonly pods: PodInformer;
  private isStopped = false;
  private stopping: Promise<void> | undefined;
  private readonly logStream: WriteStream;

  constructor(
    private readonly cp: KubeletControlPlane,
    readonly dir: string,
    repoDir: string,
    hosts: readonly NodeHost[],
    readonly nodeNames: readonly string[],
    labels: Readonly<Record<string, string>>,
    private readonly externalLog: ((line: string) => void) | undefined,
    heartbeatMs: number,
  ) {
    const kc = new KubeConfig();
    kc.loadFromFile(cp.adminKubeconfig);
    this.core = kc.makeApiClient(CoreV1Api);
    this.logStream = createWriteStream(join(dir, "kubelet.log"), { flags: "a" });
    hosts.forEach((host, index) => {
      const name = nodeNames[index] ?? `node-${index + 1}`;
      this.nodes.set(name, {
        name, host, probeHelper: new ProbeHelper(host.netns), relay: undefined, heartbeat: undefined,
        isRunning: false, readyTransition: rfc3339(), uid: undefined,
      });
    });
    const log = (line: string): void => this.log(line);
    this.heartbeat = new NodeHeartbeat({
      core: this.core,
      coordination: kc.makeApiClient(CoordinationV1Api),
      labels,
      heartbeatMs,
      kubeletVersion: cp.versions?.kubernetes ?? defaultKubeletVersion,
      isStopped: () => this.isStopped,
      onNodeDeleted: (node) => this.haltNode(node, false),
      log,
    });
    this.pods = new PodInformer({ kc, core: this.core, nodes: this.nodes, kubelet: { dir, repoDir, caFile: cp.caFile, core: this.core, log }, log });
  }

  private log(line: string): void {
    const stamped = `${new Date().toISOString()} ${line}`;
    this.logStream.write(`${stamped}\n`);
    this.externalLog?.(stamped);
  }

  hostOf(nodeName: string): NodeHost {
    return this.node(nodeName).host;
  }

  processes(): readonly PodProcess[] {
    return this.pods.workers().flatMap((worker) => worker.processes());
  }

  podDir(namespace: string, name: string): string | undefined {
    return this.pods.workers().find((worker) => worker.namespace === namespace && worker.name === name)?.dir;
  }

  relayPids(): readonly number[] {
    return [...this.nodes.values()].flatMap((node) => node.relay?.pids() ?? []);
  }

  async start(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((node) => this.startNodeState(node)));
    await this.pods.start();
  }

  private async startNodeState(node: NodeState): Promise<void> {
    node.isRunning = true;
    node.probeHelper.start();
    node.relay = await this.startRelay(node);
    await this.heartbeat.start(node);
  }

  private async haltNode(node: NodeState, keepPods: boolean): Promise<void> {
    node.isRunning = false;
    this.heartbeat.stop(node);
    if (keepPods) return;
    await Promise.all(this.pods.workers().filter((worker) => worker.node === node).map((worker) => worker.kill()));
  }

  async stopNode(nodeName: string, options: { readonly keepPods?: boolean } = {}): Promise<void> {
    const node = this.node(nodeName);
    await this.haltNode(node, options.keepPods === true);
  }

  async startNode(nodeName: string): Promise<void> {
    const node = this.node(nodeName);
    if (node.isRunning) return;
    node.isRunning = true;
    node.readyTransition = rfc3339();
    await this.heartbeat.start(node);
    this.pods.replay();
  }

  async cutApi(nodeName: string): Promise<void> {
    const node = this.node(nodeName);
    await node.relay?.stop();
    node.relay = undefined;
  }

  async restoreApi(nodeName: string): Promise<void> {
    const node = this.node(nodeName);
    node.relay ??= await this.startRelay(node);
  }

  private startRelay(node: NodeState): Promise<ApiRelay> {
    return startApiRelay({ netns: node.host.netns, socketPath: join(this.dir, `${node.name}-api.sock`), apiPort: this.cp.apiPort });
  }

  private node(nodeName: string): NodeState {
    const node = this.nodes.get(nodeName);
    if (node === undefined) throw new Error(`no test bed node named ${nodeName}`);
    return node;
  }

  stop(options: { readonly deleteNodes?: boolean } = {}): Promise<void> {
    this.stopping ??= this.stopOnce(options.deleteNodes === true);
    return this.stopping;
  }

  private async stopOnce(deleteNodes: boolean): Promise<void> {
    this.isStopped = true;
    await this.pods.stop();
    for (const node of this.nodes.values()) {
      node.isRunning = false;
      this.heartbeat.stop(node);
    }
    await Promise.all(this.pods.workers().map((worker) => worker.kill(minStopAfterPreStopMs)));
    if (deleteNodes) {
      await Promise.all([...this.nodes.keys()].map((name) => this.core.deleteNode({ name }).catch(() => undefined)));
    }
    await Promise.all([...this.nodes.values()].map(async (node) => {
      await node.relay?.stop();
      node.relay = undefined;
      await node.probeHelper.stop();
    }));
    await new Promise<void>((resolveEnd) => this.logStream.end(() => resolveEnd()));
    if (process.env.HA_NGINX_KEEP_KUBELET_DIR === undefined) await rm(this.dir, { recursive: true, force: true });
    else process.stderr.write(`stand-in kubelet files kept in ${this.dir}\n`);
  }
}

export async function startStandInKubelet(options: StandInKubeletOptions): Promise<StandInKubelet> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "ha-nginx-nodes-")));
  await mkdir(join(dir, "pods"), { recursive: true });
  const names = options.nodeNames ?? options.hosts.map((_host, index) => `node-${index + 1}`);
  const kubelet = new Kubelet(options.cp, dir, options.repoDir ?? defaultRepoDir, options.hosts, names, options.nodeLabels ?? {}, options.log, options.heartbeatIntervalMs ?? defaultHeartbeatMs);
  try {
    await kubelet.start();
  } catch (error) {
    await kubelet.stop();
    throw error;
  }
  return kubelet;
}
