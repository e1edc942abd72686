// Evidence for docs/design-notes/k8s-operator.md: what @dot-i/k8s-operator 1.3.9 (with client-node 0.22.3) does on
// a real API server, for each helper the controller considered. The library runs in a child process, because one of
// the findings is that it calls process.exit.
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubeconfigForServiceAccount, startControlPlane, type ControlPlane } from "../../testing/testbed/control-plane.js";

const repo = resolve(import.meta.dirname, "../..");
const ns = "doti";

const probeSource = `
import dotI from "@dot-i/k8s-operator";
const Operator = dotI.default;
const mode = process.env.PROBE_MODE;
const out = (line) => process.stdout.write(JSON.stringify(line) + "\\n");
process.on("unhandledRejection", (error) => out({ kind: "unhandledRejection", message: String(error) }));
process.on("uncaughtException", (error) => { out({ kind: "uncaughtException", message: String(error) }); process.exit(3); });
process.on("exit", (code) => out({ kind: "exit", code }));
class Probe extends Operator {
  async init() {
    await this.watchResource("ha-nginx.io", "v1alpha1", "highavailabilityvips", async (event) => {
      out({ kind: "event", type: event.type, name: event.meta.name });
      if (mode === "throw" && event.meta.name === "boom") throw new Error("handler failed");
      if (mode === "finalizer") {
        const handled = await this.handleResourceFinalizer(event, "ha-nginx.io/release", async () => {});
        out({ kind: "finalizer", name: event.meta.name, handled });
      }
      if (mode === "status") {
        const result = await this.patchResourceStatus({ ...event.meta, resourceVersion: "1" }, { master: "probe" });
        out({ kind: "status", name: event.meta.name, isNull: result === null });
      }
    }, "${ns}");
    out({ kind: "watching" });
  }
}
const logger = { debug() {}, info() {}, warn(m) { out({ kind: "log", level: "warn", m }); }, error(m) { out({ kind: "log", level: "error", m }); } };
await new Probe(logger).start();
`;

interface ProbeLine {
  readonly kind: string;
  readonly [key: string]: unknown;
}

interface Probe {
  readonly child: ChildProcess;
  readonly lines: ProbeLine[];
  readonly exited: Promise<number | null>;
}

describe("e2e @dot-i/k8s-operator on a real API server", () => {
  let cp: ControlPlane | undefined;
  const probes: Probe[] = [];

  const kubectl = async (args: readonly string[], input?: string) => {
    if (cp === undefined) throw new Error("no control plane");
    const result = await cp.kubectl(args, input === undefined ? undefined : { input });
    if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
    return result.stdout;
  };
  const havip = (name: string) => `
apiVersion: ha-nginx.io/v1alpha1
kind: HighAvailabilityVIP
metadata: { name: ${name}, namespace: ${ns} }
spec: { addresses: [10.77.0.250/24] }
`;

  function startProbe(mode: string, kubeconfig: string): Probe {
    const child = spawn(process.execPath, ["--input-type=module", "-e", probeSource], {
      cwd: repo,
      env: { PATH: process.env.PATH ?? "", KUBECONFIG: kubeconfig, PROBE_MODE: mode },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const lines: ProbeLine[] = [];
    let buffer = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split("\n");
      buffer = parts.pop() ?? "";
      for (const part of parts) if (part.trim() !== "") lines.push(JSON.parse(part) as ProbeLine);
    });
    const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
    const probe = { child, lines, exited };
    probes.push(probe);
    return probe;
  }

  async function until(probe: Probe, what: string, predicate: (line: ProbeLine) => boolean, timeoutMs = 30_000): Promise<ProbeLine> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = probe.lines.find(predicate);
      if (found !== undefined) return found;
      await new Promise((resolveWait) => setTimeout(resolveWait, 100));
    }
    throw new Error(`timed out waiting for ${what}; saw ${JSON.stringify(probe.lines)}`);
  }

  beforeAll(async () => {
    cp = await startControlPlane();
    await kubectl(["apply", "--server-side", "-f", resolve(repo, "crds/ha-nginx.io_highavailabilityvips.yaml")]);
    await kubectl(["wait", "--for=condition=Established", "crd/highavailabilityvips.ha-nginx.io", "--timeout=60s"]);
    await kubectl(["create", "namespace", ns]);
    // A CRD that has just become Established may still answer a watch with 429 for a moment, and the library exits
    // on that too (the first run of this file showed it); wait until a watch is served so each test sees one finding.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const result = await cp.kubectl(["get", "--raw", `/apis/ha-nginx.io/v1alpha1/namespaces/${ns}/highavailabilityvips?watch=1&timeoutSeconds=1`]);
      if (result.code === 0) break;
      await new Promise((resolveWait) => setTimeout(resolveWait, 500));
    }
  }, 180_000);

  afterAll(async () => {
    for (const probe of probes) {
      if (probe.child.exitCode === null && probe.child.signalCode === null) probe.child.kill("SIGKILL");
      await probe.exited;
    }
    await cp?.stop();
  }, 60_000);

  it("an exception thrown by the event handler vanishes: no log line, no unhandled rejection, the watch goes on", async () => {
    if (cp === undefined) throw new Error("no control plane");
    const probe = startProbe("throw", cp.adminKubeconfig);
    await until(probe, "the watch", (line) => line.kind === "watching");
    await kubectl(["apply", "-f", "-"], havip("boom"));
    await until(probe, "the boom event", (line) => line.kind === "event" && line.name === "boom");
    await kubectl(["apply", "-f", "-"], havip("after"));
    await until(probe, "the next event", (line) => line.kind === "event" && line.name === "after");
    expect(probe.lines.filter((line) => line.kind === "unhandledRejection" || line.kind === "log")).toEqual([]);
    probe.child.kill("SIGKILL");
    await kubectl(["delete", "havip", "boom", "after", "-n", ns]);
  }, 60_000);

  it("handleResourceFinalizer reports handled although RBAC forbade the patch, and the finalizer is not there", async () => {
    if (cp === undefined) throw new Error("no control plane");
    await kubectl(["create", "serviceaccount", "reader", "-n", ns]);
    await kubectl(["create", "role", "havip-reader", "-n", ns, "--verb=get,list,watch", "--resource=highavailabilityvips.ha-nginx.io"]);
    await kubectl(["create", "rolebinding", "havip-reader", "-n", ns, "--role=havip-reader", `--serviceaccount=${ns}:reader`]);
    const reader = await kubeconfigForServiceAccount(cp, ns, "reader");
    const probe = startProbe("finalizer", reader);
    await until(probe, "the watch", (line) => line.kind === "watching");
    await kubectl(["apply", "-f", "-"], havip("fin"));
    const result = await until(probe, "the finalizer result", (line) => line.kind === "finalizer" && line.name === "fin");
    expect(result.handled).toBe(true);
    const finalizers = await kubectl(["get", "havip", "fin", "-n", ns, "-o", "jsonpath={.metadata.finalizers}"]);
    expect(finalizers).toBe("");
    const logged = await until(probe, "the swallowed error", (line) => line.kind === "log" && line.level === "error");
    expect(String(logged.m)).toContain("403");
    probe.child.kill("SIGKILL");
    await kubectl(["delete", "havip", "fin", "-n", ns]);
  }, 60_000);

  it("patchResourceStatus turns a 409 into null: the caller cannot tell a conflict from a denial", async () => {
    if (cp === undefined) throw new Error("no control plane");
    const probe = startProbe("status", cp.adminKubeconfig);
    await until(probe, "the watch", (line) => line.kind === "watching");
    await kubectl(["apply", "-f", "-"], havip("stale"));
    const result = await until(probe, "the status result", (line) => line.kind === "status" && line.name === "stale");
    expect(result.isNull).toBe(true);
    const logged = await until(probe, "the swallowed error", (line) => line.kind === "log" && line.level === "error");
    expect(String(logged.m)).toContain("409");
    expect(await kubectl(["get", "havip", "stale", "-n", ns, "-o", "jsonpath={.status.master}"])).toBe("");
    probe.child.kill("SIGKILL");
    await kubectl(["delete", "havip", "stale", "-n", ns]);
  }, 60_000);

  it("a watch that loses the API server ends the whole process with exit code 1", async () => {
    if (cp === undefined) throw new Error("no control plane");
    const probe = startProbe("plain", cp.adminKubeconfig);
    await until(probe, "the watch", (line) => line.kind === "watching");
    await cp.stopApiServer();
    try {
      const code = await Promise.race([probe.exited, new Promise<"alive">((resolveAlive) => setTimeout(() => resolveAlive("alive"), 30_000))]);
      expect(code).toBe(1);
      const logged = probe.lines.find((line) => line.kind === "log" && line.level === "error");
      expect(String(logged?.m)).toContain("watch on resource highavailabilityvips.ha-nginx.io/v1alpha1 failed");
    } finally {
      await cp.startApiServer();
    }
  }, 90_000);
});
