// One lab of two nodes (n1 the intended master, n2 the backup) with real nginx on both, and one speaker per node of
// the system under test. `ensureReady` puts back whatever the last fault broke and waits for a settled pair.

import { createLab, startNginx, waitFor, type Lab, type LabHost, type NginxProcess } from "../../testing/lab/index.js";
import { vipHolders } from "../../testing/lab/agent.js";
import { intervalOf, priorities, startSpeaker, type AdvertSetting, type PairTimers, type Speaker, type SystemName } from "./speakers.js";

export interface Bed {
  readonly lab: Lab;
  readonly master: LabHost;
  readonly backup: LabHost;
  readonly vip: string;
  /** What the client probes: nginx's `/` answers with the node's name. */
  readonly url: string;
  nginxOf(host: LabHost): NginxProcess | undefined;
  /** Starts a fresh pair of `system` at `intervalMs`, after stopping any previous one. */
  startPair(system: SystemName, setting: AdvertSetting): Promise<void>;
  speakerOf(host: LabHost): Speaker;
  /** Heals links, restarts dead nginx and dead speakers, then waits for a settled pair; rebuilds the pair once if not. */
  ensureReady(): Promise<void>;
  stopPair(): Promise<void>;
  destroy(): Promise<void>;
}

const vrid = 51;
const settleTimeoutMs = 30_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function createBed(idPrefix: string): Promise<Bed> {
  const lab = await createLab({ nodes: 2, idPrefix });
  const [master, backup] = lab.nodes;
  if (master === undefined || backup === undefined) throw new Error("two nodes expected");
  const vip = lab.vip(0).address;
  const nginx = new Map<string, { process: NginxProcess; isUp: boolean }>();
  const speakers = new Map<string, Speaker>();
  let current: { system: SystemName; timers: PairTimers } | undefined;

  const ensureNginx = async (host: LabHost): Promise<void> => {
    if (nginx.get(host.name)?.isUp === true) return;
    const process = await startNginx(lab, host);
    const entry = { process, isUp: true };
    nginx.set(host.name, entry);
    void process.exited.then(() => { entry.isUp = false; });
  };

  const priorityOf = (host: LabHost): number => (host === master ? priorities.master : priorities.backup);

  const ensureSpeaker = async (host: LabHost): Promise<void> => {
    if (current === undefined) throw new Error("no pair started");
    const existing = speakers.get(host.name);
    if (existing !== undefined && existing.role() !== "Stopped") return;
    // A crashed speaker leaves the VIP behind. Our agent removes it at start (that is its job, and this leaves it
    // to do so); keepalived is given a clean interface, as an operator restarting it would do.
    if (current.system === "keepalived") await deleteVip(host);
    speakers.set(host.name, await startSpeaker(lab, current.system, host, priorityOf(host), current.timers));
  };

  const deleteVip = async (host: LabHost): Promise<void> => {
    await lab.exec(host, "ip", ["addr", "del", `${vip}/${lab.prefixLength}`, "dev", host.ifname]);
  };

  const stopPair = async (): Promise<void> => {
    await Promise.all([...speakers.values()].map((speaker) => speaker.crash()));
    speakers.clear();
    for (const host of lab.nodes) await deleteVip(host);
  };

  const speakerOf = (host: LabHost): Speaker => {
    const speaker = speakers.get(host.name);
    if (speaker === undefined) throw new Error(`no speaker on ${host.name}`);
    return speaker;
  };

  /**
   * Settled: n1 Master and n2 Backup, unchanged for 4 advertisement intervals (at least 1 s: startup races, helper
   * G's warning), n1 alone holds the VIP, and the client is served by n1.
   */
  const waitSettled = async (timeoutMs: number): Promise<void> => {
    if (current === undefined) throw new Error("no pair started");
    const holdMs = Math.max(4 * intervalOf(current.system, current.timers.setting), 1_000);
    let since = performance.now();
    let lastRoles = "";
    await waitFor(async () => {
      const roles = `${speakerOf(master).role()}/${speakerOf(backup).role()}`;
      if (roles !== lastRoles) {
        lastRoles = roles;
        since = performance.now();
      }
      if (roles !== "Master/Backup" || performance.now() - since < holdMs) return false;
      const holders = await vipHolders(lab, vip);
      if (holders.length !== 1 || holders[0] !== master.name) return false;
      const answer = await lab.httpGet(lab.client, url, { timeoutMs: 1_000 });
      return answer.status === 200 && answer.body.trim() === master.name;
    }, { timeoutMs, intervalMs: 50, what: `a settled pair (roles ${lastRoles})` });
  };

  const url = `http://${vip}/`;

  const bed: Bed = {
    lab,
    master,
    backup,
    vip,
    url,
    nginxOf: (host) => nginx.get(host.name)?.process,
    async startPair(system, setting) {
      await stopPair();
      current = { system, timers: { setting, vip, vrid } };
      await bed.ensureReady();
    },
    speakerOf,
    async ensureReady() {
      for (const host of lab.nodes) {
        await lab.restoreLink(host);
        await ensureNginx(host);
      }
      // Master first: a backup started alone would become Master and then be preempted, a needless extra flip.
      for (const host of lab.nodes) await ensureSpeaker(host);
      try {
        await waitSettled(settleTimeoutMs);
      } catch (err) {
        console.log(`  ! pair did not settle (${errorText(err)}); rebuilding it`);
        for (const host of lab.nodes) console.log(`    ${host.name}: ${speakers.get(host.name)?.logTail(8).join("\n      ") ?? ""}`);
        await stopPair();
        for (const host of lab.nodes) await ensureSpeaker(host);
        await waitSettled(settleTimeoutMs);
      }
    },
    stopPair,
    async destroy() {
      await stopPair().catch(() => undefined);
      await lab.destroy();
    },
  };
  try {
    for (const host of lab.nodes) await ensureNginx(host);
  } catch (err) {
    await lab.destroy();
    throw err;
  }
  return bed;
}

/** Runs `step`; its error's text, or undefined when it succeeded. */
export async function failureOf(step: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await step();
    return undefined;
  } catch (err) {
    return errorText(err);
  }
}

export function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
