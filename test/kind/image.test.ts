// The image built from our Dockerfile, under Docker: what it ships, and how its PID 1 takes SIGTERM. Needs the Docker
// daemon and HA_NGINX_IMAGE (.ci/run builds it); without them it fails, never skips.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { docker, kindImagesFromEnv } from "./kind-cluster.js";

const images = kindImagesFromEnv();
const image = images.app;
const runId = randomBytes(3).toString("hex");
const containers: string[] = [];
const scratch = mkdtempSync(join(tmpdir(), "ha-nginx-image-"));

afterAll(async () => {
  for (const container of containers) await docker(["rm", "-f", container], { isFailureExpected: true });
  rmSync(scratch, { recursive: true, force: true });
});

async function inImage(script: string): Promise<string> {
  const result = await docker(["run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", script]);
  return result.stdout.trim();
}

describe("the image", () => {
  it("is under 400 MB and reports its size", async () => {
    const size = Number((await docker(["image", "inspect", image, "--format", "{{.Size}}"])).stdout.trim());
    process.stderr.write(`[image] ${image}: ${(size / 1e6).toFixed(1)} MB\n`);
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThan(400e6);
  });

  it("ships only what the product runs: no lab, test bed, demo, source maps or unused dependency", async () => {
    const listing = await inImage("cd /app && ls dist node_modules");
    expect(listing).toMatch(/^cli\.js$/m);
    expect(listing).not.toMatch(/^(lab|testbed|demo)$/m);
    expect(listing).not.toMatch(/^(request|vitest|typescript|tsx|eslint)$/m);
    // npm prune leaves the empty scope folder behind; no package of it may remain.
    expect(await inImage("find /app/node_modules -path '*@dot-i*' -name package.json | wc -l")).toBe("0");
    expect(await inImage("find /app -name '*.map' | wc -l")).toBe("0");
  });

  it("carries the gratuitous-ARP helper, built for the image's own libc, instead of arping", async () => {
    const reply = await inImage("echo 'nope0 192.0.2.1' | /app/dist/agent/adapters/ha-nginx-garp; command -v arping || echo no-arping");
    expect(reply.split("\n")).toEqual(["error no-such-interface nope0: No such device", "no-arping"]);
  });

  it("runs the agent and the controller, and has no demo (it runs from a clone)", async () => {
    const help = await docker(["run", "--rm", "--network", "none", image, "--help"]);
    expect(help.stdout).toMatch(/agent/);
    expect(help.stdout).toMatch(/controller/);
    expect(help.stdout).not.toMatch(/^\s+demo\b/m);
  });

  it("has a non-root user 1000 for the controller, and tini as PID 1", async () => {
    expect(await inImage("getent passwd 1000 | cut -d: -f1")).toBe("ha-nginx");
    const entrypoint = (await docker(["image", "inspect", image, "--format", "{{json .Config.Entrypoint}}"])).stdout.trim();
    expect(JSON.parse(entrypoint)).toEqual(["/usr/bin/tini", "--", "node", "/app/dist/cli.js"]);
  });

  it.each([
    ["agent", ["agent", "--http-port", "9750"]],
    ["controller", ["controller", "--namespace", "default"]],
  ])("the %s stops on SIGTERM within 3 s while still starting up (its API server never answers)", async (_role, args) => {
    // An API server that accepts connections and never answers keeps the process in its start-up, before any
    // signal handler of ours exists: a listener in a container without a network, whose namespace the process joins.
    const silent = `ha-nginx-image-${runId}-silent-${args[0]}`;
    containers.push(silent);
    await docker(["run", "-d", "--name", silent, "--network", "none", "--entrypoint", "node", images.client, "-e", "require('net').createServer(() => {}).listen(6443)"]);
    const kubeconfig = join(scratch, "kubeconfig");
    writeFileSync(kubeconfig, [
      "apiVersion: v1", "kind: Config", "current-context: c",
      "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true}}]",
      "users: [{name: u, user: {token: t}}]",
      "contexts: [{name: c, context: {cluster: c, user: u}}]", "",
    ].join("\n"));
    const name = `ha-nginx-image-${runId}-${args[0]}`;
    containers.push(name);
    await docker(["run", "-d", "--name", name, "--network", `container:${silent}`, "-v", `${scratch}:/config:ro`, "-e", "KUBECONFIG=/config/kubeconfig", "-e", "NODE_NAME=n1", image, ...args]);
    await new Promise((resolveWait) => setTimeout(resolveWait, 1500));
    expect((await docker(["inspect", name, "--format", "{{.State.Running}}"])).stdout.trim()).toBe("true");
    const started = performance.now();
    await docker(["stop", "--time", "10", name], { timeoutMs: 30_000 });
    const stopMs = performance.now() - started;
    const exitCode = Number((await docker(["inspect", name, "--format", "{{.State.ExitCode}}"])).stdout.trim());
    process.stderr.write(`[image] ${args[0]} stopped ${Math.round(stopMs)} ms after SIGTERM, exit code ${exitCode}\n`);
    expect(exitCode).not.toBe(137);
    expect(stopMs).toBeLessThan(3000);
  }, 60_000);
});
