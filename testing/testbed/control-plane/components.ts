// What each component of the control plane runs with: its ports and URLs, its kubeconfig, its log file and its flags.
import { mkdir } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import type { TestBedBinaries } from "../binaries.js";
import { writeKubeconfig } from "../kubeconfig.js";
import { createControlPlanePki, serviceClusterIpRange, type ControlPlanePki } from "../pki.js";
import type { Component, ComponentName, ComponentProcesses } from "./processes.js";

// Appended to the defaults, so a later flag overrides an earlier one (e.g. a shorter --node-monitor-grace-period).
export interface ExtraComponentArgs {
  readonly apiServerArgs?: readonly string[];
  readonly controllerManagerArgs?: readonly string[];
  readonly schedulerArgs?: readonly string[];
}

// Controllers for volumes, autoscaling and dynamic resources have nothing to do here and only cost CPU. Everything a
// Deployment, a DaemonSet, a lost node or a garbage-collected owner needs stays on.
const disabledControllers = [
  "persistentvolume-attach-detach-controller",
  "persistentvolume-binder-controller",
  "persistentvolume-expander-controller",
  "persistentvolume-protection-controller",
  "persistentvolumeclaim-protection-controller",
  "ephemeral-volume-controller",
  "volumeattributesclass-protection-controller",
  "horizontal-pod-autoscaler-controller",
  "resourceclaim-controller",
  "resourcepoolstatusrequest-controller",
  "device-taint-eviction-controller",
  "storage-version-migrator-controller",
  "node-ipam-controller",
];

// All ports are held open at once, so the kernel cannot hand out the same one twice.
async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      const server = createServer();
      return new Promise<typeof server>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve(server));
      });
    }),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

// Where everything lives: the PKI, the ports and URLs, each component's kubeconfig and log.
export interface ControlPlaneLayout {
  readonly pki: ControlPlanePki;
  readonly apiPort: number;
  readonly server: string;
  readonly etcdUrl: string;
  readonly etcdPeerUrl: string;
  readonly controllerManagerPort: number;
  readonly schedulerPort: number;
  readonly kubeconfigs: { readonly admin: string; readonly controllerManager: string; readonly scheduler: string };
  readonly logs: Readonly<Record<ComponentName, string>>;
}

export async function prepareLayout(dir: string): Promise<ControlPlaneLayout> {
  const pki = await createControlPlanePki(join(dir, "pki"));
  const [apiPort, etcdClientPort, etcdPeerPort, controllerManagerPort, schedulerPort] = await freeLoopbackPorts(5);
  if (
    apiPort === undefined ||
    etcdClientPort === undefined ||
    etcdPeerPort === undefined ||
    controllerManagerPort === undefined ||
    schedulerPort === undefined
  ) {
    throw new Error("could not reserve five loopback ports");
  }
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfigs = await writeComponentKubeconfigs(join(dir, "kubeconfigs"), server, pki);
  return {
    pki,
    apiPort,
    server,
    etcdUrl: `http://127.0.0.1:${etcdClientPort}`,
    etcdPeerUrl: `http://127.0.0.1:${etcdPeerPort}`,
    controllerManagerPort,
    schedulerPort,
    kubeconfigs,
    logs: {
      etcd: join(dir, "etcd.log"),
      "kube-apiserver": join(dir, "kube-apiserver.log"),
      "kube-controller-manager": join(dir, "kube-controller-manager.log"),
      "kube-scheduler": join(dir, "kube-scheduler.log"),
    },
  };
}

async function writeComponentKubeconfigs(kubeconfigDir: string, server: string, pki: ControlPlanePki): Promise<ControlPlaneLayout["kubeconfigs"]> {
  await mkdir(kubeconfigDir, { mode: 0o700 });
  const kubeconfigFor = (name: string, pair: { certFile: string; keyFile: string }): Promise<string> =>
    writeKubeconfig(join(kubeconfigDir, `${name}.kubeconfig`), {
      server,
      caFile: pki.ca.certFile,
      userName: name,
      credentials: { kind: "client-certificate", ...pair },
    });
  const [admin, controllerManager, scheduler] = await Promise.all([
    kubeconfigFor("admin", pki.admin),
    kubeconfigFor("kube-controller-manager", pki.controllerManager),
    kubeconfigFor("kube-scheduler", pki.scheduler),
  ]);
  return { admin, controllerManager, scheduler };
}

export interface Components {
  readonly etcd: Component;
  readonly apiServer: Component;
  readonly controllerManager: Component;
  readonly scheduler: Component;
}

export function defineComponents(processes: ComponentProcesses, binaries: TestBedBinaries, layout: ControlPlaneLayout, dir: string, options: ExtraComponentArgs): Components {
  const { kubeconfigs, logs } = layout;
  return {
    etcd: processes.define("etcd", binaries.etcd, etcdArgs(dir, layout), logs.etcd),
    apiServer: processes.define("kube-apiserver", binaries.kubeApiserver, apiServerArgs(dir, layout, options.apiServerArgs ?? []), logs["kube-apiserver"]),
    controllerManager: processes.define(
      "kube-controller-manager",
      binaries.kubeControllerManager,
      controllerManagerArgs(dir, layout, options.controllerManagerArgs ?? []),
      logs["kube-controller-manager"],
    ),
    scheduler: processes.define(
      "kube-scheduler",
      binaries.kubeScheduler,
      [...delegatedArgs(layout.pki, kubeconfigs.scheduler, layout.schedulerPort, join(dir, "scheduler-certs")), ...(options.schedulerArgs ?? [])],
      logs["kube-scheduler"],
    ),
  };
}

function etcdArgs(dir: string, layout: ControlPlaneLayout): string[] {
  const { etcdUrl, etcdPeerUrl } = layout;
  return [
    "--name=test-bed",
    `--data-dir=${join(dir, "etcd-data")}`,
    `--listen-client-urls=${etcdUrl}`,
    `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=${etcdPeerUrl}`,
    `--initial-advertise-peer-urls=${etcdPeerUrl}`,
    `--initial-cluster=test-bed=${etcdPeerUrl}`,
    // Durability is worthless in a temp dir that dies with the test; fsync stalls are not.
    "--unsafe-no-fsync=true",
    "--quota-backend-bytes=268435456",
    "--log-level=warn",
  ];
}

function apiServerArgs(dir: string, layout: ControlPlaneLayout, extra: readonly string[]): string[] {
  const { pki } = layout;
  return [
    `--etcd-servers=${layout.etcdUrl}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${layout.apiPort}`,
    `--cert-dir=${join(dir, "apiserver-certs")}`,
    `--tls-cert-file=${pki.apiServer.certFile}`,
    `--tls-private-key-file=${pki.apiServer.keyFile}`,
    `--client-ca-file=${pki.ca.certFile}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${pki.serviceAccount.publicKeyFile}`,
    `--service-account-signing-key-file=${pki.serviceAccount.privateKeyFile}`,
    `--service-cluster-ip-range=${serviceClusterIpRange}`,
    "--authorization-mode=Node,RBAC",
    // As kubeadm does: a node's credentials may only touch that node and its own pods.
    "--enable-admission-plugins=NodeRestriction",
    "--allow-privileged=true",
    // The priority-and-fairness machinery costs CPU and only matters under overload we never create.
    "--enable-priority-and-fairness=false",
    // Endpoints may not hold a loopback address, so the lease reconciler would only log errors.
    "--endpoint-reconciler-type=none",
    "--profiling=false",
    ...extra,
  ];
}

// The flags the controller manager and the scheduler share: they authenticate and authorize through the API server.
function delegatedArgs(pki: ControlPlanePki, kubeconfig: string, port: number, certDir: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    // The CA is given, so there is nothing to look up; the lookup would only log, every few seconds, that no
    // front-proxy CA exists (this test bed has no aggregated APIs).
    `--client-ca-file=${pki.ca.certFile}`,
    "--authentication-skip-lookup=true",
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
    `--cert-dir=${certDir}`,
    "--leader-elect=false",
    "--profiling=false",
  ];
}

function controllerManagerArgs(dir: string, layout: ControlPlaneLayout, extra: readonly string[]): string[] {
  const { pki } = layout;
  return [
    ...delegatedArgs(pki, layout.kubeconfigs.controllerManager, layout.controllerManagerPort, join(dir, "kcm-certs")),
    `--controllers=*,${disabledControllers.map((c) => `-${c}`).join(",")}`,
    "--use-service-account-credentials=true",
    `--service-account-private-key-file=${pki.serviceAccount.privateKeyFile}`,
    `--root-ca-file=${pki.ca.certFile}`,
    `--cluster-signing-cert-file=${pki.ca.certFile}`,
    `--cluster-signing-key-file=${pki.ca.keyFile}`,
    `--service-cluster-ip-range=${serviceClusterIpRange}`,
    "--cluster-name=ha-nginx-test-bed",
    ...extra,
  ];
}
