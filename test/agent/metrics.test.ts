import type { Counter, Gauge } from "prom-client";
import { describe, expect, it, vi } from "vitest";
import { AgentMetrics } from "../../src/agent/metrics.js";

const sentName = "ha_nginx_vrrp_adverts_sent_total";
const receivedName = "ha_nginx_vrrp_adverts_received_total";
const priorityName = "ha_nginx_vrrp_effective_priority";

/** Each series of the metric as "havip vrid" → value, read as a scrape reads it. */
async function seriesOf(agent: AgentMetrics, name: string): Promise<Record<string, number>> {
  const metric = agent.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return Object.fromEntries(values.map(({ labels, value }) => [`${String(labels.havip)} ${String(labels.vrid)}`, value]));
}

describe("AgentMetrics, per router", () => {
  it("counts each router's adverts sent and received, as of every scrape", async () => {
    const agent = new AgentMetrics("edge-1");
    const web = agent.router("team-a/web", 51);
    const api = agent.router("team-a/api", 52);
    for (let i = 0; i < 3; i++) web.advertSent();
    web.advertReceived();
    api.advertSent();
    expect(await seriesOf(agent, sentName)).toEqual({ "team-a/web 51": 3, "team-a/api 52": 1 });
    expect(await seriesOf(agent, receivedName)).toEqual({ "team-a/web 51": 1 });
    web.advertSent();
    expect(await seriesOf(agent, sentName)).toEqual({ "team-a/web 51": 4, "team-a/api 52": 1 });
    await expect(agent.registry.getSingleMetricAsString(sentName)).resolves.toContain('ha_nginx_vrrp_adverts_sent_total{havip="team-a/web",vrid="51",node="edge-1"} 4');
  });

  it("a removed router leaves no advert count behind, counted or not yet scraped", async () => {
    const agent = new AgentMetrics("edge-1");
    const web = agent.router("team-a/web", 51);
    const api = agent.router("team-a/api", 52);
    web.advertSent();
    api.advertSent();
    expect(await seriesOf(agent, sentName)).toEqual({ "team-a/web 51": 1, "team-a/api 52": 1 });
    web.advertSent();
    web.advertReceived();
    web.remove();
    expect(await seriesOf(agent, sentName)).toEqual({ "team-a/api 52": 1 });
    expect(await seriesOf(agent, receivedName)).toEqual({});
  });

  it("the effective priority follows every change, and comes back after remove()", async () => {
    const agent = new AgentMetrics("edge-1");
    const web = agent.router("team-a/web", 51);
    web.effectivePriority(150);
    web.effectivePriority(150);
    web.effectivePriority(100);
    expect(await seriesOf(agent, priorityName)).toEqual({ "team-a/web 51": 100 });
    web.effectivePriority(150);
    expect(await seriesOf(agent, priorityName)).toEqual({ "team-a/web 51": 150 });
    web.remove();
    expect(await seriesOf(agent, priorityName)).toEqual({});
    web.effectivePriority(150);
    expect(await seriesOf(agent, priorityName)).toEqual({ "team-a/web 51": 150 });
  });

  // What the agent pays per advert: prom-client hashes and validates the label set at every call.
  it("1000 adverts and the events that set an unchanged priority cost one prom-client call each, at the scrape or the change", async () => {
    const agent = new AgentMetrics("edge-1");
    const web = agent.router("team-a/web", 51);
    const sent = vi.spyOn(agent.registry.getSingleMetric(sentName) as Counter, "inc");
    const received = vi.spyOn(agent.registry.getSingleMetric(receivedName) as Counter, "inc");
    const priority = vi.spyOn(agent.registry.getSingleMetric(priorityName) as Gauge, "set");
    for (let i = 0; i < 1000; i++) {
      web.advertSent();
      web.advertReceived();
      web.effectivePriority(150);
    }
    await agent.registry.metrics();
    expect(sent).toHaveBeenCalledTimes(1);
    expect(received).toHaveBeenCalledTimes(1);
    expect(priority).toHaveBeenCalledTimes(1);
    expect(await seriesOf(agent, sentName)).toEqual({ "team-a/web 51": 1000 });
  });
});
