// The local probe on a stalled event loop, on loopback: nginx answered in time, but the loop was busy (GC, a CPU-starved
// node) when the answer arrived. Timers run before I/O, so a timeout that fired on the same turn used to win over the
// answer already waiting in the socket, and two such turns sent a healthy Master to FAULT.
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeHttpProbe } from "../../../src/agent/adapters/http-probe.js";
import { milliseconds } from "../../../src/vrrp/units.js";

const timeoutMs = 50;
let server: Server;
let port = 0;

function stallLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Busy on purpose: nothing else may run on this loop meanwhile.
  }
}

beforeAll(async () => {
  // Answers, then blocks the loop past the probe's timeout: the answer sits in the probe's socket when the loop wakes.
  server = createServer((_request, response) => {
    response.end("ok", () => stallLoop(4 * timeoutMs));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe("NodeHttpProbe on a stalled loop", () => {
  it("an answer that arrived before the timeout but was read after it still counts", async () => {
    const probe = new NodeHttpProbe({ host: "127.0.0.1", port, path: "/", scheme: "HTTP", timeout: milliseconds(timeoutMs) });
    const results = [];
    for (let round = 0; round < 5; round++) results.push(await probe.probe());
    expect(results).toEqual(Array.from({ length: 5 }, () => ({ ok: true, status: 200 })));
  });

  it("a server that never answers still times out", async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const probe = new NodeHttpProbe({ host: "127.0.0.1", port: (silent.address() as AddressInfo).port, path: "/", scheme: "HTTP", timeout: milliseconds(timeoutMs) });
      const started = performance.now();
      expect(await probe.probe()).toMatchObject({ ok: false, reason: "timeout" });
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe("NodeHttpProbe verdicts, as the kubelet's httpGet gives them", () => {
  async function probeOnce(handler: Parameters<typeof createServer>[1], path = "/healthz") {
    const local = createServer(handler);
    await new Promise<void>((resolve) => local.listen(0, "127.0.0.1", resolve));
    try {
      const probe = new NodeHttpProbe({ host: "127.0.0.1", port: (local.address() as AddressInfo).port, path, scheme: "HTTP", timeout: milliseconds(1_000) });
      return await probe.probe();
    } finally {
      await new Promise((resolve) => local.close(resolve));
    }
  }

  it("2xx and 3xx are healthy, other statuses are bad-status; the request names the path and the host", async () => {
    let seen = "";
    expect(await probeOnce((request, response) => { seen = `${request.method} ${request.url} ${request.headers.host}`; response.end("ok"); })).toEqual({ ok: true, status: 200 });
    expect(seen).toMatch(/^GET \/healthz 127\.0\.0\.1:\d+$/);
    expect(await probeOnce((_request, response) => { response.writeHead(301, { location: "/" }).end(); })).toEqual({ ok: true, status: 301 });
    expect(await probeOnce((_request, response) => { response.writeHead(503).end("down"); })).toEqual({ ok: false, reason: "bad-status", detail: "HTTP 503" });
  });

  it("a closed port is refused at once, and a listener that does not speak HTTP fails", async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await new NodeHttpProbe({ host: "127.0.0.1", port, path: "/", scheme: "HTTP", timeout: milliseconds(1_000) }).probe();
    expect(refused).toMatchObject({ ok: false, reason: "refused" });

    const garbage = createTcpServer((socket) => socket.resume().end("SSH-2.0-OpenSSH_9.2\r\n"));
    await new Promise<void>((resolve) => garbage.listen(0, "127.0.0.1", resolve));
    try {
      const result = await new NodeHttpProbe({ host: "127.0.0.1", port: (garbage.address() as AddressInfo).port, path: "/", scheme: "HTTP", timeout: milliseconds(1_000) }).probe();
      expect(result).toMatchObject({ ok: false, reason: "failed", detail: expect.stringContaining("SSH-2.0") });
    } finally {
      await new Promise((resolve) => garbage.close(resolve));
    }
  });
});
