import { writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { haVipManifest, vipHolders, type AgentProcess } from "../../../testing/lab/agent.js";
import { waitFor } from "../../../testing/lab/index.js";
import { reportMeasure, sleep, useAgentBed, waitForSingleHolder } from "./support.js";

interface RouterDocument {
  readonly name: string;
  readonly vrid: number;
  readonly vipIndex: number;
  readonly priorities: Readonly<Record<string, number>>;
}

const intervalMs = 200;

describe("standalone agent: several HighAvailabilityVIPs in one process, like several vrrp_instance blocks", () => {
  const bed = useAgentBed(2, "hsr");
  const vip = (index: number): string => bed().lab.vip(index).address;
  const manifest = (documents: readonly RouterDocument[], extra: readonly string[] = []): string =>
    [
      ...documents.map((document) =>
        haVipManifest({ name: document.name, virtualRouterID: document.vrid, addresses: [`${vip(document.vipIndex)}/24`], advertisementIntervalMs: intervalMs, priorities: document.priorities }),
      ),
      ...extra,
    ].join("---\n");
  const names = async (agent: AgentProcess): Promise<string[]> => (await agent.document()).routers.map((router) => router.havip).sort();

  it("one process per node runs each document as its own router; a broken document or a reused VRID is reported by name, and hides nothing", async () => {
    const [n1, n2] = [bed().node(0), bed().node(1)];
    const documents: RouterDocument[] = [
      { name: "web", vrid: 11, vipIndex: 1, priorities: { [n1.name]: 150, [n2.name]: 100 } },
      { name: "api", vrid: 12, vipIndex: 2, priorities: { [n1.name]: 100, [n2.name]: 150 } },
    ];
    const broken = haVipManifest({ name: "typo", virtualRouterID: 13, addresses: [`${vip(3)}/24`] }).replace("virtualRouterID: 13", "virtualRouterID: 13\n  advertisementInterval: fast");
    const reused = haVipManifest({ name: "again", virtualRouterID: 11, addresses: [`${vip(4)}/24`] });
    const text = manifest(documents, [broken, reused]);
    const [a1, a2] = await Promise.all([bed().start(n1, text), bed().start(n2, text)]);
    if (a1 === undefined || a2 === undefined) throw new Error("two agents expected");

    await Promise.all([a1.waitForState("Master", 5_000, "web"), a1.waitForState("Backup", 5_000, "api"), a2.waitForState("Master", 5_000, "api"), a2.waitForState("Backup", 5_000, "web")]);
    await waitForSingleHolder(bed().lab, vip(1), 5_000, n1);
    await waitForSingleHolder(bed().lab, vip(2), 5_000, n2);
    expect(await vipHolders(bed().lab, vip(3))).toEqual([]);
    expect(await vipHolders(bed().lab, vip(4))).toEqual([]);
    for (const agent of [a1, a2]) {
      const document = await agent.document();
      expect(document.routers.map((router) => [router.havip, router.vrid]).sort()).toEqual([["api", 12], ["web", 11]]);
      const problems = Object.fromEntries(document.problems.map((entry) => [entry.havip, entry.problem]));
      expect(Object.keys(problems).sort()).toEqual(["again", "typo"]);
      expect(problems["typo"]).toContain("spec.advertisementInterval");
      expect(problems["again"]).toContain("spec.virtualRouterID 11 is already used by web");
    }
    const metrics = await bed().lab.httpGet(n1, `http://127.0.0.1:${a1.httpPort}/metrics`);
    expect(metrics.body).toMatch(/ha_nginx_vrrp_state\{havip="web",vrid="11",state="Master",node="[^"]+"\} 1/);
    expect(metrics.body).toMatch(/ha_nginx_vrrp_state\{havip="api",vrid="12",state="Backup",node="[^"]+"\} 1/);
  });

  it("adding, editing and deleting documents touches only those routers: no flip and no lost request elsewhere, and a deleted one lets its VIP go", async () => {
    const [n1, n2] = [bed().node(0), bed().node(1)];
    const web: RouterDocument = { name: "web", vrid: 11, vipIndex: 1, priorities: { [n1.name]: 150, [n2.name]: 100 } };
    const api: RouterDocument = { name: "api", vrid: 12, vipIndex: 2, priorities: { [n1.name]: 100, [n2.name]: 150 } };
    const old: RouterDocument = { name: "old", vrid: 13, vipIndex: 3, priorities: { [n1.name]: 150, [n2.name]: 100 } };
    const added: RouterDocument = { name: "new", vrid: 14, vipIndex: 4, priorities: { [n1.name]: 100, [n2.name]: 150 } };
    const [a1, a2] = await Promise.all([bed().start(n1, manifest([web, api, old])), bed().start(n2, manifest([web, api, old]))]);
    if (a1 === undefined || a2 === undefined) throw new Error("two agents expected");
    await Promise.all([a1.waitForState("Master", 5_000, "web"), a1.waitForState("Master", 5_000, "old"), a2.waitForState("Master", 5_000, "api")]);
    await Promise.all([waitForSingleHolder(bed().lab, vip(1), 5_000, n1), waitForSingleHolder(bed().lab, vip(2), 5_000, n2), waitForSingleHolder(bed().lab, vip(3), 5_000, n1)]);
    const before = { web: [a1.transitions("web").length, a2.transitions("web").length], api: [a1.transitions("api").length, a2.transitions("api").length] };
    const probe = await bed().lab.startProbe(`http://${vip(1)}/`, { intervalMs: 10 });

    const edited = manifest([web, { ...api, priorities: { [n1.name]: 120, [n2.name]: 150 } }, added]);
    writeFileSync(a1.configPath, edited);
    writeFileSync(a2.configPath, edited);
    await waitFor(async () => (await names(a1)).join() === "api,new,web" && (await names(a2)).join() === "api,new,web", { timeoutMs: 5_000, what: "both agents to serve api, new and web" });
    await a2.waitForState("Master", 5_000, "new");
    await waitForSingleHolder(bed().lab, vip(4), 5_000, n2);
    await waitFor(async () => (await a1.state("api")).priority === 120, { timeoutMs: 5_000, what: "api at priority 120 on n1" });
    // Several Master_Down_Intervals: a flip caused by the reload would have shown by now.
    await sleep(10 * intervalMs);
    const report = await probe.stop();
    reportMeasure("reload of one file: api edited, old deleted, new added; client on web's VIP", report);

    expect(a1.transitions("web").length).toBe(before.web[0]);
    expect(a2.transitions("web").length).toBe(before.web[1]);
    expect(a1.transitions("api").length).toBe(before.api[0]);
    expect(a2.transitions("api").length).toBe(before.api[1]);
    expect(report.failed).toBe(0);
    expect(await vipHolders(bed().lab, vip(1))).toEqual([n1.name]);
    expect(await vipHolders(bed().lab, vip(2))).toEqual([n2.name]);
    expect(await vipHolders(bed().lab, vip(3))).toEqual([]);
    expect(await vipHolders(bed().lab, vip(4))).toEqual([n2.name]);
    const metrics = await bed().lab.httpGet(n1, `http://127.0.0.1:${a1.httpPort}/metrics`);
    expect(metrics.body).not.toContain('havip="old"');

    // A document broken by an edit keeps its running router; the rest of the file still applies.
    const broken = manifest([{ ...web, priorities: { [n1.name]: 300 } }, { ...api, priorities: { [n1.name]: 130, [n2.name]: 150 } }, added]);
    writeFileSync(a1.configPath, broken);
    await waitFor(async () => (await a1.state("api")).priority === 130, { timeoutMs: 5_000, what: "api at priority 130 on n1" });
    const document = await a1.document();
    expect(document.problems.map((entry) => entry.havip)).toEqual(["web"]);
    expect(await a1.state("web")).toMatchObject({ state: "Master", priority: 150, holdsVip: true });
  });

  it("a Backup of 20 routers whose loop stalls past Master_Down_Interval reads every advert that waited before its timers: none takes over", async () => {
    const [n1, n2] = [bed().node(0), bed().node(1)];
    const documents: RouterDocument[] = Array.from({ length: 20 }, (_, index) => ({ name: `r${index}`, vrid: 30 + index, vipIndex: 10 + index, priorities: { [n1.name]: 150, [n2.name]: 100 } }));
    const text = manifest(documents);
    const master = await bed().start(n1, text);
    await Promise.all(documents.map((document) => master.waitForState("Master", 5_000, document.name)));
    const backup = await bed().start(n2, text);
    await Promise.all(documents.map((document) => backup.waitForState("Backup", 5_000, document.name)));
    const [backupBefore, masterBefore] = [backup.transitions().length, master.transitions().length];
    // Master_Down_Interval at 200 ms and priority 100 is 721 ms: every router's timer is due when the loop resumes, and
    // each has several adverts waiting in the one socket they share.
    backup.signal("SIGSTOP");
    try {
      await sleep(1_500);
    } finally {
      backup.signal("SIGCONT");
    }
    await sleep(1_500);
    expect(backup.transitions().slice(backupBefore)).toEqual([]);
    expect(master.transitions().slice(masterBefore)).toEqual([]);
  });
});
