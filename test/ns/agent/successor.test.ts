// Successor naming (extension, not in RFC 5798; src/vrrp/handover.ts) on real namespaces: with every router ours, a
// Master whose nginx dies names its best Backup, which takes over on the priority-0 advert without waiting Skew_Time;
// with keepalived in the group, no one is named and RFC 5798 §6.4.2 decides, keepalived's own failover included. The
// hand-over messages travel on IP protocol 253, so keepalived never sees one.

import { afterEach, describe, expect, it } from "vitest";
import { haVipManifest, type AgentProcess, type HaVipManifestOptions } from "../../../testing/lab/agent.js";
import { waitFor, type ProbeReport } from "../../../testing/lab/index.js";
import { startKeepalived, type KeepalivedProcess } from "../../../testing/lab/keepalived.js";
import { printTimeline, reportMeasure, sleep, useAgentBed, waitForSingleHolder } from "./support.js";

const intervalMs = 1_000;
// RFC 5798 §6.1 at a 1 s interval: Skew_Time = (256 − priority) × 1000 / 256 ms; Master_Down_Interval = 3 s + that.
function skewMs(priority: number): number {
  return ((256 - priority) * intervalMs) / 256;
}
function masterDownMs(priority: number): number {
  return 3 * intervalMs + skewMs(priority);
}

/** Probe of the local nginx: 200 ms × 2 failures, as in failover.test.ts; weight 0 puts the node in Fault. */
const healthCheck = { probe: { periodMs: 200, timeoutMs: 100, failureThreshold: 2 }, weight: 0 } as const;

/** From `sinceMs` to the first request that succeeded again after the last outage window that began after it. */
function recoveryMs(report: ProbeReport, sinceMs: number): number {
  const windows = report.windows.filter((w) => w.endMs >= sinceMs);
  const last = windows.at(-1);
  return last === undefined ? 0 : last.endMs - sinceMs;
}

function firstMasterSince(agent: AgentProcess, sinceMs: number) {
  return agent.transitions().find((t) => t.to === "Master" && t.time >= sinceMs);
}

describe("successor naming (hand-over extension): all routers ours", () => {
  const bed = useAgentBed(3, "hsn");
  // n1 Master; n2 the best Backup (Skew_Time 531 ms); n3 far below (805 ms), so it never races n2.
  const priorities = [150, 120, 50] as const;

  function manifest(extra: Partial<HaVipManifestOptions> = {}): string {
    const { nodes, vip } = bed();
    return haVipManifest({
      addresses: [`${vip}/24`],
      advertisementIntervalMs: intervalMs,
      priorities: Object.fromEntries(nodes.map((host, i) => [host.name, priorities[i] ?? 100])),
      ...healthCheck,
      ...extra,
    });
  }

  async function startThree(text: string) {
    const b = bed();
    const [a1, a2, a3] = await Promise.all(b.nodes.map((host) => b.start(host, text)));
    if (a1 === undefined || a2 === undefined || a3 === undefined) throw new Error("three agents expected");
    await a1.waitForState("Master", 15_000);
    await a2.waitForState("Backup", 5_000);
    await a3.waitForState("Backup", 5_000);
    await waitForSingleHolder(b.lab, b.vip, 10_000, b.node(0));
    // The Master must have heard both Backups' candidacies (one on entering Backup, then every 5 s) to name one.
    await waitFor(async () => ((await a1.state()).counters["candidacy-received"] ?? 0) >= 2, {
      timeoutMs: 12_000, what: "n1 hearing the Backups' candidacies",
    });
    return { a1, a2, a3 };
  }

  it("extension (Unicast): three routers started together: the best takes over unopposed once it has heard both candidacies, the others stay Backup", async () => {
    const b = bed();
    const { a1, a2, a3 } = await startThree(manifest({ transport: { mode: "Unicast", peers: b.nodes.map((host) => host.address) } }));
    const entered = a1.transitions().find((t) => t.to === "Backup");
    const takeover = a1.transitions().find((t) => t.to === "Master");
    console.log(`n1 Backup -> Master ${takeover === undefined || entered === undefined ? "?" : takeover.time - entered.time} ms after entering Backup (RFC 5798 §6.4.1: ${masterDownMs(priorities[0])} ms)`);
    expect(takeover?.reason).toBe("unopposed");
    expect([...a2.transitions(), ...a3.transitions()].filter((t) => t.to === "Master")).toEqual([]);
  });

  it.each(["Multicast", "Unicast"] as const)(
    "extension (%s): nginx dies on the Master, the named Backup takes over on the priority-0 advert before Skew_Time",
    async (mode) => {
      const b = bed();
      const transport = mode === "Unicast" ? { mode, peers: b.nodes.map((host) => host.address) } : { mode };
      const { a1, a2, a3 } = await startThree(manifest({ transport }));
      const probe = await b.lab.startProbe(`http://${b.vip}/`, { intervalMs: 10 });
      await sleep(300);
      const killedAt = Date.now();
      b.nginx.get(b.node(0).name)?.kill("SIGKILL");
      await a1.waitForState("Fault", 5_000);
      await a2.waitForState("Master", 5_000);
      await waitFor(async () => (probe.snapshot().answeredBy[b.node(1).name] ?? 0) > 10, {
        timeoutMs: 5_000, what: "the client served by n2",
      });
      const report = await probe.stop();
      const fault = a1.transitions().find((t) => t.to === "Fault" && t.time >= killedAt);
      const takeover = firstMasterSince(a2, killedAt);
      if (fault === undefined || takeover === undefined) throw new Error("n1 should have gone Fault and n2 Master");
      const [s1, s2, s3] = await Promise.all([a1.state(), a2.state(), a3.state()]);
      // n1 logs its transition before it sends the nomination and the priority-0 advert, so this over-states the
      // time from the priority-0 advert's arrival to n2's takeover.
      const afterFaultMs = takeover.time - fault.time;
      const answeredMs = recoveryMs(report, killedAt);
      reportMeasure(`successor naming (${mode}), nginx SIGKILL on the Master`, report);
      console.log(
        `[measure] successor naming (${mode}): nginx death -> n1 Fault ${fault.time - killedAt} ms, -> n2 Master ${takeover.time - killedAt} ms ` +
          `(reason ${takeover.reason}, ${afterFaultMs} ms after n1's Fault; RFC Skew_Time ${Math.round(skewMs(priorities[1]))} ms), ` +
          `-> VIP answering from n2 ${answeredMs} ms (Master_Down_Interval ${Math.round(masterDownMs(priorities[1]))} ms); ` +
          `n1 nomination-sent ${s1.counters["nomination-sent"] ?? 0}, n2 nomination-received ${s2.counters["nomination-received"] ?? 0}, ` +
          `n3 nomination-received ${s3.counters["nomination-received"] ?? 0}, n3 dropped:not-nominated ${s3.counters["dropped:not-nominated"] ?? 0}`,
      );
      printTimeline(`successor naming (${mode})`, killedAt, [a1, a2, a3], report);
      expect(fault.reason).toBe("health-failed");
      // The takeover came from the nomination, not from the RFC's Skew_Time or Master_Down_Interval.
      expect(takeover.reason).toBe("nominated");
      expect(s1.counters["nomination-sent"] ?? 0).toBeGreaterThanOrEqual(1);
      expect(s2.counters["nomination-received"] ?? 0).toBe(1);
      expect(s3.counters["nomination-received"]).toBeUndefined();
      // Before Skew_Time would have elapsed (531 ms), measured from n1's Fault, which comes before its priority 0.
      expect(afterFaultMs).toBeLessThan(skewMs(priorities[1]));
      // n3, not named, waited Skew_Time, heard n2 first and stayed Backup.
      expect((await a3.waitForState("Backup", 2_000)).state).toBe("Backup");
      expect(a3.transitions().some((t) => t.to === "Master" && t.time >= killedAt)).toBe(false);
      await waitForSingleHolder(b.lab, b.vip, 3_000, b.node(1));
      expect(answeredMs).toBeGreaterThan(0);
      expect(answeredMs).toBeLessThan(masterDownMs(priorities[1]));
      expect(report.windows.filter((w) => w.isOpen)).toEqual([]);
    },
  );

  it("RFC 5798 §6.4.2 MUST: with an unicast peer that never spoke (it may be foreign), no one is named and the Backup waits Skew_Time", async () => {
    const b = bed();
    // An address in the lab's subnet that no node holds: a configured peer that has never sent a hand-over message.
    const silent = b.lab.vip(1).address;
    const { a1, a2, a3 } = await startThree(manifest({ transport: { mode: "Unicast", peers: [...b.nodes.map((host) => host.address), silent] } }));
    const killedAt = Date.now();
    b.nginx.get(b.node(0).name)?.kill("SIGKILL");
    await a1.waitForState("Fault", 5_000);
    await a2.waitForState("Master", 5_000);
    const fault = a1.transitions().find((t) => t.to === "Fault" && t.time >= killedAt);
    const takeover = firstMasterSince(a2, killedAt);
    if (fault === undefined || takeover === undefined) throw new Error("n1 should have gone Fault and n2 Master");
    const [s1, s2] = await Promise.all([a1.state(), a2.state()]);
    const afterFaultMs = takeover.time - fault.time;
    console.log(
      `[measure] no nomination (unicast, a silent peer): n2 Master ${afterFaultMs} ms after n1's Fault (reason ${takeover.reason}; ` +
        `RFC Skew_Time ${Math.round(skewMs(priorities[1]))} ms); n1 nomination-sent ${s1.counters["nomination-sent"] ?? 0}`,
    );
    expect(takeover.reason).toBe("priority-zero-received");
    expect(s1.counters["nomination-sent"]).toBeUndefined();
    expect(s2.counters["nomination-received"]).toBeUndefined();
    // RFC 5798 §6.4.2: Skew_Time, less a little: n1's log line and n2's are stamped by two processes.
    expect(afterFaultMs).toBeGreaterThanOrEqual(skewMs(priorities[1]) - 50);
    expect(afterFaultMs).toBeLessThan(masterDownMs(priorities[1]));
    expect((await a3.waitForState("Backup", 2_000)).state).toBe("Backup");
  });
});

describe("successor naming (hand-over extension): keepalived in the group", () => {
  const bed = useAgentBed(3, "hsk");
  const daemons = new Set<KeepalivedProcess>();

  afterEach(async (context) => {
    if (context.task.result?.state === "fail") {
      for (const daemon of daemons) console.log(`[keepalived ${daemon.host.name}]\n${daemon.logLines().map((line) => `  ${line}`).join("\n")}`);
    }
    await Promise.all([...daemons].map((daemon) => daemon.stop()));
    daemons.clear();
  });

  it("RFC 5798 §6.4.2: ours + keepalived, no one is named; keepalived elects, takes over on our priority 0, and never sees a hand-over message", async () => {
    const b = bed();
    const [n1, n2, n3] = [b.node(0), b.node(1), b.node(2)];
    // keepalived (n1, 120) is Master first; ours n2 (150) preempts it; ours n3 (50) stays Backup throughout.
    const daemon = await startKeepalived(b.lab, n1, {
      vrid: 51, version: 3, priority: 120, state: "BACKUP", advertIntervalMs: intervalMs, vips: [`${b.vip}/24`],
    });
    daemons.add(daemon);
    await daemon.waitForState("MASTER", 15_000);
    const text = haVipManifest({
      addresses: [`${b.vip}/24`],
      advertisementIntervalMs: intervalMs,
      priorities: { [n2.name]: 150, [n3.name]: 50 },
      preemption: { mode: "Always" },
      ...healthCheck,
    });
    const [a2, a3] = await Promise.all([b.start(n2, text), b.start(n3, text)]);
    if (a2 === undefined || a3 === undefined) throw new Error("two agents expected");
    await a2.waitForState("Master", 15_000);
    // keepalived elects correctly: the higher priority preempted it.
    await daemon.waitForState("BACKUP", 5_000);
    await a3.waitForState("Backup", 5_000);
    await waitForSingleHolder(b.lab, b.vip, 5_000, n2);
    const elected = await a2.state();
    console.log(`[measure] mixed group, election: n2 ${JSON.stringify(a2.transitions().map((t) => `${t.from}->${t.to}:${t.reason}`))}, counters ${JSON.stringify(elected.counters)}`);
    // RFC 5798 §6.4.2 preemption: n2 heard keepalived's adverts (lower priority, discarded) and took over when its
    // Master_Down_Timer ran out; had it heard none, the reason would be master-down-timer-expired.
    expect(a2.transitions().find((t) => t.to === "Master")?.reason).toBe("preempted");
    expect(elected.counters["dropped:lower-priority"] ?? 0).toBeGreaterThan(0);
    // n2 has heard n3's candidacies, and keepalived advertising without ever sending one. n3 repeats its candidacy
    // every 5 s, so two take up to two repeats.
    await waitFor(async () => ((await a2.state()).counters["candidacy-received"] ?? 0) >= 2, {
      timeoutMs: 12_000, what: "n2 hearing n3's candidacy",
    });

    const probe = await b.lab.startProbe(`http://${b.vip}/`, { intervalMs: 10 });
    await sleep(300);
    const killedAt = Date.now();
    b.nginx.get(n2.name)?.kill("SIGKILL");
    await a2.waitForState("Fault", 5_000);
    // RFC 5798 §6.4.2: keepalived (120) waits Skew_Time (531 ms) after our priority 0, n3 (50) would wait 805 ms.
    await daemon.waitForState("MASTER", 5_000);
    await waitForSingleHolder(b.lab, b.vip, 5_000, n1);
    await waitFor(async () => (probe.snapshot().answeredBy[n1.name] ?? 0) > 10, { timeoutMs: 5_000, what: "the client served by n1" });
    const report = await probe.stop();
    const [s2, s3] = await Promise.all([a2.state(), a3.state()]);
    reportMeasure("mixed group, nginx SIGKILL on our Master, keepalived takes over", report);
    console.log(
      `[measure] mixed group: nginx death -> keepalived MASTER, VIP answering from n1 ${recoveryMs(report, killedAt)} ms ` +
        `(Skew_Time for 120: ${Math.round(skewMs(120))} ms); n2 nomination-sent ${s2.counters["nomination-sent"] ?? 0}, ` +
        `n3 nomination-received ${s3.counters["nomination-received"] ?? 0}, n2/n3 candidacy-sent ${s2.counters["candidacy-sent"] ?? 0}/${s3.counters["candidacy-sent"] ?? 0}`,
    );
    expect(daemon.logLines()).toContainEqual(expect.stringMatching(/Backup received priority 0 advertisement/));
    expect(s2.counters["nomination-sent"]).toBeUndefined();
    expect(s3.counters["nomination-received"]).toBeUndefined();
    expect(a3.transitions().some((t) => t.to === "Master" && t.time >= killedAt)).toBe(false);
    expect(s3.state).toBe("Backup");
    // keepalived refused nothing: the candidacies it would have logged never reached its protocol-112 socket.
    expect(s3.counters["candidacy-sent"] ?? 0).toBeGreaterThan(0);
    expect(daemon.rejectionLines()).toEqual([]);
    expect(report.windows.filter((w) => w.isOpen)).toEqual([]);

    // keepalived's own failover still works with ours beside it: on its SIGTERM priority 0, n3 (n2 is in Fault) takes over.
    const stoppedAt = Date.now();
    await daemon.stop();
    await a3.waitForState("Master", masterDownMs(50) + 2_000);
    const takeover = firstMasterSince(a3, stoppedAt);
    console.log(`[measure] mixed group: n3 Master ${(takeover?.time ?? Infinity) - stoppedAt} ms after keepalived's SIGTERM (reason ${takeover?.reason ?? "none"})`);
    expect(takeover?.reason).toBe("priority-zero-received");
    await waitForSingleHolder(b.lab, b.vip, 5_000, n3);
  });
});
