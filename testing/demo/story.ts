// The demo (`bash scripts/demo.sh`): three namespace nodes with nginx and the standalone agent, a client hitting the
// VIP every 10 ms, and a scripted story of failures, each step bounded in time and measured from the client's side.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { haVipManifest, startAgent, type AgentProcess } from "../lab/agent.js";
import { createLab, startNginx, type LabHost, type NginxProcess } from "../lab/index.js";
import { createDisplay } from "./display.js";
import { watchAgentState } from "./state-watch.js";
import { runStory, type DemoNode, type Expectation, type NodeOutcome, type ProbeRef, type Step } from "./story-runner.js";
import type { Palette, StepSummary } from "./view.js";

export interface DemoOptions {
  /** Shorter pauses between steps: the same story, less time to watch it. */
  readonly isFast: boolean;
  readonly palette: Palette;
  /** Where the live table and the captions go. */
  readonly out: NodeJS.WriteStream;
}

export interface DemoResult {
  readonly labId: string;
  readonly vip: string;
  readonly isOk: boolean;
  readonly durationMs: number;
  readonly client: { readonly sent: number; readonly ok: number; readonly failed: number };
  readonly steps: readonly StepSummary[];
  /** What the run created besides the lab's own namespaces, all removed by the end; for a check that nothing is left. */
  readonly created?: { readonly namespaces: readonly string[]; readonly paths: readonly string[] };
}

interface StandaloneNode extends DemoNode {
  readonly host: LabHost;
  readonly priority: number;
  agent: AgentProcess | undefined;
  nginx: NginxProcess | undefined;
}

const priorities = [150, 120, 100] as const;
const httpPort = 9750;
// RFC 5798 §5.2.7. 500 ms keeps the story quick while the Skew_Times of 120 and 100 stay 39 ms apart
// (§6.1: (256 − priority) × interval / 256), so after a hand-over edge-3 does not race edge-2 on two busy cores.
const advertisementIntervalMs = 500;
export const statePollMs = 150;
export const probeIntervalMs = 10;
const stepTimeoutMs = 15_000;

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const startedAt = Date.now();
  const { palette } = opts;
  const display = createDisplay(opts.out, palette);
  display.say(palette.bold("ha-nginx demo: three nodes with nginx and a VRRP agent each, one virtual IP, one client"));
  display.say(palette.dim("setting up network namespaces, nginx and the client..."));
  const lab = await createLab({ nodes: 3, idPrefix: "demo" });
  const probe: ProbeRef = { current: undefined };
  try {
    const vip = lab.vip(0).address;
    const nodes = lab.nodes.map((host, i): StandaloneNode => ({
      name: `edge-${i + 1}`,
      host,
      priority: priorities[i] ?? 100,
      watch: watchAgentState(lab, host, { httpPort, intervalMs: statePollMs }),
      agent: undefined,
      nginx: undefined,
    }));
    const configPath = join(lab.tmpDir, "vip.yaml");
    writeFileSync(configPath, haVipManifest({
      name: "demo",
      addresses: [`${vip}/24`],
      vrrpVersion: 3,
      advertisementIntervalMs,
      priorities: Object.fromEntries(nodes.map((node) => [node.name, node.priority])),
      transport: { mode: "Multicast" },
      preemption: { mode: "Always" },
      probe: { path: "/healthz", port: 80, periodMs: 200, timeoutMs: 150, failureThreshold: 2 },
      weight: 0,
    }));
    await Promise.all(nodes.map(async (node) => {
      node.nginx = await startNginx(lab, node.host, { body: node.name });
    }));

    const startAgentOn = async (node: StandaloneNode): Promise<void> => {
      node.agent = await startAgent(lab, node.host, { configPath, node: node.name, httpPort });
    };
    const [edge1, edge2, edge3] = nodes;
    if (edge1 === undefined || edge2 === undefined || edge3 === undefined) throw new Error("the demo needs three nodes");
    const expect = (master: DemoNode, ...others: [DemoNode, NodeOutcome][]): Expectation =>
      ({ masterAmong: [master], others: others.map(([node, outcome]) => [node, [outcome]] as const) });

    display.say(`${palette.dim("VIP")} ${vip} · ${palette.dim("priorities")} ${nodes.map((n) => `${n.name} ${n.priority}`).join(", ")} · ` +
      `${palette.dim("adverts every")} ${advertisementIntervalMs} ms · ${palette.dim("health check every 200 ms, 2 failures = Fault")}`);

    const steps: Step[] = [
      {
        name: "elect",
        caption: () => "Three agents start and elect edge-1, the highest priority; the client starts hitting the VIP.",
        async act() {
          await Promise.all(nodes.map(startAgentOn));
          // Started once the agents answer: the outage of this step is then the election itself (every agent waits
          // Master_Down_Interval as a Backup first, RFC 5798 §6.4.1), not the agents' process start-up.
          probe.current = await lab.startProbe(`http://${vip}/`, { intervalMs: probeIntervalMs, timeoutMs: 100 });
          return expect(edge1, [edge2, "Backup"], [edge3, "Backup"]);
        },
      },
      {
        name: "kill nginx",
        caption: () => "nginx on edge-1 crashes (SIGKILL): two failed health checks later edge-1 goes Fault, and edge-2 takes the VIP.",
        async act() {
          edge1.nginx?.kill("SIGKILL");
          await edge1.nginx?.exited;
          return expect(edge2, [edge1, "Fault"], [edge3, "Backup"]);
        },
      },
      {
        name: "restore nginx",
        caption: () => "nginx on edge-1 is back: edge-1 is healthy again and preempts edge-2 (150 > 120).",
        async act() {
          edge1.nginx = await startNginx(lab, edge1.host, { body: edge1.name });
          return expect(edge1, [edge2, "Backup"], [edge3, "Backup"]);
        },
      },
      {
        name: "cut link",
        caption: () => "edge-1's network link is cut: edge-2 hears no adverts for Master_Down_Interval and takes over.",
        async act() {
          await lab.cutLink(edge1.host);
          return expect(edge2, [edge1, "Fault"], [edge3, "Backup"]);
        },
      },
      {
        name: "restore link",
        caption: () => "edge-1's link is back: edge-1 rejoins and preempts edge-2 again.",
        async act() {
          await lab.restoreLink(edge1.host);
          return expect(edge1, [edge2, "Backup"], [edge3, "Backup"]);
        },
      },
      {
        name: "handover",
        caption: () => "Planned maintenance: edge-1's agent gets SIGTERM, sends priority 0 and keeps the VIP until edge-2 speaks.",
        async act() {
          const exit = await edge1.agent?.stop();
          if (exit !== undefined && exit.code !== 0) throw new Error(`edge-1's agent exited with ${exit.code ?? exit.signal}`);
          return expect(edge2, [edge1, "stopped"], [edge3, "Backup"]);
        },
      },
      {
        name: "rejoin",
        caption: () => "Maintenance done: edge-1's agent starts again and takes the VIP back.",
        async act() {
          await startAgentOn(edge1);
          return expect(edge1, [edge2, "Backup"], [edge3, "Backup"]);
        },
      },
    ];

    const outcome = await runStory({ nodes, steps, vip, probe, display, palette, isFast: opts.isFast, startedAt, stepTimeoutMs });
    return { labId: lab.id, vip, isOk: outcome.isOk, durationMs: Date.now() - startedAt, client: outcome.client, steps: outcome.steps };
  } finally {
    display.stop();
    await probe.current?.stop();
    await lab.destroy();
  }
}
