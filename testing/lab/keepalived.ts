import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";

import type { Lab, LabHost } from "./types.js";

// Real keepalived (Debian's 2.2.7) run inside lab nodes: the reference our agent must interoperate with and beat.

export type KeepalivedTransport =
  | { readonly mode: "multicast" }
  // unicast_src_ip defaults to the host's own address of the VIPs' family.
  | { readonly mode: "unicast"; readonly peers: readonly string[]; readonly sourceAddress?: string };

export type KeepalivedPreemption =
  | { readonly mode: "always" }
  | { readonly mode: "never" }
  | { readonly mode: "delayed"; readonly delayMs: number };

// keepalived reads vrrp_script interval and timeout as whole seconds (2.2.7 vrrp_parser.c).
export interface KeepalivedTrackScript {
  readonly name?: string;
  readonly script: string;
  readonly intervalSeconds: number;
  readonly timeoutSeconds?: number;
  readonly fall?: number;
  readonly rise?: number;
  // 0: a failing script puts the instance in FAULT; otherwise added to the priority while failing (negative) or
  // while succeeding (positive), keepalived semantics.
  readonly weight?: number;
}

// keepalived reads garp_master_delay and garp_master_refresh as whole seconds.
export interface KeepalivedGarp {
  readonly masterDelaySeconds?: number;
  readonly masterRepeat?: number;
  readonly masterRefreshSeconds?: number;
  readonly masterRefreshRepeat?: number;
}

// "default": keepalived's own choice (v3 IPv4 checksum over the pseudo-header with the real destination).
// "old-unicast": `old_unicast_checksum` (2.2.7): v3 unicast checksum uses 224.0.0.18 as the pseudo-header destination.
// "v3-as-v2": `v3_checksum_as_v2` (keepalived 2.2.8 and later only; 2.2.7 reports an unknown keyword): no pseudo-header.
export type KeepalivedChecksumMode = "default" | "old-unicast" | "v3-as-v2";

// What a vrrp_instance block has of its own; the other options are shared by every block of one daemon.
export interface KeepalivedInstance {
  readonly vrid: number;
  readonly priority: number;
  readonly vips: readonly string[];
  readonly instanceName?: string;
}

export interface KeepalivedOptions extends KeepalivedInstance {
  // More vrrp_instance blocks after the options' own, for one daemon serving many virtual routers.
  readonly instances?: readonly KeepalivedInstance[];
  readonly version?: 2 | 3;
  readonly state?: "MASTER" | "BACKUP";
  // v3 carries centiseconds (10 ms steps); v2 carries whole seconds.
  readonly advertIntervalMs?: number;
  readonly interface?: string;
  readonly transport?: KeepalivedTransport;
  // VRRPv2 `auth_type PASS`: at most 8 characters, keepalived truncates longer ones.
  readonly authPass?: string;
  readonly preemption?: KeepalivedPreemption;
  readonly garp?: KeepalivedGarp;
  readonly trackScript?: KeepalivedTrackScript;
  readonly checksum?: KeepalivedChecksumMode;
  readonly routerId?: string;
  // Raw lines for options this builder does not model (vrrp_strict, notify scripts, ...).
  readonly extraGlobalDefs?: readonly string[];
  readonly extraInstanceLines?: readonly string[];
}

export interface KeepalivedConfigInput extends KeepalivedOptions {
  readonly interface: string;
  readonly transport: KeepalivedTransport;
}

const maxPassLength = 8;

function seconds(ms: number): string {
  return String(ms / 1000);
}

function isIpv6(address: string): boolean {
  return address.includes(":");
}

export function instanceNameOf(opts: Pick<KeepalivedInstance, "vrid" | "instanceName">): string {
  return opts.instanceName ?? `VI_${opts.vrid}`;
}

function instancesOf(opts: KeepalivedOptions): KeepalivedInstance[] {
  return [opts, ...(opts.instances ?? [])];
}

function validateInstance(instance: KeepalivedInstance): void {
  if (!Number.isInteger(instance.vrid) || instance.vrid < 1 || instance.vrid > 255) {
    throw new Error(`vrid ${instance.vrid} not in 1..255`);
  }
  if (!Number.isInteger(instance.priority) || instance.priority < 1 || instance.priority > 255) {
    throw new Error(`priority ${instance.priority} not in 1..255`);
  }
  if (instance.vips.length === 0) throw new Error("at least one VIP is required");
}

function validate(opts: KeepalivedConfigInput): void {
  const version = opts.version ?? 3;
  const intervalMs = opts.advertIntervalMs ?? 1000;
  const instances = instancesOf(opts);
  instances.forEach(validateInstance);
  const names = instances.map(instanceNameOf);
  if (new Set(names).size !== names.length) throw new Error(`vrrp_instance names must differ: ${names.join(", ")}`);
  // One family for the whole daemon: the unicast source address is chosen once, from it.
  const families = new Set(instances.flatMap((instance) => instance.vips.map(isIpv6)));
  if (families.size !== 1) throw new Error("VIPs must all be IPv4 or all IPv6");
  if (version === 2 && families.has(true)) throw new Error("VRRPv2 carries IPv4 VIPs only");
  if (version === 2 && (intervalMs % 1000 !== 0 || intervalMs < 1000)) {
    throw new Error(`VRRPv2 advert interval must be whole seconds, got ${intervalMs} ms`);
  }
  if (version === 3 && (intervalMs % 10 !== 0 || intervalMs < 10 || intervalMs > 40_950)) {
    throw new Error(`VRRPv3 advert interval must be 10..40950 ms in 10 ms steps, got ${intervalMs} ms`);
  }
  if (opts.authPass !== undefined && version !== 2) throw new Error("auth PASS exists only in VRRPv2");
  if (opts.authPass !== undefined && (opts.authPass.length === 0 || opts.authPass.length > maxPassLength)) {
    throw new Error(`auth PASS must be 1..${maxPassLength} characters`);
  }
  if (opts.preemption?.mode === "never" && opts.state === "MASTER") {
    throw new Error("keepalived ignores nopreempt unless the initial state is BACKUP");
  }
  if (opts.checksum === "old-unicast" && opts.transport.mode !== "unicast") {
    throw new Error("old_unicast_checksum applies to unicast only");
  }
}

function trackScriptBlock(track: KeepalivedTrackScript): string[] {
  const lines = [`vrrp_script ${track.name ?? "chk_nginx"} {`, `  script "${track.script.replaceAll('"', '\\"')}"`,
    `  interval ${track.intervalSeconds}`];
  if (track.timeoutSeconds !== undefined) lines.push(`  timeout ${track.timeoutSeconds}`);
  if (track.fall !== undefined) lines.push(`  fall ${track.fall}`);
  if (track.rise !== undefined) lines.push(`  rise ${track.rise}`);
  lines.push(`  weight ${track.weight ?? 0}`, "}");
  return lines;
}

export function keepalivedConfig(opts: KeepalivedConfigInput): string {
  validate(opts);
  const version = opts.version ?? 3;
  const global = ["global_defs {", `  router_id ${opts.routerId ?? "ha-nginx-lab"}`, `  vrrp_version ${version}`,
    "  script_user root", "  enable_script_security"];
  if (opts.checksum === "v3-as-v2") global.push("  v3_checksum_as_v2");
  global.push(...(opts.extraGlobalDefs ?? []).map((line) => `  ${line}`), "}");

  // Lines every vrrp_instance block carries the same.
  const shared = [`  advert_int ${seconds(opts.advertIntervalMs ?? 1000)}`];
  const preemption = opts.preemption ?? { mode: "always" };
  if (preemption.mode === "never") shared.push("  nopreempt");
  if (preemption.mode === "delayed") shared.push(`  preempt_delay ${seconds(preemption.delayMs)}`);
  if (opts.transport.mode === "unicast") {
    if (opts.transport.sourceAddress !== undefined) shared.push(`  unicast_src_ip ${opts.transport.sourceAddress}`);
    shared.push("  unicast_peer {", ...opts.transport.peers.map((peer) => `    ${peer}`), "  }");
    if (opts.checksum === "old-unicast") shared.push("  old_unicast_checksum");
  }
  if (opts.authPass !== undefined) {
    shared.push("  authentication {", "    auth_type PASS", `    auth_pass ${opts.authPass}`, "  }");
  }
  const garp = opts.garp ?? {};
  if (garp.masterDelaySeconds !== undefined) shared.push(`  garp_master_delay ${garp.masterDelaySeconds}`);
  if (garp.masterRepeat !== undefined) shared.push(`  garp_master_repeat ${garp.masterRepeat}`);
  if (garp.masterRefreshSeconds !== undefined) shared.push(`  garp_master_refresh ${garp.masterRefreshSeconds}`);
  if (garp.masterRefreshRepeat !== undefined) shared.push(`  garp_master_refresh_repeat ${garp.masterRefreshRepeat}`);
  const tail: string[] = [];
  if (opts.trackScript !== undefined) {
    tail.push("  track_script {", `    ${opts.trackScript.name ?? "chk_nginx"}`, "  }");
  }
  tail.push(...(opts.extraInstanceLines ?? []).map((line) => `  ${line}`));
  const block = (instance: KeepalivedInstance): string[] => [
    `vrrp_instance ${instanceNameOf(instance)} {`, `  state ${opts.state ?? "BACKUP"}`, `  interface ${opts.interface}`,
    `  virtual_router_id ${instance.vrid}`, `  priority ${instance.priority}`, ...shared,
    "  virtual_ipaddress {", ...instance.vips.map((vip) => `    ${vip}`), "  }", ...tail, "}",
  ];

  return [...global, ...(opts.trackScript === undefined ? [] : trackScriptBlock(opts.trackScript)),
    ...instancesOf(opts).flatMap(block), ""].join("\n");
}

// The exact texts of keepalived 2.2.7's packet rejections (vrrp.c vrrp_check_packet, vrrp_scheduler.c
// vrrp_read_dispatcher): a received advert that produces one of these was refused.
export const keepalivedRejectionPatterns: readonly RegExp[] = [
  /Received AH header but auth type not AH/,
  /No AH header but auth type is AH/,
  /vrrp packet too (short|long), length \d+ and expect \d+/,
  /invalid TTL\/HL\. Received \d+ and expect \d+/,
  /wrong version\. Received \d+ and expect \d+/,
  /Invalid auth type: \d+/,
  /received a \d+ auth, expecting \d+!/,
  /received an invalid passwd!/,
  /advertisement interval mismatch mine=\d+ sec rcv'd=\d+ sec/,
  /Invalid packet type\. \d+ and expect \d+/,
  /received an unexpected ip number count \d+, expected \d+!/,
  /ip_tot_len mismatch against received length/,
  /Invalid VRRPv[23] checksum/,
  /Expected (un|mult)icast packet but received (un|mult)icast packet/,
  /expected \d+ VIPs but received \d+/,
  /ip address associated with VRID \d+ not present in MASTER advert/,
  /unicast source address \S+ not a unicast peer/,
  /TTL\/HL \d+ not in range \d+ - \d+/,
  /discarding (un|mult)icast packet on (un|mult)icast instance/,
];

export function isRejectionLine(line: string): boolean {
  return keepalivedRejectionPatterns.some((pattern) => pattern.test(line));
}

export type KeepalivedState = "INIT" | "BACKUP" | "MASTER" | "FAULT";

export interface KeepalivedProcess {
  readonly host: LabHost;
  readonly configPath: string;
  readonly instanceName: string;
  readonly pid: number;
  // Log lines with keepalived's console timestamp removed.
  logLines(): string[];
  rejectionLines(): string[];
  // The state of the last "(VI_x) Entering ... STATE" line; INIT before the first.
  state(): KeepalivedState;
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  waitForState(state: KeepalivedState, timeoutMs?: number): Promise<void>;
  // SIGTERM, then wait for exit: keepalived sends its priority-0 advert and removes its VIPs on the way out.
  stop(timeoutMs?: number): Promise<void>;
  // Signals the keepalived parent only; it passes SIGTERM/SIGHUP on to its VRRP child itself.
  kill(signal: NodeJS.Signals): void;
  // SIGKILL to the parent and its VRRP child at once: no priority-0 advert, the VIP stays on the interface, as after
  // a crash of the daemon. Then waits for the exit.
  crash(): Promise<void>;
  readonly exited: Promise<number | null>;
}

const keepalivedBinary = "/usr/sbin/keepalived";
const consoleTimestamp = /^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}: /;
const defaultWaitMs = 15_000;

const running = new Set<KeepalivedProcess>();

function resolveTransport(host: LabHost, opts: KeepalivedOptions): KeepalivedConfigInput["transport"] {
  const transport = opts.transport ?? { mode: "multicast" };
  if (transport.mode === "multicast") return transport;
  const isV6 = opts.vips.some(isIpv6);
  return { ...transport, sourceAddress: transport.sourceAddress ?? (isV6 ? host.address6 : host.address) };
}

export async function startKeepalived(lab: Lab, host: LabHost, opts: KeepalivedOptions):
Promise<KeepalivedProcess> {
  const input: KeepalivedConfigInput = {
    ...opts,
    interface: opts.interface ?? host.ifname,
    transport: resolveTransport(host, opts),
    routerId: opts.routerId ?? host.name,
  };
  const config = keepalivedConfig(input);
  const dir = await mkdtemp(join(lab.tmpDir, `keepalived-${host.name}-`));
  const configPath = join(dir, "keepalived.conf");
  await writeFile(configPath, config, { mode: 0o600 });

  // -P: VRRP only. -n -l -G: foreground, log to the console, no syslog. -D: detailed logs. Own pid files keep
  // several instances on one machine apart.
  const child = lab.spawn(host, keepalivedBinary, ["-n", "-l", "-G", "-D", "-P", "-f", configPath,
    "-p", join(dir, "keepalived.pid"), "-r", join(dir, "vrrp.pid"), "-c", join(dir, "checkers.pid")],
  { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  return track(child, host, dir, configPath, instanceNameOf(opts));
}

function track(child: ChildProcess, host: LabHost, dir: string, configPath: string, instanceName: string):
Promise<KeepalivedProcess> {
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  const onLine = (raw: string): void => {
    lines.push(raw.replace(consoleTimestamp, ""));
    for (const listener of [...listeners]) listener();
  };
  for (const stream of [child.stdout, child.stderr]) {
    if (stream !== null) createInterface({ input: stream }).on("line", onLine);
  }
  let hasExited = false;
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      hasExited = true;
      for (const listener of [...listeners]) listener();
      resolve(code);
    });
  });
  const entering = new RegExp(`\\(${instanceName}\\) Entering (BACKUP|MASTER|FAULT) STATE`);

  const waitForLine = (pattern: RegExp, timeoutMs = defaultWaitMs): Promise<string> =>
    new Promise((resolve, reject) => {
      let seen = 0;
      const check = (): void => {
        for (; seen < lines.length; seen += 1) {
          const line = lines[seen];
          if (line !== undefined && pattern.test(line)) {
            done();
            resolve(line);
            return;
          }
        }
        if (hasExited) {
          done();
          reject(new Error(`keepalived on ${host.name} exited before logging ${String(pattern)}:\n${lines.join("\n")}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`keepalived on ${host.name}: no ${String(pattern)} within ${timeoutMs} ms:\n${lines.join("\n")}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });

  const state = (): KeepalivedState => {
    for (let i = lines.length - 1; i >= 0; i -= 1) {
      const match = entering.exec(lines[i] ?? "");
      if (match?.[1] === "BACKUP" || match?.[1] === "MASTER" || match?.[1] === "FAULT") return match[1];
    }
    return "INIT";
  };

  const proc: KeepalivedProcess = {
    host,
    configPath,
    instanceName,
    pid: child.pid ?? -1,
    logLines: () => [...lines],
    rejectionLines: () => lines.filter(isRejectionLine),
    state,
    waitForLine,
    waitForState: async (wanted, timeoutMs = defaultWaitMs) => {
      if (state() === wanted) return;
      await waitForLine(new RegExp(`\\(${instanceName}\\) Entering ${wanted} STATE`), timeoutMs);
    },
    stop: async (timeoutMs = 10_000) => {
      if (!hasExited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        await exited;
        clearTimeout(timer);
      }
      running.delete(proc);
      await rm(dir, { recursive: true, force: true });
    },
    kill: (signal) => {
      child.kill(signal);
    },
    crash: async () => {
      if (!hasExited && child.pid !== undefined) {
        // lab.spawn makes keepalived a process group leader, and its VRRP child stays in that group.
        process.kill(-child.pid, "SIGKILL");
      }
      await exited;
    },
    exited,
  };
  running.add(proc);

  return new Promise((resolve, reject) => {
    child.once("spawn", () => resolve(proc));
    child.once("error", (err) => {
      running.delete(proc);
      void rm(dir, { recursive: true, force: true });
      reject(err);
    });
  });
}

// For afterAll/finally: stops every keepalived this module started that is still running.
export async function stopAllKeepalived(): Promise<void> {
  await Promise.all([...running].map((proc) => proc.stop()));
}

function bareAddress(vip: string): string {
  return vip.split("/")[0] ?? vip;
}

// The names of the lab nodes that currently have the VIP on their interface.
export async function vipHolder(lab: Lab, vip: string): Promise<string[]> {
  const address = bareAddress(vip);
  const family = isIpv6(address) ? "inet6" : "inet";
  const held = await Promise.all(lab.nodes.map(async (node) => {
    const out = await lab.exec(node, "ip", ["-o", "addr", "show", "dev", node.ifname], { check: true });
    return out.stdout.split("\n").some((line) => line.includes(` ${family} ${address}/`)) ? node.name : undefined;
  }));
  return held.filter((name): name is string => name !== undefined);
}
