import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface AgentHttpSources {
  readonly registry: Registry;
  /** The JSON document served at /state. */
  state(): unknown;
  /** Whether the agent's loop is alive; /healthz answers 503 otherwise. */
  isAlive(): boolean;
}

/** Serves /metrics, /healthz and /state. Starts nothing until `start()`. */
export class AgentHttpServer {
  #server: Server | undefined;

  constructor(
    private readonly sources: AgentHttpSources,
    private readonly port: number,
    private readonly host = "0.0.0.0",
  ) {}

  async start(): Promise<number> {
    const server = createServer((request, response) => {
      const path = (request.url ?? "/").split("?")[0];
      if (path === "/metrics") {
        this.sources.registry.metrics().then(
          (text) => response.writeHead(200, { "content-type": this.sources.registry.contentType }).end(text),
          (error: unknown) => response.writeHead(500).end(String(error)),
        );
      } else if (path === "/healthz") {
        const alive = this.sources.isAlive();
        response.writeHead(alive ? 200 : 503, { "content-type": "text/plain" }).end(alive ? "ok\n" : "stalled\n");
      } else if (path === "/state") {
        response.writeHead(200, { "content-type": "application/json" }).end(`${JSON.stringify(this.sources.state(), null, 2)}\n`);
      } else {
        response.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics, /healthz or /state\n");
      }
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, this.host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
