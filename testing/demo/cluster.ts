// `bash scripts/demo.sh --cluster`: the demo's story on the e2e test bed (testing/testbed), so the whole operator takes
// part: a real API server, the controller allocating the VRID and rolling out the agent DaemonSet, nginx pods run by
// the test bed's kubelet, and `kubectl get havip` following each step. This file only maps the story's steps onto the
// bed; starting and removing the cluster is startHaVipBed's job. Loaded lazily by main.ts: only --cluster needs it.

import { dirname } from "node:path";
import { DEFAULT_AGENT_HTTP_PORT } from "../../src/controller/command.js";
import { waitFor } from "../lab/wait.js";
import { havipNamespace, startHaVipBed, type HaVipBed } from "../testbed/havip-bed.js";
import { createDisplay } from "./display.js";
import { watchAgentState } from "./state-watch.js";
import { probeIntervalMs, statePollMs, type DemoOptions, type DemoResult } from "./story.js";
import { runStory, sleep, type DemoNode, type Expectation, type NodeOutcome, type ProbeRef, type Step } from "./story-runner.js";
import type { Panel } from "./view.js";

export interface ClusterDemoOptions extends DemoOptions {
  /** Receives the teardown as soon as there is something to tear down, so that Ctrl-C can remove the cluster. */
  readonly onTeardown: (teardown: () => Promise<void>) => void;
}

// The bed's kubelet, controller and API server share two cores with everything else: a step gets more time than in
// the standalone demo, and the election, which waits for the agent pods to start, more still.
const stepTimeoutMs = 30_000;
const electTimeoutMs = 90_000;
// Wider than the standalone demo's 100 ms: a loaded test bed must not count slow answers as outage.
const probeTimeoutMs = 200;
const statusPollMs = 250;
const kubectlPollMs = 1_000;
const kubectlArgs = ["get", "havip", "-n", havipNamespace] as const;

export async function runClusterDemo(opts: ClusterDemoOptions): Promise<DemoResult> {
  const startedAt = Date.now();
  const { palette } = opts;
  const display = createDisplay(opts.out, palette);
  display.say(palette.bold("ha-nginx demo --cluster: a Kubernetes API server, the ha-nginx controller, an nginx DaemonSet and a " +
    "HighAvailabilityVIP on three nodes, one client"));
  display.say(palette.dim("starting etcd, kube-apiserver, controller-manager, scheduler, three namespace nodes with their kubelet, " +
    "the controller, nginx and the HighAvailabilityVIP..."));
  const starting = startHaVipBed({ log: (line) => display.say(palette.dim(line)) });
  const probe: ProbeRef = { current: undefined };
  let api: ApiWatch | undefined;
  let tearingDown: Promise<void> | undefined;
  const teardown = (): Promise<void> => {
    tearingDown ??= (async () => {
      display.stop();
      await api?.stop();
      await probe.current?.stop();
      // A bed still starting is torn down by its own failure path, or here once it is up.
      const bed = await starting.catch(() => undefined);
      await bed?.stop();
    })();
    return tearingDown;
  };
  opts.onTeardown(teardown);
  try {
    const bed = await starting;
    const { testbed } = bed;
    const statePort = DEFAULT_AGENT_HTTP_PORT;
    const nodes: DemoNode[] = testbed.nodeNames.map((name) => ({
      name,
      watch: watchAgentState(testbed.lab, testbed.hostOf(name), { httpPort: statePort, address: testbed.hostOf(name).address, intervalMs: statePollMs }),
    }));
    api = watchHaVip(bed);
    display.say(`${palette.dim("VIP")} ${bed.vip} · ${palette.dim("VRID")} ${bed.vrid} (allocated by the controller) · ` +
      `${palette.dim("priorities")} node-1 150, node-2 100, node-3 50 · ${palette.dim("preemption Never")} · ` +
      `${palette.dim("adverts every")} 1 s · ${palette.dim("health: nginx pod Ready and GET /healthz every 200 ms, 2 failures = Fault")}`);

    const steps = clusterSteps(bed, nodes, probe);
    const watch = api;
    const outcome = await runStory({
      nodes, steps, vip: bed.vip, probe, display, palette, isFast: opts.isFast, startedAt, stepTimeoutMs,
      apiMaster: () => watch.master(),
      panel: () => watch.panel(),
    });
    const { lab, cp, runner } = testbed;
    return {
      labId: lab.id,
      vip: bed.vip,
      isOk: outcome.isOk,
      durationMs: Date.now() - startedAt,
      client: outcome.client,
      steps: outcome.steps,
      created: {
        namespaces: [...lab.nodes.map((host) => host.netns), lab.client.netns, lab.hubNetns],
        paths: [cp.dir, runner.dir, lab.tmpDir, dirname(bed.controllerLog)],
      },
    };
  } finally {
    await teardown();
  }
}

function clusterSteps(bed: HaVipBed, nodes: readonly DemoNode[], probe: ProbeRef): Step[] {
  const { testbed } = bed;
  const othersThan = (node: DemoNode): DemoNode[] => nodes.filter((other) => other !== node);
  const mustBe = (master: DemoNode | undefined): DemoNode => {
    if (master === undefined) throw new Error("there is no single Master to act on");
    return master;
  };
  /** After a failure on `failed`: one of the others takes over, `failed` ends as one of `outcomes`. */
  const takeover = (failed: DemoNode, outcomes: readonly NodeOutcome[]): Expectation =>
    ({ masterAmong: othersThan(failed), others: [[failed, outcomes]] });
  /** Nothing moves: with preemption Never a recovered node rejoins as Backup and the Master keeps the VIP. */
  const steady = (master: DemoNode): Expectation =>
    ({ masterAmong: [master], others: othersThan(master).map((node) => [node, ["Backup"]] as const) });
  // The node the last failure hit, which the following step restores.
  let hit: DemoNode | undefined;
  const lastHit = (): DemoNode => {
    if (hit === undefined) throw new Error("no earlier step hit a node");
    return hit;
  };
  return [
    {
      name: "elect",
      timeoutMs: electTimeoutMs,
      caption: () => `The controller allocated VRID ${bed.vrid} and rolled out the agent DaemonSet; the agents elect a Master ` +
        "(the best at once when every agent's candidacy is heard; an agent that started alone keeps the VIP, preemption " +
        "being Never); the client starts hitting the VIP.",
      async act() {
        // The client starts once every agent answers, as in the standalone demo: the outage of this step is then the
        // election itself (the unopposed start, or RFC 5798 §6.4.1's Master_Down_Interval for an agent that started
        // alone), not the scheduling and start of the agent pods.
        await waitFor(() => nodes.every((node) => node.watch.latest().kind === "up"), {
          timeoutMs: electTimeoutMs, intervalMs: 100, what: "every agent pod to answer on its /state port",
        });
        probe.current = await testbed.lab.startProbe(`http://${bed.vip}/`, { intervalMs: probeIntervalMs, timeoutMs: probeTimeoutMs });
        return { masterAmong: nodes, others: [] };
      },
    },
    {
      name: "kill nginx",
      caption: (master) => `nginx on ${master?.name ?? "the Master"} crashes (its container is SIGKILLed): two failed health checks later ` +
        "it goes Fault and a Backup takes the VIP; a second later the kubelet restarts nginx.",
      async act(master) {
        hit = mustBe(master);
        const name = hit.name;
        const nginx = testbed.runner.processes().find((item) => item.node === name && item.container === "nginx" && item.namespace === havipNamespace);
        if (nginx === undefined) throw new Error(`no nginx process on ${name}`);
        // The whole process group, as a crashing container takes its workers with it.
        process.kill(-nginx.pid, "SIGKILL");
        // Fault, or already Backup again: the kubelet restarts nginx within about a second.
        return takeover(hit, ["Fault", "Backup"]);
      },
    },
    {
      name: "restore nginx",
      caption: (master) => `The kubelet restarted nginx on ${hit?.name ?? "the failed node"}: it is healthy again and rejoins as Backup; ` +
        `${master?.name ?? "the Master"} keeps the VIP (preemption Never).`,
      act: async (master) => steady(mustBe(master)),
    },
    {
      name: "cut link",
      caption: (master) => `${master?.name ?? "The Master"}'s network link is cut: it goes Fault, the Backups hear no adverts for ` +
        "Master_Down_Interval and one takes over. The API still hears from every agent.",
      async act(master) {
        hit = mustBe(master);
        await testbed.lab.cutLink(testbed.hostOf(hit.name));
        return takeover(hit, ["Fault"]);
      },
    },
    {
      name: "restore link",
      caption: (master) => `${hit?.name ?? "The cut node"}'s link is back: it rejoins as Backup and ${master?.name ?? "the Master"} keeps the VIP.`,
      async act(master) {
        await testbed.lab.restoreLink(testbed.hostOf(lastHit().name));
        return steady(mustBe(master));
      },
    },
    {
      name: "handover",
      caption: (master) => `Planned move: the nginx pod on ${master?.name ?? "the Master"} is deleted, as a rollout or a drain would. ` +
        "The agent sees it terminating and hands the VIP over while nginx still answers in its preStop sleep.",
      async act(master) {
        hit = mustBe(master);
        const pods = await bed.core.listNamespacedPod({ namespace: havipNamespace, labelSelector: "app=web", fieldSelector: `spec.nodeName=${hit.name}` });
        const pod = pods.items.find((item) => item.metadata?.deletionTimestamp == null)?.metadata?.name;
        if (pod === undefined) throw new Error(`no nginx pod on ${hit.name}`);
        const deleted = await testbed.kubectl(["delete", "pod", pod, "-n", havipNamespace, "--wait=false"]);
        if (deleted.code !== 0) throw new Error(`kubectl delete pod ${pod}: ${deleted.stderr.trim()}`);
        return takeover(hit, ["Fault"]);
      },
    },
    {
      name: "rejoin",
      caption: () => `The DaemonSet starts a new nginx pod on ${hit?.name ?? "the drained node"}; once it is Ready that node rejoins as Backup.`,
      act: async (master) => steady(mustBe(master)),
    },
  ];
}

interface ApiWatch {
  /** status.master of the HighAvailabilityVIP, the MASTER column of `kubectl get havip`. */
  master(): string | undefined;
  panel(): Panel | undefined;
  stop(): Promise<void>;
}

/**
 * Polls the HighAvailabilityVIP's status (for the steps to wait on) and runs `kubectl get havip` (for the user to
 * see) in the background, so that drawing the table never waits on the API.
 */
function watchHaVip(bed: HaVipBed): ApiWatch {
  let isStopped = false;
  let master: string | undefined;
  let panel: Panel | undefined;
  let shownKey = "";
  const title = `$ kubectl ${kubectlArgs.join(" ")}`;
  const loop = async (everyMs: number, tick: () => Promise<void>): Promise<void> => {
    while (!isStopped) {
      try {
        await tick();
      } catch {
        // The API is briefly unreachable or the bed is going away: the next tick tries again or the loop ends.
      }
      await sleep(everyMs);
    }
  };
  const loops = [
    loop(statusPollMs, async () => {
      master = (await bed.havipStatus()).master;
    }),
    loop(kubectlPollMs, async () => {
      const result = await bed.testbed.kubectl(kubectlArgs);
      const lines = (result.code === 0 ? result.stdout : result.stderr).trimEnd().split("\n");
      // AGE changes every second; only the other columns make a change worth printing again in a log.
      const key = withoutAge(lines).join("\n");
      const revision = (panel?.revision ?? 0) + (key === shownKey ? 0 : 1);
      shownKey = key;
      panel = { title, lines, revision };
    }),
  ];
  return {
    master: () => master,
    panel: () => panel,
    async stop() {
      isStopped = true;
      await Promise.all(loops);
    },
  };
}

/** The lines cut where the header's AGE column starts; kubectl aligns every column under its header. */
function withoutAge(lines: readonly string[]): string[] {
  const at = lines[0]?.indexOf("AGE") ?? -1;
  return at < 0 ? [...lines] : lines.map((line) => line.slice(0, at).trimEnd());
}
