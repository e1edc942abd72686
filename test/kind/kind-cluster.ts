// A real Kubernetes cluster for the e2e: kind nodes (Docker containers running systemd, containerd and a real
// kubelet) from the node image scripts/kind-images.sh builds, on a Docker network of their own. Everything is named
// after one run id, and delete() removes the cluster, the network and every container the run started.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { locateBinaries, pinnedModuleVersion } from "../../testing/testbed/binaries.js";

export const repo = resolve(import.meta.dirname, "../..");
const cache = process.env.HA_NGINX_CACHE ?? join(process.env.HOME ?? "/root", ".cache", "ha-nginx");

export interface KindImages {
  readonly node: string;
  readonly app: string;
  readonly nginx: string;
  readonly client: string;
  readonly etcdTag: string;
}

/** What scripts/kind-images.sh printed, passed on by .ci/run; a missing one fails the run rather than skipping. */
export function kindImagesFromEnv(env: NodeJS.ProcessEnv = process.env): KindImages {
  const read = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === "") {
      throw new Error(`${name} is not set: run scripts/docker-daemon.sh start and eval "$(bash scripts/kind-images.sh)" first`);
    }
    return value;
  };
  return {
    node: read("HA_NGINX_KIND_NODE_IMAGE"),
    app: read("HA_NGINX_IMAGE"),
    nginx: read("HA_NGINX_NGINX_IMAGE"),
    client: read("HA_NGINX_CLIENT_IMAGE"),
    etcdTag: read("HA_NGINX_ETCD_IMAGE_TAG"),
  };
}

export const dockerHost = process.env.DOCKER_HOST ?? "unix:///run/ha-nginx-docker/docker.sock";

export function kindBinary(): string {
  return join(process.env.HA_NGINX_KIND_BIN ?? join(cache, `kind-${pinnedModuleVersion("kind", "sigs.k8s.io/kind")}`, "bin"), "kind");
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  readonly isFailureExpected?: boolean;
}

export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { env: { ...process.env, DOCKER_HOST: dockerHost, ...opts.env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      const result = { code, stdout, stderr };
      if (code === 0 || opts.isFailureExpected === true) resolveRun(result);
      else reject(new Error(`${command} ${args.join(" ")} exited ${code ?? `after ${timeoutMs} ms`}: ${stderr.trim() || stdout.trim()}`));
    });
    child.stdin.end(opts.input ?? "");
  });
}

export function docker(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run("docker", args, opts);
}

export interface KindNode {
  readonly name: string;
  readonly role: "control-plane" | "worker";
  readonly address: string;
}

export interface KindCluster {
  readonly name: string;
  readonly network: string;
  readonly kubeconfig: string;
  readonly nodes: readonly KindNode[];
  readonly prefixLength: number;
  /** The network's IPv4 subnet, as a.b.c.d/nn. */
  readonly subnet: string;
  kubectl(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  helm(args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Runs a command in a node's container: its network namespace, its processes (kubelet, containerd, the pods). */
  exec(node: KindNode, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** A container on the cluster's network running `image`, attached so its stdout streams to the caller. */
  runOnNetwork(name: string, image: string, args: readonly string[]): ChildProcess;
  delete(): Promise<void>;
}

// cgroup v1 hosts (this CI's) need failCgroupV1: false since Kubernetes 1.35. CoreDNS is skipped: its image would
// have to be built too, and nothing here resolves names (the controller reaches the API server by its Service IP).
// kindnetd's image likewise; the pod network is a per-node bridge, set up by setUpPodNetwork.
function kindConfig(workers: number, etcdTag: string): string {
  return [
    "kind: Cluster",
    "apiVersion: kind.x-k8s.io/v1alpha4",
    "networking:",
    "  disableDefaultCNI: true",
    "  kubeProxyMode: nftables",
    "nodes:",
    "  - role: control-plane",
    ...Array.from({ length: workers }, () => "  - role: worker"),
    "kubeadmConfigPatches:",
    "  - |",
    "    kind: ClusterConfiguration",
    "    etcd:",
    "      local:",
    `        imageTag: ${etcdTag}`,
    "  - |",
    "    kind: InitConfiguration",
    "    skipPhases: [preflight, addon/coredns]",
    "  - |",
    "    kind: KubeletConfiguration",
    "    failCgroupV1: false",
    "",
  ].join("\n");
}

export interface CreateClusterOptions {
  readonly runId: string;
  readonly images: KindImages;
  readonly workers: number;
  readonly log?: (line: string) => void;
}

export async function createKindCluster(opts: CreateClusterOptions): Promise<KindCluster> {
  const name = `ha-nginx-${opts.runId}`;
  const network = name;
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const kubeconfig = join(dir, "kubeconfig");
  const configFile = join(dir, "kind.yaml");
  writeFileSync(configFile, kindConfig(opts.workers, opts.images.etcdTag));
  const helmHome = join(dir, "helm");
  const kindEnv = { KUBECONFIG: kubeconfig, KIND_EXPERIMENTAL_DOCKER_NETWORK: network };
  const binaries = locateBinaries();
  const containers = new Set<string>();

  const kubectl = (args: readonly string[], runOpts: RunOptions = {}): Promise<RunResult> =>
    run(binaries.kubectl, ["--kubeconfig", kubeconfig, ...args], runOpts);
  const helm = (args: readonly string[], runOpts: RunOptions = {}): Promise<RunResult> =>
    run(binaries.helm, ["--kubeconfig", kubeconfig, ...args], {
      ...runOpts,
      env: { HOME: helmHome, HELM_CACHE_HOME: join(helmHome, "cache"), HELM_CONFIG_HOME: join(helmHome, "config"), HELM_DATA_HOME: join(helmHome, "data") },
    });
  const deleteAll = async (): Promise<void> => {
    // For a developer reading a failure: HA_NGINX_KIND_KEEP=1 keeps everything (kind delete cluster --name NAME later).
    if (process.env.HA_NGINX_KIND_KEEP === "1") return opts.log?.(`kept ${name}; KUBECONFIG=${kubeconfig}`);
    for (const container of containers) await docker(["rm", "-f", container], { isFailureExpected: true });
    await run(kindBinary(), ["delete", "cluster", "--name", name], { env: kindEnv, isFailureExpected: true, timeoutMs: 120_000 });
    await docker(["network", "rm", network], { isFailureExpected: true });
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    opts.log?.(`kind create cluster ${name} (${1 + opts.workers} nodes)`);
    await run(kindBinary(), ["create", "cluster", "--name", name, "--image", opts.images.node, "--config", configFile, "--retain"], {
      env: kindEnv,
      timeoutMs: 600_000,
    });
    const nodes = await readNodes(name, network);
    const subnet = await networkSubnet(network);
    const cluster: KindCluster = {
      name,
      network,
      kubeconfig,
      nodes,
      subnet,
      prefixLength: Number(subnet.split("/")[1]),
      kubectl,
      helm,
      exec: (node, args, runOpts) => docker(["exec", ...(runOpts?.input === undefined ? [] : ["-i"]), node.name, ...args], runOpts),
      runOnNetwork(containerName, image, args) {
        containers.add(containerName);
        return spawn("docker", ["run", "--rm", "-i", "--name", containerName, "--network", network, image, ...args], {
          env: { ...process.env, DOCKER_HOST: dockerHost },
          stdio: ["ignore", "pipe", "pipe"],
        });
      },
      delete: deleteAll,
    };
    await setUpPodNetwork(cluster);
    opts.log?.("kind: the pod network is up");
    return cluster;
  } catch (error) {
    await collectDiagnostics(name, dir).then((text) => opts.log?.(text), () => undefined);
    await deleteAll();
    throw error;
  }
}

async function readNodes(cluster: string, network: string): Promise<KindNode[]> {
  const listed = await docker(["ps", "--filter", `label=io.x-k8s.kind.cluster=${cluster}`, "--format", "{{.Names}}"]);
  const names = listed.stdout.split("\n").filter((line) => line !== "").sort();
  const nodes: KindNode[] = [];
  for (const name of names) {
    const inspect = await docker(["inspect", name, "--format", `{{(index .NetworkSettings.Networks "${network}").IPAddress}} {{index .Config.Labels "io.x-k8s.kind.role"}}`]);
    const [address = "", role = ""] = inspect.stdout.trim().split(" ");
    nodes.push({ name, address, role: role === "control-plane" ? "control-plane" : "worker" });
  }
  return nodes;
}

async function networkSubnet(network: string): Promise<string> {
  const result = await docker(["network", "inspect", network, "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"]);
  const subnet = result.stdout.trim().split(/\s+/).find((candidate) => !candidate.includes(":"));
  if (subnet === undefined) throw new Error(`the Docker network ${network} has no IPv4 subnet: ${result.stdout}`);
  return subnet;
}

/**
 * A bridge per node on the podCIDR the controller-manager gave it, masquerading what leaves the node, and a route
 * on every node to every other node's podCIDR: enough for pods to reach the API server's Service and each other,
 * with nothing to pull.
 */
async function setUpPodNetwork(cluster: KindCluster): Promise<void> {
  const podCidrs = new Map<string, string>();
  for (const node of cluster.nodes) {
    const cidr = await waitForPodCidr(cluster, node);
    podCidrs.set(node.name, cidr);
  }
  for (const node of cluster.nodes) {
    const cidr = podCidrs.get(node.name) ?? "";
    const conflist = JSON.stringify({
      cniVersion: "0.4.0",
      name: "ha-nginx-e2e",
      plugins: [
        { type: "bridge", bridge: "cni0", isGateway: true, ipMasq: true, hairpinMode: true, ipam: { type: "host-local", ranges: [[{ subnet: cidr }]], routes: [{ dst: "0.0.0.0/0" }] } },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    });
    await cluster.exec(node, ["sh", "-c", "mkdir -p /etc/cni/net.d && cat > /etc/cni/net.d/10-ha-nginx-e2e.conflist"], { input: conflist });
    for (const other of cluster.nodes) {
      if (other.name === node.name) continue;
      await cluster.exec(node, ["ip", "route", "replace", podCidrs.get(other.name) ?? "", "via", other.address]);
    }
  }
  await cluster.kubectl(["wait", "--for=condition=Ready", "nodes", "--all", "--timeout=180s"], { timeoutMs: 200_000 });
}

async function waitForPodCidr(cluster: KindCluster, node: KindNode): Promise<string> {
  const deadline = performance.now() + 120_000;
  for (;;) {
    const result = await cluster.kubectl(["get", "node", node.name, "-o", "jsonpath={.spec.podCIDR}"], { isFailureExpected: true });
    if (result.code === 0 && result.stdout.trim() !== "") return result.stdout.trim();
    if (performance.now() > deadline) throw new Error(`node ${node.name} got no podCIDR within 120 s: ${result.stderr}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 1000));
  }
}

async function collectDiagnostics(cluster: string, dir: string): Promise<string> {
  const logs = join(dir, "logs");
  await run(kindBinary(), ["export", "logs", logs, "--name", cluster], { isFailureExpected: true, timeoutMs: 120_000 });
  const kubelet = await run("sh", ["-c", `tail -n 40 ${logs}/*/kubelet.log 2>/dev/null; tail -n 20 ${logs}/*/containerd.log 2>/dev/null`], { isFailureExpected: true });
  return `kind logs (last lines):\n${kubelet.stdout}`;
}
