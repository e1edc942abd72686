// The kind scenarios and pod usage as Markdown tables: printed by the e2e, and by bench/kind.ts into bench/results.
import type { PodUsage, ScenarioRow } from "./kind-ha.js";

export function renderKindTable(rows: readonly ScenarioRow[], usage: readonly PodUsage[]): string {
  const lines = [
    "| scenario | outage_ms | failed / sent requests | figures |",
    "|---|---|---|---|",
    ...rows.map((row) => {
      const figures = Object.entries(row.figures).map(([key, value]) => `${key} ${value}`).join(", ");
      return `| ${row.scenario} | ${row.outageMs} | ${row.failedRequests} / ${row.sentRequests} | ${figures} |`;
    }),
  ];
  if (usage.length > 0) {
    lines.push(
      "",
      "| pod | node | working set MiB | peak MiB | CPU millicores | throttled periods | request (cpu / memory) | limit (cpu / memory) | restarts | OOM killed |",
      "|---|---|---|---|---|---|---|---|---|---|",
      ...usage.map((pod) =>
        `| ${pod.pod} | ${pod.node} | ${pod.workingSetMiB} | ${pod.peakMiB} | ${pod.cpuMillicores} | ${pod.throttledPeriods} of ${pod.periods} | ${pod.request} | ${pod.limit} | ${pod.restarts} | ${pod.isOomKilled ? "yes" : "no"} |`),
    );
  }
  return lines.join("\n");
}
