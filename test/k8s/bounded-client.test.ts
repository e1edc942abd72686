import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeBoundedApiClient } from "../../src/k8s/bounded-client.js";

/** An API server on loopback that never answers, as one whose etcd is down holds a request. */
let server: Server;
let kubeConfig: KubeConfig;

beforeAll(async () => {
  server = createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "silent", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "nobody" }],
    contexts: [{ name: "silent", cluster: "silent", user: "nobody" }],
    currentContext: "silent",
  });
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

async function elapsedUntilFailure(call: () => Promise<unknown>): Promise<number> {
  const startedAt = Date.now();
  await expect(call()).rejects.toThrow();
  return Date.now() - startedAt;
}

describe("API calls that end within a bound", () => {
  it("a call the server holds fails at the client's bound", async () => {
    const core = makeBoundedApiClient(kubeConfig, CoreV1Api, 100);
    expect(await elapsedUntilFailure(() => core.readNamespacedSecret({ name: "vrrp", namespace: "edge" }))).toBeLessThan(2_000);
  });
});
