import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { haVipManifest, vipHolders, type AgentProcess, type HaVipManifestOptions } from "../../../testing/lab/agent.js";
import { waitFor } from "../../../testing/lab/index.js";
import { createAgentBed, printTimeline, reportMeasure, sleep, waitForSingleHolder, type AgentBed } from "./support.js";

const intervalMs = 100;
// n3's priority is far below n2's so that their Skew_Times differ by 27 ms, not 8 ms (as 120 and 100 would): at a
// 100 ms interval on two shared cores, a smaller gap lets n3's timer win the race now and then (see the report).
const priorities = [150, 120, 50] as const;
// RFC 5798 §6.1 for the 120 node: Master_Down_Interval = 3 × interval + (256 − 120) × interval / 256 ≈ 353 ms.
const masterDownMs = 3 * intervalMs + Math.floor(((256 - 120) * intervalMs) / 256);
// Master_Down_Interval plus 700 ms for timer lateness, arping start-up and the client's next request on two shared
// cores: 1053 ms, twice the worst measured (takeover 364-508 ms, client outage 303-521 ms over four runs, one in CI).
const outageBoundMs = masterDownMs + 700;

describe("standalone agent: failover", () => {
  let bed: AgentBed;

  beforeAll(async () => {
    bed = await createAgentBed(3, "haf");
  });

  afterEach(async (context) => {
    if (context.task.result?.state === "fail") await bed.dump(context.task.name);
    await bed.reset();
  });

  afterAll(async () => {
    await bed?.destroy();
  });

  function manifest(extra: Partial<HaVipManifestOptions> = {}): string {
    return haVipManifest({
      addresses: [`${bed.vip}/24`],
      advertisementIntervalMs: intervalMs,
      priorities: Object.fromEntries(bed.nodes.map((host, i) => [host.name, priorities[i] ?? 100])),
      probe: { periodMs: 200, timeoutMs: 100, failureThreshold: 2 },
      weight: 0,
      ...extra,
    });
  }

  async function startThree(text = manifest()) {
    const agents = await Promise.all(bed.nodes.map((host) => bed.start(host, text)));
    const [a1, a2, a3] = agents;
    if (a1 === undefined || a2 === undefined || a3 === undefined) throw new Error("three agents expected");
    await waitForSingleHolder(bed.lab, bed.vip, 10_000, bed.node(0));
    await a1.waitForState("Master", 5_000);
    await a2.waitForState("Backup", 5_000);
    await a3.waitForState("Backup", 5_000);
    return { a1, a2, a3 };
  }

  /** The first Backup → Master after `sinceMs` on n2 or n3, and whether n3 (the lowest) was Master at any point. */
  function takeover(a2: AgentProcess, a3: AgentProcess, sinceMs: number) {
    const masters = [...a2.transitions(), ...a3.transitions()].filter((t) => t.to === "Master" && t.time >= sinceMs);
    masters.sort((a, b) => a.time - b.time);
    return { first: masters[0], hasLowestRaced: a3.transitions().some((t) => t.to === "Master" && t.time >= sinceMs) };
  }

  it.each([
    ["the Master's link goes silent (carrier stays up)", true],
    ["the Master loses carrier", false],
  ])("RFC 5798 §6.4.2: when %s, the next priority takes over after Master_Down_Interval (353 ms), takeover and the client's outage under 1053 ms", async (_, shouldKeepCarrier) => {
    const { a2, a3 } = await startThree();
    const probe = await bed.lab.startProbe(`http://${bed.vip}/`, { intervalMs: 10 });
    await sleep(300);
    const cutAt = Date.now();
    await bed.lab.cutLink(bed.node(0), { shouldKeepCarrier });
    await a2.waitForState("Master", 5_000);
    await waitFor(async () => (probe.snapshot().answeredBy[bed.node(1).name] ?? 0) > 10, {
      timeoutMs: 5_000, what: "the client served by n2",
    });
    const report = await probe.stop();
    const { first, hasLowestRaced } = takeover(a2, a3, cutAt);
    const takeoverMs = first === undefined ? Infinity : first.time - cutAt;
    reportMeasure(`link cut (${shouldKeepCarrier ? "silent" : "carrier loss"}), interval ${intervalMs} ms, takeover ${takeoverMs} ms${hasLowestRaced ? ", n3 raced to Master" : ""}`, report);
    expect(first?.reason).toBe("master-down-timer-expired");
    expect(takeoverMs).toBeLessThan(outageBoundMs);
    expect((await a3.waitForState("Backup", 2_000)).state).toBe("Backup");
    expect(report.maxOutageMs).toBeGreaterThan(0);
    expect(report.maxOutageMs).toBeLessThan(outageBoundMs);
    expect(report.windows.filter((w) => w.isOpen)).toEqual([]);
    // The cut node cannot be reached, so of the reachable nodes only n2 holds the VIP.
    expect((await vipHolders(bed.lab, bed.vip)).filter((name) => name !== bed.node(0).name)).toEqual([bed.node(1).name]);
  });

  it("health check, weight 0: when nginx dies on the Master it goes FAULT, releases the VIP, and the Backup takes over", async () => {
    const { a1, a2, a3 } = await startThree();
    const probe = await bed.lab.startProbe(`http://${bed.vip}/`, { intervalMs: 10 });
    await sleep(300);
    const killedAt = Date.now();
    bed.nginx.get(bed.node(0).name)?.kill("SIGKILL");
    const fault = await a1.waitForState("Fault", 5_000);
    expect(fault.isHealthy).toBe(false);
    await a2.waitForState("Master", 5_000);
    await waitFor(async () => (probe.snapshot().answeredBy[bed.node(1).name] ?? 0) > 10, {
      timeoutMs: 5_000, what: "the client served by n2",
    });
    const report = await probe.stop();
    const { first, hasLowestRaced } = takeover(a2, a3, killedAt);
    reportMeasure(`nginx SIGKILL on the Master (probe 200 ms × 2, weight 0)${hasLowestRaced ? ", n3 raced to Master" : ""}`, report);
    expect(a1.transitions().at(-1)).toMatchObject({ from: "Master", to: "Fault", reason: "health-failed" });
    // The Fault node sent priority 0 (RFC 5798 §6.4.3). Every router here is ours, so it first named n2 (hand-over
    // extension, src/vrrp/handover.ts), which took over at once; n3 waited Skew_Time and heard n2 first.
    expect(first?.reason).toBe("nominated");
    expect((await a3.waitForState("Backup", 2_000)).state).toBe("Backup");
    // The Fault node may keep the VIP briefly after hearing n2 (the hand-over linger), then lets go.
    await waitForSingleHolder(bed.lab, bed.vip, 3_000, bed.node(1));
    expect(report.maxOutageMs).toBeLessThan(1_500);
    expect(report.windows.filter((w) => w.isOpen)).toEqual([]);
  });

  it.each(["Multicast", "Unicast"] as const)("RFC 5798 §6.4.3 with hand-over (%s): on SIGTERM the Master sends priority 0 and the client sees no hole (at most the in-flight request)", async (mode) => {
    const [n1, n2] = [bed.node(0), bed.node(1)];
    const transport = mode === "Unicast" ? { mode, peers: [n1.address, n2.address] } : { mode };
    // Two agents: the hand-over alone, without a third router racing on Skew_Time.
    const text = manifest({ transport });
    const [a1, a2] = await Promise.all([bed.start(n1, text), bed.start(n2, text)]);
    if (a1 === undefined || a2 === undefined) throw new Error("two agents expected");
    await waitForSingleHolder(bed.lab, bed.vip, 10_000, n1);
    await a2.waitForState("Backup", 5_000);
    const probe = await bed.lab.startProbe(`http://${bed.vip}/`, { intervalMs: 10 });
    await sleep(300);
    const stoppedAt = Date.now();
    const exit = await a1.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    await a2.waitForState("Master", 5_000);
    await waitFor(async () => (probe.snapshot().answeredBy[bed.node(1).name] ?? 0) > 20, {
      timeoutMs: 5_000, what: "the client served by n2",
    });
    const report = await probe.stop();
    reportMeasure(`SIGTERM hand-over (${mode})`, report);
    printTimeline(`SIGTERM hand-over (${mode})`, stoppedAt, [a1, a2], report);
    // Both routers are ours: the leaving Master named n2 before its priority 0 (hand-over extension).
    expect(a2.transitions().at(-1)).toMatchObject({ from: "Backup", to: "Master", reason: "nominated" });
    expect(await vipHolders(bed.lab, bed.vip)).toEqual([bed.node(1).name]);
    // No hole: a gap in ARP or VIP coverage shows as requests timing out (100 ms each). What remains is physics: a
    // request whose TCP connection opened on n1 just before the client's ARP entry flips to n2 is reset by n2, which
    // never saw that connection (measured 1 run in 6 here; keepalived has the same, and only connection sync could
    // avoid it). So at most that one request, failing fast rather than timing out.
    expect(report.failed).toBeLessThanOrEqual(1);
    expect(report.maxOutageMs).toBeLessThan(100);
  });

  it("stale VIP: an agent restarted after SIGKILL removes the address left by its earlier run before joining", async () => {
    const { a1, a2 } = await startThree();
    await a1.kill();
    // The crashed agent could not remove it: both n1 (stale) and, after Master_Down_Interval, n2 hold the VIP.
    await a2.waitForState("Master", 5_000);
    expect((await vipHolders(bed.lab, bed.vip)).sort()).toEqual([bed.node(0).name, bed.node(1).name]);
    // The stale address's kernel lease outlives the Backup's Master_Down_Interval only by a fraction of a second, so
    // on a loaded machine it could lapse before the restarted agent looks (a CI run failed that way). Made permanent,
    // as an address left by a run before the lease or by hand would be, the removal at start is what is tested.
    await bed.lab.exec(bed.node(0), "ip", ["addr", "replace", `${bed.vip}/24`, "dev", "eth0", "valid_lft", "forever", "preferred_lft", "forever"]);
    const restarted = await bed.start(bed.node(0), manifest());
    await waitFor(() => restarted.logs().some((line) => /removing a virtual address left by an earlier run/.test(line.msg)), {
      timeoutMs: 10_000, what: "the stale-address log line",
    });
    // The stale address went before the router joined: the log line comes before its first transition.
    const lines = restarted.logs();
    const removedAt = lines.findIndex((line) => /removing a virtual address left by an earlier run/.test(line.msg));
    const joinedAt = lines.findIndex((line) => /^VRRP /.test(line.msg));
    expect(removedAt).toBeGreaterThanOrEqual(0);
    expect(joinedAt === -1 || removedAt < joinedAt).toBe(true);
    // n1 has the highest priority and preempts (mode Always by default): one holder in the end, n1.
    await restarted.waitForState("Master", 10_000);
    await waitForSingleHolder(bed.lab, bed.vip, 5_000, bed.node(0));
    await a2.waitForState("Backup", 5_000);
    const answer = await bed.lab.httpGet(bed.lab.client, `http://${bed.vip}/`);
    expect(answer).toEqual({ status: 200, body: bed.node(0).name });
  });
});
