// `npm run bench:kind`: the kind e2e's scenarios on a real cluster (kind nodes with a real kubelet and containerd,
// our image, `helm install` of the chart), then a soak under the chart's limits with every pod's cgroup memory and
// CPU. Prints one Markdown table and writes it to bench/results/kind-<UTC stamp>.md. Run through
// scripts/with-kind-images.sh (package.json does), which starts Docker and builds the images.
//   --soak-minutes N   (default 10)
import { randomBytes } from "node:crypto";
import { advertisementIntervalOf } from "../src/api/v1alpha1/index.js";
import { kindImagesFromEnv } from "../test/kind/kind-cluster.js";
import { failoverScenarios, helmUninstall, podUsage, startKindHa, type ScenarioRow } from "../test/kind/kind-ha.js";
import { renderKindTable } from "../test/kind/kind-report.js";
import { writeResults } from "./support/report.js";

const soakFlag = process.argv.indexOf("--soak-minutes");
const soakMinutes = soakFlag === -1 ? 10 : Number(process.argv[soakFlag + 1]);
if (!(soakMinutes > 0)) throw new Error("--soak-minutes takes a positive number");
const log = (line: string): void => { process.stderr.write(`[bench:kind] ${line}\n`); };

const startedAt = new Date();
const { ha, install } = await startKindHa({ runId: randomBytes(3).toString("hex"), images: kindImagesFromEnv(), log });
const rows: ScenarioRow[] = [install];
try {
  for (const scenario of failoverScenarios) {
    log(scenario.name);
    rows.push(await scenario(ha));
  }
  log(`soak for ${soakMinutes} min`);
  const probe = await ha.startClient("soak");
  await new Promise((resolveSoak) => setTimeout(resolveSoak, soakMinutes * 60_000));
  const soak = await probe.stop();
  rows.push({ scenario: `soak, ${soakMinutes} min`, outageMs: soak.maxOutageMs, failedRequests: soak.failed, sentRequests: soak.sent, figures: {} });
  const usage = await podUsage(ha);
  const uninstall = await helmUninstall(ha);
  rows.push({ scenario: "helm uninstall", outageMs: 0, failedRequests: 0, sentRequests: 0, figures: { seconds: uninstall.seconds, vipHolders: uninstall.vipHolders.length, agentPods: uninstall.agentPods } });
  const text = [
    `# bench:kind, ${startedAt.toISOString()}`,
    "",
    "3 kind nodes (1 control plane, 2 workers, all edge), Kubernetes v1.37.2 under a real kubelet and containerd, the chart",
    `with the bundled nginx, the default ${advertisementIntervalOf({ vrrpVersion: 3 })} adverts (the chart leaves vip.advertisementInterval`,
    "empty), preemption Never, priorities 150/100/50; a client container on the kind network",
    "requests the VIP every 10 ms (100 ms timeout). Pod figures are read from each container's cgroup after the soak.",
    "",
    renderKindTable(rows, usage),
    "",
  ].join("\n");
  process.stdout.write(`${text}\n`);
  writeResults("kind", startedAt, text);
} finally {
  await ha.close();
}
