// A rotated VRRPv2 password Secret reaches every agent together (#13): the controller publishes the Secret's
// resourceVersion in status, every agent sees it on its watch and reads the password again. The adverts on the wire
// carry the new password, and no node took the VIP from the MASTER while the agents changed over.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHaVipBed, haVipManifest, havipNamespace, type HaVipBed } from "../../testing/testbed/havip-bed.js";
import type { Lab, LabHost } from "../../testing/lab/types.js";
import { waitFor } from "../../testing/lab/index.js";
import { decodeAdvertisement, decodeIpv4Datagram, passwordToAuthData } from "../../src/vrrp/codec.js";

const passwordSecret = "rotation-password";
const firstPassword = "first-pw";
const rotatedPassword = "second-p";

const secretManifest = (password: string): string => `
apiVersion: v1
kind: Secret
metadata: { name: ${passwordSecret}, namespace: ${havipNamespace} }
stringData: { password: ${password} }
`;

function withPassword(vip: string): string {
  const manifest = haVipManifest(vip);
  if (!manifest.includes("  interface: eth0\n")) throw new Error("haVipManifest changed shape: no interface line to anchor on");
  return manifest.replace("  interface: eth0\n", `  interface: eth0\n  vrrpVersion: 2\n  authentication:\n    passwordSecretRef: { name: ${passwordSecret}, key: password }\n`);
}

/** The authentication data of the VRRPv2 adverts `host` sees on its link in `durationMs`, decoded with the product's codec. */
async function advertPasswords(lab: Lab, host: LabHost, durationMs: number): Promise<string[]> {
  const result = await lab.exec(host, "timeout", [String(durationMs / 1000), "tcpdump", "-l", "-p", "-nn", "-x", "-i", host.ifname, "ip proto 112"], { timeoutMs: durationMs + 5_000 });
  // coreutils timeout ends tcpdump with SIGTERM and exits 124; anything else means the capture did not run.
  if (result.code !== 124) throw new Error(`tcpdump exited ${result.code}: ${result.stderr}`);
  const packets: string[] = [];
  for (const line of result.stdout.split("\n")) {
    if (/ IP /.test(line)) packets.push("");
    const data = /^\s+0x[0-9a-f]+:\s+((?:[0-9a-f]{2,4}\s?)+)/.exec(line);
    if (data && packets.length > 0) packets[packets.length - 1] += (data[1] ?? "").replace(/\s+/g, "");
  }
  return packets.flatMap((hex) => {
    const ip = decodeIpv4Datagram(Uint8Array.from(Buffer.from(hex, "hex")));
    if (!ip.ok) return [];
    const advert = decodeAdvertisement(ip.value.payload, { family: "ipv4", source: ip.value.source, destination: ip.value.destination, ttl: ip.value.ttl });
    if (!advert.ok || advert.value.version !== 2 || advert.value.authentication.type !== "simple-password") return [];
    return [Buffer.from(advert.value.authentication.data).toString("hex")];
  });
}

const hexOf = (password: string): string => Buffer.from(passwordToAuthData(password)).toString("hex");

describe("a rotated VRRPv2 password Secret", () => {
  let havipBed: HaVipBed | undefined;
  const bed = (): HaVipBed => {
    if (havipBed === undefined) throw new Error("the test bed did not start");
    return havipBed;
  };

  beforeAll(async () => {
    havipBed = await startHaVipBed({ havipManifest: withPassword, extraManifest: secretManifest(firstPassword) });
  });

  afterAll(async () => {
    await havipBed?.stop();
  });

  it("reaches every agent within the controller's 10 s check, and the MASTER keeps the VIP throughout", async () => {
    const { master, backups } = await bed().settled();
    const lab = bed().testbed.lab;
    // A Backup hears the MASTER's adverts whether they are multicast or unicast.
    const listener = bed().testbed.hostOf(backups[0] ?? "");
    expect(new Set(await advertPasswords(lab, listener, 3_000))).toEqual(new Set([hexOf(firstPassword)]));
    const versionBefore = (await bed().havipStatus()).passwordSecretVersion;
    expect(versionBefore).toMatch(/^\d+$/);
    const transitionsBefore = await Promise.all(bed().testbed.nodeNames.map((node) => bed().transitionAt(node)));

    const rotatedAt = Date.now();
    const applied = await bed().testbed.kubectl(["apply", "-f", "-"], { input: secretManifest(rotatedPassword) });
    expect(applied.code, applied.stderr).toBe(0);
    await waitFor(async () => (await bed().havipStatus()).passwordSecretVersion !== versionBefore, { timeoutMs: 30_000, intervalMs: 250, what: "the controller to publish the Secret's new resourceVersion" });
    const publishedAfterMs = Date.now() - rotatedAt;
    // The agents read the Secret within moments of the status change; a second of capture after that shows them all.
    await new Promise((resolveWait) => setTimeout(resolveWait, 1_000));
    const after = await advertPasswords(lab, listener, 3_000);
    console.log(`[measure] password rotation: new resourceVersion in status ${publishedAfterMs} ms after the apply; ${after.length} adverts captured after it`);
    expect(after.length).toBeGreaterThan(0);
    expect(new Set(after)).toEqual(new Set([hexOf(rotatedPassword)]));

    const { master: masterAfter } = await bed().settled();
    expect(masterAfter).toBe(master);
    const transitionsAfter = await Promise.all(bed().testbed.nodeNames.map((node) => bed().transitionAt(node)));
    expect(transitionsAfter).toEqual(transitionsBefore);
  });
});
