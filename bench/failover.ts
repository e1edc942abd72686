// Failover benchmark: our agent and keepalived, same lab, same timers, same faults, side by side.
//
//   npx tsx bench/failover.ts [--rounds 3] [--intervals default,1000,100] [--scenarios link-cut,nginx-kill,sigterm,sigkill]
//                             [--systems ours,keepalived] [--cpu-window 30] [--quick]
//
// Root only (namespaces). Needs `npm run build` first (the agent runs from dist/). Prints progress lines, then the
// markdown tables, which are also written to bench/results/failover-<UTC stamp>.md.

import { parseArgs } from "node:util";
import { createBed } from "./support/bed.js";
import { describePairRound, pairScenarioNames, ratioText, runPairRound, type PairRoundResult, type PairScenario } from "./support/pair-round.js";
import { machineNote, markdownTable, median, parseList, parsePositiveInts, writeResults } from "./support/report.js";
import { sampleResources, type ResourceSample } from "./support/resources.js";
import { healthCheck, intervalOf, settingLabel, systemNames, type AdvertSetting, type SystemName } from "./support/speakers.js";

const probeIntervalMs = 10;
// One request every 10 ms on a fresh connection; 50 ms is generous for a LAN answer on two loaded cores, and short
// enough that a request stuck on a dead node is counted within a few probe periods.
const probeTimeoutMs = 50;

interface ResourceResult {
  readonly system: SystemName;
  readonly setting: AdvertSetting;
  readonly samples: readonly ResourceSample[];
}

function options() {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string" },
      intervals: { type: "string" },
      scenarios: { type: "string" },
      systems: { type: "string" },
      "cpu-window": { type: "string" },
      quick: { type: "boolean", default: false },
    },
  });
  const isQuick = values.quick === true;
  return {
    rounds: parsePositiveInts(values.rounds ?? (isQuick ? "1" : "3"), "--rounds")[0] ?? 3,
    settings: parseSettings(values.intervals ?? (isQuick ? "100" : "default,1000,100")),
    scenarios: parseList(values.scenarios ?? (isQuick ? "link-cut,nginx-kill,sigterm" : pairScenarioNames.join(",")), pairScenarioNames, "scenario"),
    systems: parseList(values.systems ?? systemNames.join(","), systemNames, "system"),
    cpuWindowMs: 1000 * (parsePositiveInts(values["cpu-window"] ?? (isQuick ? "10" : "30"), "--cpu-window")[0] ?? 30),
  };
}

/** "default" (each system at its own default interval) or a positive number of ms. */
function parseSettings(text: string): AdvertSetting[] {
  return text.split(",").flatMap((item): AdvertSetting[] => (item.trim() === "default" ? ["default"] : parsePositiveInts(item, "--intervals")));
}

function figures(rounds: readonly PairRoundResult[]): { text: string; median: number | undefined } {
  const valid = rounds.filter((r) => r.error === undefined);
  const outages = valid.map((r) => r.outageMs);
  const mid = median(outages);
  if (mid === undefined) return { text: rounds.length === 0 ? "–" : "error", median: undefined };
  const timedOut = valid.filter((r) => r.isTimedOut).length;
  const text = `${Math.round(mid)} / ${Math.min(...outages)} / ${Math.max(...outages)}${timedOut > 0 ? ` (${timedOut} timed out)` : ""}`;
  return { text, median: mid };
}

function failoverTable(results: readonly PairRoundResult[], scenarios: readonly PairScenario[], settings: readonly AdvertSetting[]): string {
  const rows: string[][] = [];
  for (const scenario of scenarios) {
    for (const setting of settings) {
      const of = (system: SystemName) => results.filter((r) => r.system === system && r.scenario === scenario && r.setting === setting);
      const ours = figures(of("ours"));
      const theirs = figures(of("keepalived"));
      const ratio = ratioText(ours.median, theirs.median);
      const failed = (system: SystemName) => of(system).map((r) => String(r.failed)).join(",") || "–";
      const takeover = (system: SystemName) => {
        const values = of(system).flatMap((r) => (r.takeoverMs === undefined ? [] : [r.takeoverMs]));
        const mid = median(values);
        return mid === undefined ? "–" : String(Math.round(mid));
      };
      rows.push([scenario, settingLabel(setting), ours.text, theirs.text, ratio, `${failed("ours")} / ${failed("keepalived")}`,
        `${takeover("ours")} / ${takeover("keepalived")}`]);
    }
  }
  return markdownTable([
    "scenario", "advert", "ours outage median / min / max (ms)", "keepalived outage median / min / max (ms)",
    "ratio ours/keepalived (median)", "failed requests per round (ours / keepalived)", "n2 Master after (median ms, ours / keepalived)",
  ], rows);
}

function resourceTable(resources: readonly ResourceResult[]): string {
  const rows = resources.flatMap((r) => r.samples.map((s) => [
    r.system, `${intervalOf(r.system, r.setting)} ms${r.setting === "default" ? " (default)" : ""}`, `${s.node} (${s.role})`, String(s.processes),
    (s.rssKiB / 1024).toFixed(1), (s.peakKiB / 1024).toFixed(1), s.cpuPercent.toFixed(2), `${(s.windowMs / 1000).toFixed(0)} s`,
  ]));
  return markdownTable(["system", "advert", "node (role)", "processes", "RSS (MiB)", "peak RSS (MiB)", "CPU (% of one core)", "window"], rows);
}

async function main(): Promise<void> {
  const opts = options();
  if (process.getuid?.() !== 0) throw new Error("run as root: the lab creates network namespaces");
  const startedAt = new Date();
  console.log(`failover benchmark: systems ${opts.systems.join(",")}, intervals ${opts.settings.map(settingLabel).join(", ")}, scenarios ${opts.scenarios.join(",")}, ${opts.rounds} round(s)`);
  const bed = await createBed("bf");
  const results: PairRoundResult[] = [];
  const resources: ResourceResult[] = [];
  // CPU where it matters most: at the defaults a user gets, else at the fastest interval.
  const numbers = opts.settings.filter((setting) => setting !== "default");
  const cpuSetting: AdvertSetting = opts.settings.includes("default") ? "default" : numbers.includes(100) ? 100 : Math.min(...numbers);
  try {
    for (const setting of opts.settings) {
      for (const system of opts.systems) {
        console.log(`\n== ${system}, advert ${intervalOf(system, setting)} ms${setting === "default" ? " (its default)" : ""}: starting the pair`);
        await bed.startPair(system, setting);
        if (setting === cpuSetting) {
          console.log(`   sampling RSS and CPU for ${opts.cpuWindowMs / 1000} s`);
          const samples = await sampleResources([bed.speakerOf(bed.master), bed.speakerOf(bed.backup)], opts.cpuWindowMs);
          resources.push({ system, setting, samples });
          for (const s of samples) console.log(`   ${s.node} ${s.role}: RSS ${(s.rssKiB / 1024).toFixed(1)} MiB, CPU ${s.cpuPercent.toFixed(2)} %`);
        }
        for (const scenario of opts.scenarios) {
          for (let round = 1; round <= opts.rounds; round += 1) {
            const label = `[${system} ${settingLabel(setting)} ${scenario} r${round}]`;
            const result = await runPairRound(bed, system, setting, scenario, round, { intervalMs: probeIntervalMs, timeoutMs: probeTimeoutMs });
            results.push(result);
            console.log(`${label} ${describePairRound(result)}`);
          }
        }
        await bed.stopPair();
      }
    }
  } finally {
    await bed.destroy();
  }

  const elapsedS = Math.round((Date.now() - startedAt.getTime()) / 1000);
  const text = [
    `# Failover benchmark, ${startedAt.toISOString()}`,
    "",
    `Two lab nodes (n1 priority 150, n2 priority 100), VRRPv3 multicast, real nginx on each; the client requests the VIP every ${probeIntervalMs} ms on a fresh connection with a ${probeTimeoutMs} ms timeout. ` +
      `Outage: first failed request to first successful one after the fault. ${opts.rounds} round(s) per cell; run took ${elapsedS} s.`,
    `Health checks: ours probe period ${healthCheck.ours.periodMs} ms, timeout ${healthCheck.ours.timeoutMs} ms, failureThreshold ${healthCheck.ours.failureThreshold}, weight 0; ` +
      `keepalived track_script curl /healthz interval ${healthCheck.keepalived.intervalSeconds} s, timeout ${healthCheck.keepalived.timeoutSeconds} s, fall ${healthCheck.keepalived.fall}, rise ${healthCheck.keepalived.rise}, weight 0.`,
    machineNote(),
    "",
    failoverTable(results, opts.scenarios, opts.settings),
    "",
    "sigkill: the VIP stays on n1, whose nginx keeps serving, so the client sees no outage; n2 takes over after Master_Down_Interval and both hold the VIP until n1's speaker is restarted (ours removes the stale VIP at start).",
    "",
    resourceTable(resources),
    "",
    "## Rounds",
    "",
    ...results.map((r) => `- ${r.system} ${intervalOf(r.system, r.setting)} ms ${r.scenario} r${r.round}: ${describePairRound(r)}`),
    "",
  ].join("\n");
  console.log(`\n${text}`);
  console.log(`written to ${writeResults("failover", startedAt, text)}`);
}

await main();
