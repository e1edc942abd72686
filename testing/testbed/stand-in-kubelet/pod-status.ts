// The status a pod's kubelet reports: phase, addresses, the conditions it owns and each container's state.
import type { V1Pod, V1PodCondition } from "@kubernetes/client-node";
import type { ContainerRunner } from "./container-lifecycle.js";
import { rfc3339 } from "./time.js";

type OwnedCondition = "PodReadyToStartContainers" | "Initialized" | "Ready" | "ContainersReady";

const ownedConditions: ReadonlySet<string> = new Set<OwnedCondition>(["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"]);

interface ConditionJson {
  readonly type: string;
  readonly status: string;
  readonly lastTransitionTime: string | null;
  readonly lastProbeTime: string | null;
  readonly reason?: string;
  readonly message?: string;
}

// The conditions this kubelet owns, each with the time its status last changed.
export class OwnedConditions {
  private readonly transitions = new Map<string, { status: string; time: string }>();

  set(type: OwnedCondition, status: boolean): ConditionJson {
    const value = status ? "True" : "False";
    const previous = this.transitions.get(type);
    const time = previous?.status === value ? previous.time : rfc3339();
    this.transitions.set(type, { status: value, time });
    return { type, status: value, lastTransitionTime: time, lastProbeTime: null };
  }

  // True when the pod in the API says otherwise about a condition set here.
  hasDrifted(conditions: readonly V1PodCondition[]): boolean {
    return conditions.some((condition) => {
      const ours = this.transitions.get(condition.type);
      return ownedConditions.has(condition.type) && ours !== undefined && ours.status !== condition.status;
    });
  }
}

export interface PodStatusInput {
  readonly pod: V1Pod;
  readonly address: string;
  readonly phase: string;
  readonly reason: string | undefined;
  readonly message: string | undefined;
  readonly startTime: string;
  readonly isInitialized: boolean;
  readonly isTerminating: boolean;
  readonly initContainers: readonly ContainerRunner[];
  readonly containers: readonly ContainerRunner[];
}

export function buildPodStatus(input: PodStatusInput, owned: OwnedConditions): Record<string, unknown> {
  const { pod, address } = input;
  const sidecars = input.initContainers.filter((container) => !container.isInit);
  const containersReady = input.containers.length > 0
    && [...sidecars, ...input.containers].every((container) => container.isReady && "running" in container.state);
  const gates = (pod.spec?.readinessGates ?? []).every((gate) =>
    (pod.status?.conditions ?? []).some((condition) => condition.type === gate.conditionType && condition.status === "True"));
  const hasSandbox = input.phase !== "Pending" || input.isInitialized || input.containers.some((container) => !("waiting" in container.state));
  // A merge patch replaces the whole list, so the conditions others own (PodScheduled, readiness gates,
  // DisruptionTarget) are carried over from the latest pod.
  const conditions = [
    owned.set("PodReadyToStartContainers", hasSandbox),
    owned.set("Initialized", input.isInitialized),
    owned.set("Ready", containersReady && gates && !input.isTerminating),
    owned.set("ContainersReady", containersReady),
    ...(pod.status?.conditions ?? []).filter((condition) => !ownedConditions.has(condition.type)).map(conditionJson),
  ];
  return {
    phase: input.phase,
    reason: input.reason ?? null,
    message: input.message ?? null,
    hostIP: address,
    hostIPs: [{ ip: address }],
    podIP: address,
    podIPs: [{ ip: address }],
    startTime: input.startTime,
    conditions,
    initContainerStatuses: input.initContainers.map(containerStatus),
    containerStatuses: input.containers.map(containerStatus),
  };
}

function containerStatus(container: ContainerRunner): Record<string, unknown> {
  return {
    name: container.spec.name,
    image: container.spec.image,
    imageID: `testbed://${container.spec.image ?? ""}`,
    ...("waiting" in container.state ? {} : { containerID: container.containerId() }),
    ready: container.isReady && "running" in container.state,
    started: container.isStarted && "running" in container.state,
    restartCount: container.restartCount,
    state: container.state,
    lastState: container.lastState ?? {},
  };
}

function conditionJson(condition: V1PodCondition): ConditionJson {
  const time = (date: Date | undefined): string | null => (date === undefined || date === null ? null : rfc3339(new Date(date)));
  return {
    type: condition.type,
    status: condition.status,
    lastTransitionTime: time(condition.lastTransitionTime),
    lastProbeTime: time(condition.lastProbeTime),
    ...(condition.reason === undefined ? {} : { reason: condition.reason }),
    ...(condition.message === undefined ? {} : { message: condition.message }),
  };
}
