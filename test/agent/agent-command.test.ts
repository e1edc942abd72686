import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SystemNeighborAnnouncer } from "../../src/agent/adapters/neighbor-announcer.js";
import { agentCommand, nodeHttpAddresses } from "../../src/agent/command.js";

describe("the Kubernetes agent's HTTP addresses", () => {
  it("are the node's addresses of every family, from status.hostIPs", () => {
    expect(nodeHttpAddresses({ HOST_IPS: "10.0.0.5,fd00::5", HOST_IP: "10.0.0.5" })).toEqual(["10.0.0.5", "fd00::5"]);
  });

  it("fall back to status.hostIP where the kubelet renders status.hostIPs empty (PodHostIPs gate off), never to every address", () => {
    expect(nodeHttpAddresses({ HOST_IPS: "", HOST_IP: "10.0.0.5" })).toEqual(["10.0.0.5"]);
  });

  it("are every address only when neither is set, as outside a pod", () => {
    expect(nodeHttpAddresses({})).toEqual([]);
  });

  it("given by --http-address must be IP addresses: a name is refused, naming it", async () => {
    let said = "";
    const command = agentCommand().exitOverride().configureOutput({ writeErr: (text) => (said += text), writeOut: () => undefined });
    await expect(command.parseAsync(["--http-address", "10.0.0.5,localhost"], { from: "user" })).rejects.toThrow();
    expect(said).toContain("'localhost' is not an IP address");
  });
});

describe("the gratuitous-ARP helper", () => {
  it("that cannot run fails the announcement and leaves the agent running", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ha-nginx-garp-"));
    try {
      const helper = join(dir, "ha-nginx-garp");
      writeFileSync(helper, "not a program");
      chmodSync(helper, 0o644);
      const outcome = await new SystemNeighborAnnouncer(helper).announce("192.0.2.10", "eth0");
      expect(outcome).toMatchObject({ ok: false, code: "failed" });
      expect(outcome.ok ? "" : outcome.detail).toContain("EACCES");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
