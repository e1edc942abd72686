import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { haVipManifest, vipHolders } from "../../../testing/lab/agent.js";
import { waitFor } from "../../../testing/lab/index.js";
import { createAgentBed, waitForSingleHolder, type AgentBed } from "./support.js";

describe("standalone agent: VRRPv2 PASS authentication", () => {
  let bed: AgentBed;
  let manifest: string;

  function passwordFile(name: string, password: string): string {
    const path = join(bed.lab.tmpDir, `password-${name}`);
    writeFileSync(path, `${password}\n`, { mode: 0o600 });
    return path;
  }

  beforeAll(async () => {
    bed = await createAgentBed(2, "haa");
    manifest = haVipManifest({
      addresses: [`${bed.vip}/24`],
      vrrpVersion: 2,
      advertisementIntervalMs: 1_000,
      priorities: { [bed.node(0).name]: 150, [bed.node(1).name]: 100 },
      hasAuthentication: true,
    });
  });

  afterEach(async (context) => {
    if (context.task.result?.state === "fail") await bed.dump(context.task.name);
    await bed.reset();
  });

  afterAll(async () => {
    await bed?.destroy();
  });

  it("RFC 2338 §5.3.6: with the same password the two agents form one virtual router", async () => {
    const [n1, n2] = [bed.node(0), bed.node(1)];
    const a1 = await bed.start(n1, manifest, { passwordFile: passwordFile("same-1", "s3cret") });
    const a2 = await bed.start(n2, manifest, { passwordFile: passwordFile("same-2", "s3cret") });
    await waitForSingleHolder(bed.lab, bed.vip, 15_000, n1);
    await a1.waitForState("Master", 5_000);
    await a2.waitForState("Backup", 5_000);
    await waitFor(async () => ((await a2.state()).counters["adverts-received"] ?? 0) >= 2, {
      timeoutMs: 5_000, what: "n2 accepting n1's adverts",
    });
    const backup = await a2.state();
    expect(backup).toMatchObject({ state: "Backup", masterAddress: n1.address });
    expect(backup.counters["dropped:auth-mismatch"]).toBeUndefined();
    expect(a2.transitions().filter((t) => t.to === "Master")).toEqual([]);
  });

  it("RFC 2338 §5.3.6.1, keepalived auth_pass: a password over 8 bytes is cut to 8, so 'longpassword' and 'longpass' form one router, with a warning that does not print it", async () => {
    const [n1, n2] = [bed.node(0), bed.node(1)];
    const a1 = await bed.start(n1, manifest, { passwordFile: passwordFile("long-1", "longpassword") });
    const a2 = await bed.start(n2, manifest, { passwordFile: passwordFile("long-2", "longpass") });
    await waitForSingleHolder(bed.lab, bed.vip, 15_000, n1);
    await a2.waitForState("Backup", 5_000);
    await waitFor(async () => ((await a2.state()).counters["adverts-received"] ?? 0) >= 2, { timeoutMs: 5_000, what: "n2 accepting n1's adverts" });
    expect((await a1.state()).counters["dropped:auth-mismatch"]).toBeUndefined();
    const warning = a1.logs().find((line) => line.msg.includes("only its first 8 are sent"));
    expect(warning?.msg).toContain("12 bytes");
    expect(JSON.stringify(a1.logs())).not.toContain("longpassword");
    expect(a2.logs().some((line) => line.msg.includes("only its first 8 are sent"))).toBe(false);
  });

  it("RFC 2338 §7.1: an agent with a wrong password drops the adverts (auth-mismatch) and does not join", async () => {
    const [n1, n2] = [bed.node(0), bed.node(1)];
    const a1 = await bed.start(n1, manifest, { passwordFile: passwordFile("right", "s3cret") });
    await a1.waitForState("Master", 15_000);
    const a2 = await bed.start(n2, manifest, { passwordFile: passwordFile("wrong", "wrong!") });
    // v2, 1 s: Master_Down_Interval = 3 s + skew; n2 hears nothing it accepts and takes over alone.
    await a2.waitForState("Master", 10_000);
    await waitFor(async () => ((await a2.state()).counters["dropped:auth-mismatch"] ?? 0) >= 2, {
      timeoutMs: 5_000, what: "n2 dropping n1's adverts as auth-mismatch",
    });
    const s2 = await a2.state();
    expect(s2.counters["adverts-received"]).toBeUndefined();
    expect((await a1.state()).counters["dropped:auth-mismatch"] ?? 0).toBeGreaterThan(0);
    expect((await a1.state()).state).toBe("Master");
    expect((await vipHolders(bed.lab, bed.vip)).sort()).toEqual([n1.name, n2.name]);
    expect(a2.logs().some((line) => line["reason"] === "auth-mismatch")).toBe(true);
  });
});
