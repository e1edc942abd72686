import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  addressesOn, createLab, labStateDir, startNginx, summarizeProbe, sweepLeftoverLabs, waitFor,
} from "../../testing/lab/index.js";
import { processStartTicks } from "../../testing/lab/registry.js";
import type { Lab, LabHost, NginxProcess } from "../../testing/lab/index.js";

const vrrpGroup = "224.0.0.18";
const vrrpGroup6 = "ff02::12";
const mcastPort = 5999;

// Joins the VRRP groups on eth0 (IPv4 and IPv6) and prints one line per datagram: "<family> <payload>".
const receiverScript = `
const dgram = require("node:dgram");
const [address] = process.argv.slice(1);
const v4 = dgram.createSocket({ type: "udp4", reuseAddr: true });
v4.on("message", (m) => process.stdout.write("4 " + m + "\\n"));
v4.bind(${mcastPort}, () => { v4.addMembership("${vrrpGroup}", address); ready(); });
const v6 = dgram.createSocket({ type: "udp6", reuseAddr: true });
v6.on("message", (m) => process.stdout.write("6 " + m + "\\n"));
v6.bind(${mcastPort}, () => { v6.addMembership("${vrrpGroup6}", "::%eth0"); ready(); });
let pending = 2;
function ready() { if (--pending === 0) process.stdout.write("ready\\n"); }
`;

// Sends "<name> <seq>" to both groups every 50 ms, out of eth0.
const senderScript = `
const dgram = require("node:dgram");
const [address, name] = process.argv.slice(1);
const v4 = dgram.createSocket("udp4");
const v6 = dgram.createSocket("udp6");
let seq = 0;
v4.bind(0, address, () => {
  v4.setMulticastInterface(address);
  v6.bind(0, () => {
    v6.setMulticastInterface("::%eth0");
    setInterval(() => {
      seq += 1;
      v4.send(name + " " + seq, ${mcastPort}, "${vrrpGroup}");
      v6.send(name + " " + seq, ${mcastPort}, "${vrrpGroup6}");
    }, 50);
  });
});
`;

interface Receiver {
  readonly lines: string[];
  countFrom(family: "4" | "6", sender: string): number;
}

async function startReceiver(lab: Lab, host: LabHost): Promise<Receiver> {
  const child = lab.spawn(host, process.execPath, ["-e", receiverScript, host.address]);
  const lines: string[] = [];
  const stdout = child.stdout;
  if (stdout === null) throw new Error("receiver stdout is not piped");
  createInterface({ input: stdout }).on("line", (line) => lines.push(line));
  await waitFor(() => lines.includes("ready"), { timeoutMs: 15_000, what: `multicast receiver in ${host.name}` });
  return {
    lines,
    countFrom: (family, sender) => lines.filter((l) => l.startsWith(`${family} ${sender} `)).length,
  };
}

function url(address: string, path = "/"): string {
  return address.includes(":") ? `http://[${address}]${path}` : `http://${address}${path}`;
}

async function bodyFrom(lab: Lab, from: LabHost, to: string): Promise<string | undefined> {
  const answer = await lab.httpGet(from, url(to), { timeoutMs: 700 });
  return answer.status === 200 ? answer.body : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("namespace lab", () => {
  let lab: Lab;
  let n1: LabHost;
  let n2: LabHost;
  const nginxes: NginxProcess[] = [];

  beforeAll(async () => {
    lab = await createLab({ nodes: 2, idPrefix: "lt" });
    const [first, second] = lab.nodes;
    if (first === undefined || second === undefined) throw new Error("expected two nodes");
    n1 = first;
    n2 = second;
    for (const host of [n1, n2, lab.client]) nginxes.push(await startNginx(lab, host));
  });

  afterAll(async () => {
    await lab.destroy();
  });

  it("gives each host its addresses on eth0, IPv6 without DAD", async () => {
    const addresses = await addressesOn(lab, n1);
    expect(addresses).toContainEqual({ family: "inet", address: "10.77.0.11", prefixLength: 24, scope: "global" });
    expect(addresses).toContainEqual({ family: "inet6", address: "fd77::11", prefixLength: 64, scope: "global" });
    expect(lab.client.address).toBe("10.77.0.100");
    const flags = await lab.exec(n1, "ip", ["-6", "addr", "show", "dev", "eth0"], { check: true });
    expect(flags.stdout).not.toContain("tentative");
    const sysctls = await lab.exec(n1, "sysctl", ["-n", "net.ipv4.ip_nonlocal_bind", "net.ipv6.conf.eth0.accept_dad"]);
    expect(sysctls.stdout.split("\n").slice(0, 2)).toEqual(["1", "0"]);
  });

  it("connects every host with every other over IPv4 and IPv6, and nginx answers with the host's name", async () => {
    const hosts = [n1, n2, lab.client];
    for (const from of hosts) {
      for (const to of hosts.filter((h) => h !== from)) {
        expect(await bodyFrom(lab, from, to.address)).toBe(to.name);
        expect(await bodyFrom(lab, from, to.address6)).toBe(to.name);
      }
    }
    expect((await lab.httpGet(lab.client, url(n1.address, "/healthz"))).body).toBe("ok");
  });

  it("floods VRRP multicast across the bridge; a cut link stops it and a restored one brings it back", async () => {
    const atN2 = await startReceiver(lab, n2);
    const atClient = await startReceiver(lab, lab.client);
    lab.spawn(n1, process.execPath, ["-e", senderScript, n1.address, n1.name]);
    await waitFor(() => atN2.countFrom("4", "n1") > 2 && atN2.countFrom("6", "n1") > 2 && atClient.countFrom("4", "n1") > 2,
      { timeoutMs: 10_000, what: "n1's multicast at n2 and the client" });

    await lab.cutLink(n1);
    await sleep(200);
    const duringCut = atN2.countFrom("4", "n1");
    await sleep(1_000);
    expect(atN2.countFrom("4", "n1")).toBe(duringCut);
    const carrier = await lab.exec(n1, "cat", ["/sys/class/net/eth0/carrier"]);
    expect(carrier.stdout.trim()).toBe("0");

    await lab.restoreLink(n1);
    await waitFor(() => atN2.countFrom("4", "n1") > duringCut + 2, { timeoutMs: 10_000, what: "multicast after restore" });
  });

  it("cuts a node silently, keeping its carrier, and restores it", async () => {
    await lab.cutLink(n1, { shouldKeepCarrier: true });
    try {
      const carrier = await lab.exec(n1, "cat", ["/sys/class/net/eth0/carrier"]);
      expect(carrier.stdout.trim()).toBe("1");
      expect(await bodyFrom(lab, lab.client, n1.address)).toBeUndefined();
      expect(await bodyFrom(lab, n1, n2.address6)).toBeUndefined();
      expect(await bodyFrom(lab, lab.client, n2.address)).toBe("n2");
    } finally {
      await lab.restoreLink(n1);
    }
    expect(await bodyFrom(lab, lab.client, n1.address)).toBe("n1");
    await lab.restoreLink(n1);
  });

  it("drops a share of a node's traffic on a degraded link", async () => {
    await lab.degradeLink(n1, { lossPercent: 20 });
    try {
      const probe = await lab.startProbe(url(n1.address), { intervalMs: 10, timeoutMs: 100 });
      await sleep(2_000);
      const report = await probe.stop();
      // A request needs some five frames to pass within 100 ms, so about two in three fail at 20 % loss per frame.
      expect(report.ok, JSON.stringify(report)).toBeGreaterThan(0);
      expect(report.failed, JSON.stringify(report)).toBeGreaterThan(0);
    } finally {
      await lab.restoreLink(n1);
    }
    expect(await bodyFrom(lab, lab.client, n1.address)).toBe("n1");
  });

  it("isolates two nodes from each other while the client still reaches both, and heals", async () => {
    await lab.isolatePeers(n1, n2);
    try {
      expect(await bodyFrom(lab, n1, n2.address)).toBeUndefined();
      expect(await bodyFrom(lab, n2, n1.address)).toBeUndefined();
      expect(await bodyFrom(lab, n1, n2.address6)).toBeUndefined();
      expect(await bodyFrom(lab, lab.client, n1.address)).toBe("n1");
      expect(await bodyFrom(lab, lab.client, n2.address)).toBe("n2");
      const arping = await lab.exec(n1, "arping", ["-c", "1", "-w", "1", "-I", "eth0", n2.address]);
      expect(arping.code).not.toBe(0);
      const atN2 = await startReceiver(lab, n2);
      const atClient = await startReceiver(lab, lab.client);
      await waitFor(() => atClient.countFrom("4", "n1") > 5 && atClient.countFrom("6", "n1") > 5,
        { timeoutMs: 10_000, what: "n1's multicast at the client during isolation" });
      expect(atN2.countFrom("4", "n1")).toBe(0);
      expect(atN2.countFrom("6", "n1")).toBe(0);
    } finally {
      await lab.healPeers(n1, n2);
    }
    expect(await bodyFrom(lab, n1, n2.address)).toBe("n2");
    expect(await bodyFrom(lab, n2, n1.address)).toBe("n1");
  });

  it("measures one outage window around a one-second cut of the serving node", async () => {
    const probe = await lab.startProbe(url(n1.address), { intervalMs: 10, timeoutMs: 100 });
    await sleep(500);
    await lab.cutLink(n1);
    await sleep(1_000);
    await lab.restoreLink(n1);
    await waitFor(() => probe.snapshot().windows.some((w) => !w.isOpen), { timeoutMs: 10_000, what: "n1 answering again" });
    await sleep(200);
    const report = await probe.stop();
    expect(report.windows, JSON.stringify(report)).toHaveLength(1);
    const [window] = report.windows;
    expect(window?.isOpen).toBe(false);
    expect(report.maxOutageMs).toBeGreaterThanOrEqual(800);
    expect(report.maxOutageMs).toBeLessThan(5_000);
    expect(report.answeredBy).toEqual({ n1: report.ok });
    expect(report.ok).toBeGreaterThan(20);
    expect(report.sent).toBe(report.ok + report.failed);
  });

  it("serves extra ports and a VIP the node does not hold yet, and stops nginx gracefully", async () => {
    const extra = await startNginx(lab, n2, { port: 8080, body: "extra" });
    const vip = lab.vip(3);
    const onVip = await startNginx(lab, n2, { port: 8081, body: "vip", listenAddress: vip.address });
    expect((await lab.httpGet(lab.client, `http://${vip.address}:8081/`, { timeoutMs: 500 })).status).toBe(0);
    await lab.exec(n2, "ip", ["addr", "add", `${vip.address}/24`, "dev", "eth0"], { check: true });
    expect(await lab.httpGet(lab.client, `http://${vip.address}:8081/`)).toEqual({ status: 200, body: "vip" });
    await onVip.stop();
    await lab.exec(n2, "ip", ["addr", "del", `${vip.address}/24`, "dev", "eth0"], { check: true });
    const extraUrl = `http://${n2.address}:8080/`;
    expect(await lab.httpGet(lab.client, extraUrl)).toEqual({ status: 200, body: "extra" });
    await extra.stop();
    expect(isAlive(extra.pid)).toBe(false);
    expect((await lab.httpGet(lab.client, extraUrl, { timeoutMs: 500 })).status).toBe(0);
  });

  it("leaves no namespace, process, temp dir or state file after destroy, and destroy is idempotent", async () => {
    const id = lab.id;
    const pids = nginxes.map((n) => n.pid);
    const sleeper = lab.spawn(n1, "sleep", ["600"]);
    expect(sleeper.pid).toBeDefined();
    await Promise.all([lab.destroy(), lab.destroy()]);
    await lab.destroy();
    const listed = await runRoot("ip", ["netns", "list"]);
    expect(listed).not.toContain(id);
    for (const pid of [...pids, sleeper.pid ?? 0]) expect(isAlive(pid)).toBe(false);
    expect(existsSync(lab.tmpDir)).toBe(false);
    expect(existsSync(join(labStateDir, `${id}.json`))).toBe(false);
    expect(() => lab.exec(n1, "true", [])).toThrow(/destroyed/);
  });
});

describe("lab cleanup when its process dies", () => {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  const labModule = pathToFileURL(join(import.meta.dirname, "../../testing/lab/index.ts")).href;
  // Creates a lab, starts a long sleeper inside it, prints the lab id and waits to be killed.
  const ownerScript = `
    const { createLab } = await import(${JSON.stringify(labModule)});
    const lab = await createLab({ nodes: 1, idPrefix: "lk" });
    const sleeper = lab.spawn(lab.nodes[0], "sleep", ["600"]);
    process.stdout.write(JSON.stringify({ id: lab.id, sleeper: sleeper.pid, tmpDir: lab.tmpDir }) + "\\n");
    setInterval(() => {}, 1000);
  `;
  const owners: ChildProcess[] = [];

  async function startOwner(): Promise<{ child: ChildProcess; id: string; sleeper: number; tmpDir: string }> {
    const child = spawn(process.execPath, ["--import", tsx, "--input-type=module", "-e", ownerScript], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    owners.push(child);
    const stdout = child.stdout;
    if (stdout === null) throw new Error("owner stdout is not piped");
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: stdout }).once("line", resolve);
      child.once("exit", (code) => reject(new Error(`lab owner exited early with ${code}`)));
    });
    const info = z.object({ id: z.string(), sleeper: z.number().int(), tmpDir: z.string() }).parse(JSON.parse(line));
    return { child, ...info };
  }

  afterAll(async () => {
    for (const owner of owners) owner.kill("SIGKILL");
    await sweepLeftoverLabs();
  });

  it("SIGTERM: the exit hook deletes the namespaces and kills what ran in them", async () => {
    const owner = await startOwner();
    expect(await runRoot("ip", ["netns", "list"])).toContain(owner.id);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => owner.child.once("exit", (_code, signal) => resolve(signal)));
    owner.child.kill("SIGTERM");
    expect(await exited).toBe("SIGTERM");
    expect(await runRoot("ip", ["netns", "list"])).not.toContain(owner.id);
    expect(isAlive(owner.sleeper)).toBe(false);
    expect(existsSync(owner.tmpDir)).toBe(false);
  });

  it("SIGKILL: sweepLeftoverLabs removes what the dead process left", async () => {
    const owner = await startOwner();
    const exited = new Promise<void>((resolve) => owner.child.once("exit", () => resolve()));
    owner.child.kill("SIGKILL");
    await exited;
    expect(await runRoot("ip", ["netns", "list"])).toContain(owner.id);
    const swept = await sweepLeftoverLabs();
    expect(swept).toContain(owner.id);
    expect(await runRoot("ip", ["netns", "list"])).not.toContain(owner.id);
    expect(isAlive(owner.sleeper)).toBe(false);
    expect(existsSync(owner.tmpDir)).toBe(false);
  });
});

describe("sweepLeftoverLabs and reused pids", () => {
  it("sweeps a lab whose recorded pid now belongs to another process, and spares one whose owner lives", async () => {
    const ids = [`lr${randomBytes(3).toString("hex")}`, `lr${randomBytes(3).toString("hex")}`];
    const [reused, live] = ids;
    if (reused === undefined || live === undefined) throw new Error("two ids expected");
    const tmpDirs = ids.map((id) => mkdtempSync(join(tmpdir(), `ha-nginx-lab-${id}-`)));
    try {
      for (const [i, id] of ids.entries()) {
        await runRoot("ip", ["netns", "add", `${id}-hub`]);
        const state = {
          pid: process.pid,
          // The first claims our pid with another start time: the pid was reused, so its owner is dead.
          pidStartTicks: i === 0 ? "1" : processStartTicks(process.pid),
          namespaces: [`${id}-hub`],
          tmpDir: tmpDirs[i],
        };
        writeFileSync(join(labStateDir, `${id}.json`), JSON.stringify(state));
      }
      const swept = await sweepLeftoverLabs();
      expect(swept).toContain(reused);
      expect(swept).not.toContain(live);
      const listed = await runRoot("ip", ["netns", "list"]);
      expect(listed).not.toContain(reused);
      expect(listed).toContain(live);
      expect(existsSync(tmpDirs[0] ?? "")).toBe(false);
    } finally {
      for (const [i, id] of ids.entries()) {
        await runRoot("ip", ["netns", "delete", `${id}-hub`]);
        rmSync(join(labStateDir, `${id}.json`), { force: true });
        rmSync(tmpDirs[i] ?? "", { recursive: true, force: true });
      }
    }
  });
});

describe("probe summary", () => {
  it("counts one window from the first failure to the first success, and leaves a trailing one open", () => {
    const report = summarizeProbe([
      { t: 1000, ok: true, by: "n1" },
      { t: 1010, ok: false, err: "timeout" },
      { t: 1120, ok: false, err: "timeout" },
      { t: 1230, ok: true, by: "n2" },
      { t: 1240, ok: false, err: "ECONNREFUSED" },
    ], 1300);
    expect(report).toEqual({
      sent: 5,
      ok: 2,
      failed: 3,
      windows: [
        { startMs: 1010, endMs: 1230, failed: 2, isOpen: false },
        { startMs: 1240, endMs: 1300, failed: 1, isOpen: true },
      ],
      maxOutageMs: 220,
      answeredBy: { n1: 1, n2: 1 },
      failedWith: { timeout: 2, ECONNREFUSED: 1 },
    });
  });
});

/** A zombie counts as dead: it runs nothing, and whether init reaps it soon is not the lab's business. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

async function runRoot(cmd: string, args: readonly string[]): Promise<string> {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => { out += chunk; });
  await new Promise((resolve) => child.once("close", resolve));
  return out;
}
