// A lab host as a Kubernetes Node: registered with labels, kept Ready by status updates and Lease renewals.
import { V1MicroTime, type CoordinationV1Api, type CoreV1Api } from "@kubernetes/client-node";
import { arch, release } from "node:os";
import type { ApiRelay } from "../api-relay.js";
import { apiCode, errorText, mergePatch } from "./api-calls.js";
import type { ProbeHelper } from "./probe-helper.js";
import { rfc3339 } from "./time.js";

export interface NodeHost {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
}

export interface NodeState {
  readonly name: string;
  readonly host: NodeHost;
  readonly probeHelper: ProbeHelper;
  relay: ApiRelay | undefined;
  heartbeat: NodeJS.Timeout | undefined;
  isRunning: boolean;
  readyTransition: string;
  uid: string | undefined;
}

export interface NodeHeartbeatOptions {
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;
  readonly labels: Readonly<Record<string, string>>;
  readonly heartbeatMs: number;
  readonly kubeletVersion: string;
  readonly isStopped: () => boolean;
  // The Node object was deleted from the API: its pods must stop, as a kubelet's do.
  readonly onNodeDeleted: (node: NodeState) => Promise<void>;
  readonly log: (line: string) => void;
}

const leaseNamespace = "kube-node-lease";
const leaseDurationSeconds = 40;

function nodeArch(): string {
  const map: Readonly<Record<string, string>> = { x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x" };
  return map[arch()] ?? arch();
}

export class NodeHeartbeat {
  constructor(private readonly options: NodeHeartbeatOptions) {}

  // Registers the node, reports it Ready at once, then again every heartbeatMs.
  async start(node: NodeState): Promise<void> {
    await this.registerNode(node);
    await this.beat(node);
    node.heartbeat = setInterval(() => void this.beat(node), this.options.heartbeatMs);
  }

  stop(node: NodeState): void {
    if (node.heartbeat !== undefined) clearInterval(node.heartbeat);
    node.heartbeat = undefined;
  }

  private async registerNode(node: NodeState): Promise<void> {
    const { core } = this.options;
    const labels = {
      "kubernetes.io/hostname": node.name,
      "kubernetes.io/os": "linux",
      "kubernetes.io/arch": nodeArch(),
      "ha-nginx.dev/testbed-netns": node.host.netns,
      ...this.options.labels,
    };
    try {
      const created = await core.createNode({ body: { metadata: { name: node.name, labels }, spec: {} } });
      node.uid = created.metadata?.uid;
    } catch (error) {
      if (apiCode(error) !== 409) throw error;
      const patched = await core.patchNode({ name: node.name, body: { metadata: { labels } } }, mergePatch);
      node.uid = patched.metadata?.uid;
    }
  }

  private nodeStatus(node: NodeState): Record<string, unknown> {
    const now = rfc3339();
    const condition = (type: string, status: string, reason: string, message: string, transition: string): Record<string, string> =>
      ({ type, status, reason, message, lastHeartbeatTime: now, lastTransitionTime: transition });
    const resources = { cpu: "4", memory: "8Gi", pods: "110", "ephemeral-storage": "100Gi" };
    return {
      addresses: [{ type: "InternalIP", address: node.host.address }, { type: "Hostname", address: node.name }],
      capacity: resources,
      allocatable: resources,
      conditions: [
        condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", node.readyTransition),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", node.readyTransition),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", node.readyTransition),
        condition("Ready", "True", "KubeletReady", "test bed stand-in kubelet is posting ready status", node.readyTransition),
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: node.host.netns,
        systemUUID: node.uid ?? node.name,
        bootID: node.uid ?? node.name,
        kernelVersion: release(),
        osImage: "ha-nginx test bed (network namespace node)",
        containerRuntimeVersion: "testbed://0.1.0",
        kubeletVersion: this.options.kubeletVersion,
        kubeProxyVersion: "",
        operatingSystem: "linux",
        architecture: nodeArch(),
      },
    };
  }

  private async beat(node: NodeState): Promise<void> {
    if (!node.isRunning || this.options.isStopped()) return;
    try {
      await this.options.core.patchNodeStatus({ name: node.name, body: { status: this.nodeStatus(node) } }, mergePatch);
    } catch (error) {
      if (apiCode(error) === 404) {
        this.options.log(`node ${node.name} was deleted from the API: stopping its pods`);
        await this.options.onNodeDeleted(node);
        return;
      }
      this.options.log(`node ${node.name}: status update failed: ${errorText(error)}`);
    }
    await this.renewLease(node);
  }

  private async renewLease(node: NodeState): Promise<void> {
    const { coordination, log } = this.options;
    const renewTime = new V1MicroTime();
    try {
      await coordination.patchNamespacedLease({ name: node.name, namespace: leaseNamespace, body: { spec: { holderIdentity: node.name, renewTime: renewTime.toISOString() } } }, mergePatch);
    } catch (error) {
      if (apiCode(error) !== 404) {
        log(`node ${node.name}: lease renewal failed: ${errorText(error)}`);
        return;
      }
      try {
        await coordination.createNamespacedLease({
          namespace: leaseNamespace,
          body: {
            metadata: { name: node.name, ownerReferences: node.uid === undefined ? [] : [{ apiVersion: "v1", kind: "Node", name: node.name, uid: node.uid }] },
            spec: { holderIdentity: node.name, leaseDurationSeconds, renewTime },
          },
        });
      } catch (createError) {
        log(`node ${node.name}: lease creation failed: ${errorText(createError)}`);
      }
    }
  }
}
