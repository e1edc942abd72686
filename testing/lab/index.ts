/**
 * The network-namespace lab: a small L2 segment of namespace "hosts" for namespace tests, the Kubernetes test bed,
 * the benchmarks and the demo.
 *
 * Shape: a hub namespace `<id>-hub` holds a bridge `br0`; every node `<id>-n1..nN` and the client `<id>-client` is
 * a namespace whose only interface, `eth0`, is one end of a veth pair whose other end is a bridge port in the hub.
 * Nodes get 10.77.0.(10+i)/24 and fd77::(10+i)/64, the client 10.77.0.100 and fd77::100.
 *
 * Simplifications, and why:
 * - The bridge lives in its own namespace, not in the root one: the lab never touches the machine's interfaces,
 *   addresses, routes or firewall, so it cannot cut the machine off its network, and two labs (two test files, a demo
 *   next to a test run) cannot collide, because every name is scoped by a random run id. Veth pairs are created
 *   from inside the hub with the peer placed directly in its namespace, so no device ever appears in the root
 *   namespace, not even briefly. The cost: nothing in the root namespace can reach the lab; run helpers inside it
 *   (`exec`, `spawn`, `httpGet`, the probe).
 * - One flat segment, no router: VRRP is a single-link protocol, so nothing more is needed. Multicast snooping is off,
 *   so the bridge floods 224.0.0.18 and ff02::12 like a plain switch.
 * - A link cut is the hub's port going down (the node sees carrier loss) or, keeping the carrier, a bridge filter in
 *   the hub; random loss is a bridge filter too; a split brain is nftables inside the two nodes, so the client still
 *   reaches both. There is no delay or jitter: this kernel has no netem.
 * - Cleanup: `destroy()`, an exit hook for every live lab, and `sweepLeftoverLabs()` for labs whose process died by
 *   SIGKILL (their state files under /run/ha-nginx-lab name the owner's pid).
 * Root is required (namespaces, nftables).
 */
export { createLab, addressesOn, type LabOptions } from "./lab.js";
export { startNginx, nginxConfig, nginxBinary, type NginxOptions, type NginxConfigOptions, type NginxProcess } from "./nginx.js";
export { summarizeProbe } from "./probe.js";
export { sweepLeftoverLabs, labStateDir } from "./registry.js";
export { waitFor, type WaitOptions } from "./wait.js";
export type { CommandResult, RunOptions } from "./command.js";
export type {
  CutOptions, DegradeOptions, HttpAnswer, Lab, LabAddress, LabHost, LabSpawnOptions, OutageWindow, Probe, ProbeOptions, ProbeReport,
} from "./types.js";
