// Shared by the agent namespace tests: one lab per file with nginx on every node, agents started and stopped per
// test, and the few measurements the tests report.

import { writeFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll } from "vitest";
import { join } from "node:path";
import { addressesOn, createLab, startNginx, waitFor, type Lab, type LabHost, type NginxProcess, type ProbeReport } from "../../../testing/lab/index.js";
import { startAgent, vipHolders, type AgentProcess, type StartAgentOptions } from "../../../testing/lab/agent.js";

export interface AgentBed {
  readonly lab: Lab;
  readonly vip: string;
  readonly nodes: readonly LabHost[];
  readonly nginx: Map<string, NginxProcess>;
  /** Agents started through `start`, so `reset` and `destroy` find them even when a test fails halfway. */
  readonly agents: Set<AgentProcess>;
  node(index: number): LabHost;
  /** Writes `manifest` to a file of its own (rewritable for live reconfiguration) and starts the agent. */
  start(host: LabHost, manifest: string, opts?: Omit<StartAgentOptions, "manifest" | "configPath">): Promise<AgentProcess>;
  /** Restarts nginx on `host` if it is not running. */
  ensureNginx(host: LabHost): Promise<void>;
  /** Prints every agent's log since it started, and the client's neighbour table: for afterEach when a test failed. */
  dump(label: string): Promise<void>;
  /** Kills every agent, heals every cut, removes every address but the node's own, restarts dead nginx: a clean slate per test. */
  reset(): Promise<void>;
  destroy(): Promise<void>;
}

export async function createAgentBed(nodeCount: number, idPrefix: string): Promise<AgentBed> {
  const lab = await createLab({ nodes: nodeCount, idPrefix });
  const nginx = new Map<string, NginxProcess>();
  const agents = new Set<AgentProcess>();
  const isNginxUp = new Map<string, boolean>();
  let configCounter = 0;
  const vip = lab.vip(0).address;

  const ensureNginx = async (host: LabHost): Promise<void> => {
    if (isNginxUp.get(host.name) === true) return;
    const process = await startNginx(lab, host);
    nginx.set(host.name, process);
    isNginxUp.set(host.name, true);
    void process.exited.then(() => isNginxUp.set(host.name, false));
  };

  const bed: AgentBed = {
    lab,
    vip,
    nodes: lab.nodes,
    nginx,
    agents,
    node(index: number): LabHost {
      const host = lab.nodes[index];
      if (host === undefined) throw new Error(`the bed has no node ${index}`);
      return host;
    },
    async start(host, manifest, opts = {}) {
      configCounter += 1;
      const configPath = join(lab.tmpDir, `vip-${host.name}-${configCounter}.yaml`);
      writeFileSync(configPath, manifest);
      const agent = await startAgent(lab, host, { ...opts, configPath });
      agents.add(agent);
      return agent;
    },
    ensureNginx,
    async dump(label) {
      const neighbours = await lab.exec(lab.client, "ip", ["-s", "neigh", "show", "dev", lab.client.ifname]);
      console.log(`[client neighbours] ${label}\n${neighbours.stdout}`);
      const lines = [...agents].flatMap((agent) => agent.logs().map((line) => ({ time: line.time, text: `${agent.node} ${JSON.stringify(line)}` })));
      lines.sort((a, b) => a.time - b.time);
      const start = lines[0]?.time ?? 0;
      console.log(`[agent logs] ${label}\n${lines.map((l) => `  +${l.time - start} ms ${l.text}`).join("\n")}`);
    },
    async reset() {
      await Promise.all([...agents].map((agent) => agent.kill()));
      agents.clear();
      for (const host of lab.nodes) {
        await lab.restoreLink(host);
        for (const peer of lab.nodes) if (peer !== host) await lab.healPeers(host, peer);
        // Every VIP a test may have left, of any index or family, goes; the node's own address comes back if a test
        // removed it.
        const own = new Set([host.address, host.address6]);
        for (const entry of await addressesOn(lab, host)) {
          if (entry.scope !== "link" && !own.has(entry.address)) await lab.exec(host, "ip", ["addr", "del", `${entry.address}/${entry.prefixLength}`, "dev", host.ifname]);
        }
        await lab.exec(host, "ip", ["addr", "replace", `${host.address}/${lab.prefixLength}`, "dev", host.ifname]);
        await ensureNginx(host);
      }
    },
    async destroy() {
      await Promise.all([...agents].map((agent) => agent.kill()));
      agents.clear();
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

/**
 * A bed for the whole describe block: built before its first test, reset after each (its agents' logs printed when
 * one failed), destroyed after the last. Returns the getter the tests use.
 */
export function useAgentBed(nodeCount: number, idPrefix: string): () => AgentBed {
  let bed: AgentBed | undefined;
  beforeAll(async () => {
    bed = await createAgentBed(nodeCount, idPrefix);
  });
  afterEach(async (context) => {
    if (bed === undefined) return;
    if (context.task.result?.state === "fail") await bed.dump(context.task.name);
    await bed.reset();
  });
  afterAll(async () => {
    await bed?.destroy();
  });
  return () => {
    if (bed === undefined) throw new Error("the agent bed is not up");
    return bed;
  };
}

/** Waits until exactly one node holds `address` and, when `expected` is given, that it is that node. */
export async function waitForSingleHolder(lab: Lab, address: string, timeoutMs: number, expected?: LabHost): Promise<string> {
  let holders: string[] = [];
  await waitFor(async () => {
    holders = await vipHolders(lab, address);
    return holders.length === 1 && (expected === undefined || holders[0] === expected.name);
  }, { timeoutMs, intervalMs: 25, what: `exactly one holder of ${address}${expected === undefined ? "" : ` (${expected.name})`}` });
  const [holder = ""] = holders;
  return holder;
}

/** Prints one line the test summary and the report pick up. */
export function reportMeasure(scenario: string, report: ProbeReport): void {
  console.log(`[measure] ${scenario}: outage ${report.maxOutageMs} ms, failed ${report.failed}/${report.sent}, windows ${report.windows.length}, answeredBy ${JSON.stringify(report.answeredBy)}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Prints the agents' log lines and the client's outage windows since `sinceMs`, merged by time, for the report. */
export function printTimeline(label: string, sinceMs: number, agents: readonly AgentProcess[], report: ProbeReport): void {
  const events = [
    ...agents.flatMap((agent) => agent.logs().filter((line) => line.time >= sinceMs).map((line) => ({ time: line.time, text: `${agent.node} ${line.msg}` }))),
    ...report.windows.map((w) => ({ time: w.startMs, text: `client: ${w.failed} failed until +${w.endMs - sinceMs} ms` })),
  ].sort((a, b) => a.time - b.time);
  console.log(`[timeline] ${label}\n${events.map((e) => `  +${e.time - sinceMs} ms ${e.text}`).join("\n")}`);
}
