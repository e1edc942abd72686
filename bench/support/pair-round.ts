// One failover round on the two-node pair of bed.ts: a client probing the VIP, a fault on n1, and the outage the client
// sees until n2 serves it. bench:failover runs it for both systems; bench:k8s runs it for keepalived, the reference
// next to the operator's figures.

import { waitFor, type Probe, type ProbeOptions } from "../../testing/lab/index.js";
import { errorText, sleep, type Bed } from "./bed.js";
import { intervalOf, type AdvertSetting, type SystemName } from "./speakers.js";

export const pairScenarioNames = ["link-cut", "nginx-kill", "sigterm", "sigkill"] as const;
export type PairScenario = (typeof pairScenarioNames)[number];

const baselineMs = 500;
const afterRecoveryMs = 300;

export interface PairRoundResult {
  readonly system: SystemName;
  readonly setting: AdvertSetting;
  readonly scenario: PairScenario;
  readonly round: number;
  /** Longest run of failed requests after the fault, first failure to first success (ms). */
  readonly outageMs: number;
  readonly failed: number;
  /** When n2 was first seen as Master, from the fault (ms). */
  readonly takeoverMs: number | undefined;
  /** Failed requests before the fault (probe noise on a busy machine), not counted above. */
  readonly noise: number;
  readonly isTimedOut: boolean;
  /** Set when the round could not run (the pair did not settle, a fault could not be injected); no figures then. */
  readonly error?: string;
}

async function inject(bed: Bed, scenario: PairScenario): Promise<void> {
  switch (scenario) {
    case "link-cut":
      await bed.lab.cutLink(bed.master);
      return;
    case "nginx-kill":
      bed.nginxOf(bed.master)?.kill("SIGKILL");
      return;
    case "sigterm":
      bed.speakerOf(bed.master).terminate();
      return;
    case "sigkill":
      await bed.speakerOf(bed.master).crash();
      return;
  }
}

/** Recovered: n2 is Master and the client has been served by n2 a few times with no failure since. */
async function waitRecovered(bed: Bed, probe: Probe, intervalMs: number): Promise<{ takeoverAt?: number; isTimedOut: boolean }> {
  const backup = bed.speakerOf(bed.backup);
  const servedBefore = probe.snapshot().answeredBy[bed.backup.name] ?? 0;
  let takeoverAt: number | undefined;
  try {
    await waitFor(() => {
      if (takeoverAt === undefined && backup.role() === "Master") takeoverAt = Date.now();
      const snapshot = probe.snapshot();
      const isFailing = snapshot.windows.at(-1)?.isOpen === true;
      return takeoverAt !== undefined && !isFailing && (snapshot.answeredBy[bed.backup.name] ?? 0) > servedBefore + 5;
    }, { timeoutMs: 6 * intervalMs + 8_000, intervalMs: 5, what: "the client served by n2" });
    return { takeoverAt, isTimedOut: false };
  } catch {
    return { takeoverAt, isTimedOut: true };
  }
}

/** Runs one round on the pair `bed` has started; a round that cannot run comes back with `error`, it never throws. */
export async function runPairRound(bed: Bed, system: SystemName, setting: AdvertSetting, scenario: PairScenario, round: number, probeOptions: ProbeOptions): Promise<PairRoundResult> {
  try {
    return await measureRound(bed, system, setting, scenario, round, probeOptions);
  } catch (err) {
    return { system, setting, scenario, round, outageMs: 0, failed: 0, takeoverMs: undefined, noise: 0, isTimedOut: false, error: errorText(err) };
  }
}

async function measureRound(bed: Bed, system: SystemName, setting: AdvertSetting, scenario: PairScenario, round: number, probeOptions: ProbeOptions): Promise<PairRoundResult> {
  await bed.ensureReady();
  const probe = await bed.lab.startProbe(bed.url, probeOptions);
  let faultAt = Date.now();
  try {
    await sleep(baselineMs);
    faultAt = Date.now();
    await inject(bed, scenario);
    const { takeoverAt, isTimedOut } = await waitRecovered(bed, probe, intervalOf(system, setting));
    await sleep(afterRecoveryMs);
    const report = await probe.stop();
    const after = report.windows.filter((w) => w.endMs >= faultAt);
    const before = report.windows.filter((w) => w.endMs < faultAt);
    return {
      system, setting, scenario, round,
      outageMs: after.reduce((max, w) => Math.max(max, w.endMs - w.startMs), 0),
      failed: after.reduce((sum, w) => sum + w.failed, 0),
      takeoverMs: takeoverAt === undefined ? undefined : takeoverAt - faultAt,
      noise: before.reduce((sum, w) => sum + w.failed, 0),
      isTimedOut,
    };
  } finally {
    await probe.stop();
    if (scenario === "sigterm") {
      // Our agent lingers after SIGTERM until its successor is heard; let it finish before the pair is rebuilt.
      const speaker = bed.speakerOf(bed.master);
      await Promise.race([speaker.exited, sleep(10_000)]);
      await speaker.crash();
    }
  }
}

export function describePairRound(r: PairRoundResult): string {
  const takeover = r.takeoverMs === undefined ? "n2 never Master" : `n2 Master at +${r.takeoverMs} ms`;
  const extra = [r.isTimedOut ? "TIMED OUT" : "", r.noise > 0 ? `${r.noise} failed before the fault` : "", r.error ?? ""]
    .filter((s) => s !== "").join(", ");
  return `outage ${r.outageMs} ms, failed ${r.failed}, ${takeover}${extra === "" ? "" : `, ${extra}`}`;
}

/** ours/keepalived of two median outages, with the zero cases spelled out rather than dividing by 0. */
export function ratioText(ours: number | undefined, keepalived: number | undefined): string {
  if (ours === undefined || keepalived === undefined) return "–";
  if (keepalived === 0) return ours === 0 ? "= (both 0)" : "∞ (keepalived 0)";
  return `${(ours / keepalived).toFixed(2)}×`;
}
