import { spawn as spawnProcess, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { runCommand, type CommandResult, type RunOptions } from "./command.js";
import { startProbe } from "./probe.js";
import {
  deleteNamespace, deleteNamespaceSync, killQuietly, processStartTicks, registerLab, unregisterLab,
} from "./registry.js";
import type { CutOptions, DegradeOptions, HttpAnswer, Lab, LabAddress, LabHost, LabSpawnOptions, Probe, ProbeOptions } from "./types.js";

export interface LabOptions {
  readonly nodes: number;
  /** Start of the run id; 6 random hex digits follow. Keep it short: the id prefixes every namespace name. */
  readonly idPrefix?: string;
}

const subnetPrefix = "10.77.0.";
const subnet6Prefix = "fd77::";
const prefixLength = 24;
const prefixLength6 = 64;
const bridge = "br0";
const ifname = "eth0";
// Node addresses are .11 to .99: the client has .100, and .200 and up are left for VIPs.
const maxNodes = 89;
const termGraceMs = 3_000;

// What keepalived users set on their nodes: bind to a VIP before holding it, answer ARP only for addresses on the
// asking interface and from the best source, and IPv6 on, without DAD, so an IPv6 VIP is usable at once.
const nodeSysctls = [
  "net.ipv4.ip_nonlocal_bind=1",
  "net.ipv6.ip_nonlocal_bind=1",
  "net.ipv4.conf.all.arp_ignore=1",
  "net.ipv4.conf.all.arp_announce=2",
  "net.ipv6.conf.all.disable_ipv6=0",
  "net.ipv6.conf.default.disable_ipv6=0",
  "net.ipv6.conf.all.accept_dad=0",
  "net.ipv6.conf.default.accept_dad=0",
];

export async function createLab(opts: LabOptions): Promise<Lab> {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > maxNodes) {
    throw new Error(`a lab has 1 to ${maxNodes} nodes, not ${opts.nodes}`);
  }
  const id = `${opts.idPrefix ?? "hn"}${randomBytes(3).toString("hex")}`;
  if (!/^[a-z][a-z0-9]{0,15}$/.test(id)) {
    throw new Error(`lab id ${JSON.stringify(id)} must be lowercase letters and digits, at most 16 characters`);
  }
  const lab = new NamespaceLab(id, opts.nodes);
  try {
    await lab.build();
  } catch (err) {
    await lab.destroy();
    throw err;
  }
  return lab;
}

function hostAt(id: string, name: string, octet: number): LabHost {
  return {
    name,
    netns: `${id}-${name}`,
    address: `${subnetPrefix}${octet}`,
    address6: `${subnet6Prefix}${octet}`,
    ifname,
    // Locally administered and fixed, so rules and captures can name a host by its MAC.
    mac: `02:77:00:00:00:${octet.toString(16).padStart(2, "0")}`,
  };
}

class NamespaceLab implements Lab {
  readonly subnet = `${subnetPrefix}0/${prefixLength}`;
  readonly prefixLength = prefixLength;
  readonly subnet6 = `${subnet6Prefix}/${prefixLength6}`;
  readonly prefixLength6 = prefixLength6;
  readonly nodes: readonly LabHost[];
  readonly client: LabHost;
  readonly hubNetns: string;
  readonly tmpDir: string;
  private readonly children = new Set<ChildProcess>();
  private destroying: Promise<void> | undefined;
  private isDestroyed = false;
  private isTornDown = false;

  constructor(readonly id: string, nodeCount: number) {
    this.nodes = Array.from({ length: nodeCount }, (_, i) => hostAt(id, `n${i + 1}`, 10 + i + 1));
    this.client = hostAt(id, "client", 100);
    this.hubNetns = `${id}-hub`;
    this.tmpDir = mkdtempSync(join(tmpdir(), `ha-nginx-lab-${id}-`));
    // Registered before anything exists, so that a failure halfway through still leaves a record to clean up.
    registerLab(this, {
      pid: process.pid,
      pidStartTicks: processStartTicks(process.pid),
      namespaces: this.namespaces(),
      tmpDir: this.tmpDir,
    });
  }

  private namespaces(): string[] {
    return [this.hubNetns, ...this.nodes.map((n) => n.netns), this.client.netns];
  }

  private allHosts(): LabHost[] {
    return [...this.nodes, this.client];
  }

  async build(): Promise<void> {
    for (const netns of this.namespaces()) {
      await ip(["netns", "add", netns]);
    }
    // The hub has no addresses; without IPv6 on its ports it stays silent (no MLD, no router solicitations).
    await sysctl(this.hubNetns, ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
    // Snooping off: the bridge floods every multicast group (VRRP's 224.0.0.18 and ff02::12) to every port, as a
    // plain switch without IGMP snooping does, instead of depending on membership reports.
    await ipBatch(this.hubNetns, [
      `link add ${bridge} type bridge mcast_snooping 0 stp_state 0 forward_delay 0`,
      `link set ${bridge} up`,
    ]);
    for (const host of this.allHosts()) {
      await this.attach(host);
    }
  }

  private async attach(host: LabHost): Promise<void> {
    await sysctl(host.netns, nodeSysctls);
    // Created from inside the hub with the peer placed straight into the host's namespace: neither end ever exists
    // in the root namespace, not even for a moment.
    await ipBatch(this.hubNetns, [
      `link add ${hubPort(host)} type veth peer name ${ifname} address ${host.mac} netns ${host.netns}`,
    ]);
    await sysctl(host.netns, [`net.ipv6.conf.${ifname}.accept_dad=0`, `net.ipv6.conf.${ifname}.disable_ipv6=0`]);
    await ipBatch(host.netns, [
      "link set lo up",
      `addr add ${host.address}/${prefixLength} dev ${ifname}`,
      `addr add ${host.address6}/${prefixLength6} dev ${ifname} nodad`,
      `link set ${ifname} up`,
    ]);
    await ipBatch(this.hubNetns, [`link set ${hubPort(host)} master ${bridge}`, `link set ${hubPort(host)} up`]);
  }

  vip(index = 0): { readonly address: string; readonly address6: string } {
    if (!Number.isInteger(index) || index < 0 || index > 50) throw new Error(`vip index ${index} is not in 0..50`);
    return { address: `${subnetPrefix}${200 + index}`, address6: `${subnet6Prefix}${200 + index}` };
  }

  exec(host: LabHost, cmd: string, args: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    this.assertAlive();
    return runCommand("ip", ["netns", "exec", host.netns, cmd, ...args], opts);
  }

  spawn(host: LabHost, cmd: string, args: readonly string[], opts: LabSpawnOptions = {}): ChildProcess {
    this.assertAlive();
    // `ip netns exec` execs the command, so the child's pid is the command's; detached makes it a group leader,
    // and killing the group takes its children (nginx workers, keepalived's checkers) along.
    const child = spawnProcess("ip", ["netns", "exec", host.netns, cmd, ...args], {
      detached: true,
      stdio: opts.stdio ?? ["ignore", "pipe", "pipe"],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    child.once("error", () => this.children.delete(child));
    return child;
  }

  async httpGet(host: LabHost, url: string, opts: { readonly timeoutMs?: number } = {}): Promise<HttpAnswer> {
    const timeoutMs = opts.timeoutMs ?? 2_000;
    const marker = "\n--ha-nginx-lab-status:";
    const result = await this.exec(host, "curl", [
      "--silent", "--globoff", "--noproxy", "*", "--max-time", (timeoutMs / 1000).toFixed(3),
      "--write-out", `${marker}%{http_code}`, url,
    ], { timeoutMs: timeoutMs + 5_000 });
    const at = result.stdout.lastIndexOf(marker);
    if (at < 0) return { status: 0, body: "" };
    const status = Number(result.stdout.slice(at + marker.length).trim());
    return { status: Number.isInteger(status) ? status : 0, body: result.stdout.slice(0, at) };
  }

  async cutLink(host: LabHost, opts: CutOptions = {}): Promise<void> {
    this.assertAlive();
    if (opts.shouldKeepCarrier === true) {
      // The bridge drops the port's frames both ways; the node's link stays up, as behind a failed switch path.
      await this.filterPort(host, "drop");
      return;
    }
    await ip(["-n", this.hubNetns, "link", "set", hubPort(host), "down"]);
  }

  async degradeLink(host: LabHost, opts: DegradeOptions): Promise<void> {
    this.assertAlive();
    const percent = opts.lossPercent;
    if (!Number.isInteger(percent) || percent < 0 || percent > 100) {
      throw new Error(`lossPercent must be an integer from 0 to 100, not ${percent}`);
    }
    // No netem here (the kernel lacks sch_netem), so loss is a random drop in the bridge, each direction apart.
    await this.filterPort(host, `numgen random mod 100 < ${percent} drop`);
  }

  async restoreLink(host: LabHost): Promise<void> {
    this.assertAlive();
    // Undoes every kind of cut; the table is absent after a carrier cut, so its deletion may fail.
    await runCommand("ip", ["netns", "exec", this.hubNetns, "nft", "delete", "table", "bridge", portTable(host)]);
    await ip(["-n", this.hubNetns, "link", "set", hubPort(host), "up"]);
  }

  /** Replaces the hub's filter for the host's port with one applying `verdict` to its frames both ways. */
  private async filterPort(host: LabHost, verdict: string): Promise<void> {
    const port = hubPort(host);
    const table = portTable(host);
    const script = [
      // Declaring the table first makes the delete valid whether or not it existed: one atomic replace.
      `table bridge ${table}`,
      `delete table bridge ${table}`,
      `table bridge ${table} {`,
      "  chain forward {",
      "    type filter hook forward priority -10; policy accept;",
      `    iifname "${port}" ${verdict}`,
      `    oifname "${port}" ${verdict}`,
      "  }",
      "}",
      "",
    ].join("\n");
    await runCommand("ip", ["netns", "exec", this.hubNetns, "nft", "-f", "-"], { input: script, check: true });
  }

  async isolatePeers(a: LabHost, b: LabHost): Promise<void> {
    this.assertAlive();
    await this.dropFrom(a, b);
    await this.dropFrom(b, a);
  }

  async healPeers(a: LabHost, b: LabHost): Promise<void> {
    this.assertAlive();
    for (const [host, peer] of [[a, b], [b, a]] as const) {
      // Either table may be missing (healing twice, or never isolated): healing is idempotent.
      await this.exec(host, "nft", ["delete", "table", "inet", isolationTable(peer)]);
      await this.exec(host, "nft", ["delete", "table", "arp", isolationTable(peer)]);
    }
  }

  /**
   * Inside `host`, drops everything from and to `peer`. Matching the peer's MAC catches what it sends from any
   * address (a VIP it holds, its link-local IPv6 source for VRRPv3 over IPv6, multicast); the address rules catch what
   * `host` sends, where the destination MAC is not known yet at the output hook.
   */
  private async dropFrom(host: LabHost, peer: LabHost): Promise<void> {
    const peer6 = [peer.address6, linkLocalFromMac(peer.mac)].join(", ");
    const table = isolationTable(peer);
    const script = [
      `table inet ${table} {`,
      "  chain input {",
      "    type filter hook input priority -10; policy accept;",
      `    ether saddr ${peer.mac} drop`,
      `    ip saddr ${peer.address} drop`,
      `    ip6 saddr { ${peer6} } drop`,
      "  }",
      "  chain output {",
      "    type filter hook output priority -10; policy accept;",
      `    ip daddr ${peer.address} drop`,
      `    ip6 daddr { ${peer6} } drop`,
      "  }",
      "}",
      // ARP too, or the two would still resolve each other and an `arping` would claim they are connected.
      `table arp ${table} {`,
      "  chain input {",
      "    type filter hook input priority -10; policy accept;",
      `    arp saddr ether ${peer.mac} drop`,
      "  }",
      "}",
      "",
    ].join("\n");
    await this.exec(host, "nft", ["-f", "-"], { input: script, check: true });
  }

  startProbe(url: string, opts?: ProbeOptions): Promise<Probe> {
    this.assertAlive();
    return startProbe(this, url, opts);
  }

  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    this.isDestroyed = true;
    await this.stopChildren();
    for (const netns of this.namespaces()) {
      await deleteNamespace(netns);
    }
    rmSync(this.tmpDir, { recursive: true, force: true });
    unregisterLab(this.id);
    this.isTornDown = true;
  }

  private async stopChildren(): Promise<void> {
    const running = [...this.children].filter((c) => c.exitCode === null && c.signalCode === null);
    const exited = running.map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) resolve();
      else c.once("exit", () => resolve());
    }));
    for (const child of running) signalGroup(child, "SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => { timer = setTimeout(resolve, termGraceMs); });
    await Promise.race([Promise.all(exited), graceOver]);
    clearTimeout(timer);
    // Also after a clean exit of the leader: a child it left behind still belongs to the group.
    for (const child of running) signalGroup(child, "SIGKILL");
    this.children.clear();
  }

  destroySync(): void {
    if (this.isTornDown) return;
    this.isDestroyed = true;
    this.isTornDown = true;
    for (const child of this.children) signalGroup(child, "SIGKILL");
    this.children.clear();
    for (const netns of this.namespaces()) deleteNamespaceSync(netns);
    rmSync(this.tmpDir, { recursive: true, force: true });
    unregisterLab(this.id);
  }

  private assertAlive(): void {
    if (this.isDestroyed) throw new Error(`lab ${this.id} is destroyed`);
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid !== undefined) killQuietly(-child.pid, signal);
}

function hubPort(host: LabHost): string {
  // Inside the hub only, so no run id is needed to keep it unique; "v-client" is well under IFNAMSIZ (15).
  return `v-${host.name}`;
}

function portTable(host: LabHost): string {
  return `lab_port_${host.name}`;
}

function isolationTable(peer: LabHost): string {
  return `lab_isolate_${peer.name}`;
}

/** The EUI-64 link-local address the kernel derives from a MAC (addr_gen_mode eui64, the default). */
function linkLocalFromMac(mac: string): string {
  const bytes = mac.split(":").map((part) => parseInt(part, 16));
  const [b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0] = bytes;
  const group = (hi: number, lo: number): string => ((hi << 8) | lo).toString(16);
  return `fe80::${group(b0 ^ 0x02, b1)}:${group(b2, 0xff)}:${group(0xfe, b3)}:${group(b4, b5)}`;
}

async function ip(args: readonly string[]): Promise<void> {
  await runCommand("ip", args, { check: true });
}

async function ipBatch(netns: string, commands: readonly string[]): Promise<void> {
  await runCommand("ip", ["-n", netns, "-batch", "-"], { input: `${commands.join("\n")}\n`, check: true });
}

async function sysctl(netns: string, settings: readonly string[]): Promise<void> {
  await runCommand("ip", ["netns", "exec", netns, "sysctl", "-q", "-w", ...settings], { check: true });
}

const ipAddrSchema = z.array(z.object({
  ifname: z.string(),
  addr_info: z.array(z.object({
    family: z.enum(["inet", "inet6"]),
    local: z.string(),
    prefixlen: z.number().int(),
    scope: z.string(),
  })),
}));

/** The addresses on the host's `eth0`, as the kernel reports them (`ip -j addr`). */
export async function addressesOn(lab: Lab, host: LabHost): Promise<LabAddress[]> {
  const result = await lab.exec(host, "ip", ["-j", "addr", "show", "dev", host.ifname], { check: true });
  const parsed = ipAddrSchema.parse(JSON.parse(result.stdout));
  return parsed.flatMap((link) => link.addr_info.map((a) => ({
    family: a.family,
    address: a.local,
    prefixLength: a.prefixlen,
    scope: a.scope,
  })));
}
