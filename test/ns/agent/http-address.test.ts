import { describe, expect, it } from "vitest";
import { haVipManifest } from "../../../testing/lab/agent.js";
import { useAgentBed, waitForSingleHolder } from "./support.js";

describe("standalone agent: where /metrics, /healthz and /state are served", () => {
  const bed = useAgentBed(1, "hha");
  const manifest = (): string => haVipManifest({ addresses: [`${bed().vip}/24`], advertisementIntervalMs: 200 });
  const healthz = async (url: string): Promise<number> => (await bed().lab.httpGet(bed().lab.client, `${url}/healthz`)).status;

  it("by default on every address of both families, so an IPv6 scrape or probe is answered", async () => {
    const node = bed().node(0);
    const agent = await bed().start(node, manifest());
    expect(await healthz(`http://${node.address}:${agent.httpPort}`)).toBe(200);
    expect(await healthz(`http://[${node.address6}]:${agent.httpPort}`)).toBe(200);
  });

  it("--http-address limits it to the addresses given: not 127.0.0.1, not the VIP", async () => {
    const node = bed().node(0);
    const agent = await bed().start(node, manifest(), { httpAddress: node.address6 });
    await waitForSingleHolder(bed().lab, bed().vip, 5_000, node);
    expect(await healthz(`http://[${node.address6}]:${agent.httpPort}`)).toBe(200);
    expect(await healthz(`http://${bed().vip}:${agent.httpPort}`)).toBe(0);
    expect(await healthz(`http://${node.address}:${agent.httpPort}`)).toBe(0);
    expect((await bed().lab.httpGet(node, `http://127.0.0.1:${agent.httpPort}/healthz`)).status).toBe(0);
  });
});
