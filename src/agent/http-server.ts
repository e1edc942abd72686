import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { StartupError } from "../startup-error.js";

export interface AgentHttpSources {
  readonly registry: Registry;
  /** The JSON document served at /state. */
  state(): unknown;
  /** Whether the agent's loop is alive; /healthz answers 503 otherwise. */
  isAlive(): boolean;
  /** Whether every router it should run has started or said why not; /readyz answers 503 otherwise. Absent: alive. */
  isReady?(): boolean;
}

/**
 * Serves /metrics, /healthz, /readyz and /state on each of `addresses`, one listener each; with none, on every address of
 * every family the host has. Starts nothing until `start()`.
 */
export class AgentHttpServer {
  #servers: Server[] = [];

  constructor(
    private readonly sources: AgentHttpSources,
    private readonly port: number,
    private readonly addresses: readonly string[],
  ) {}

  /** For the start-up log: the addresses given, or "every address". */
  get addressesServed(): readonly string[] | "every address" {
    return this.addresses.length === 0 ? "every address" : this.addresses;
  }

  /** Resolves with the port the first listener holds (the one asked for, or the kernel's pick for 0). */
  async start(): Promise<number> {
    for (const address of this.addresses.length === 0 ? [undefined] : this.addresses) {
      const server = createServer(this.#handle);
      this.#servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", (error: NodeJS.ErrnoException) => {
          reject(new StartupError(`cannot serve HTTP on ${address ?? "every address"} port ${this.port}: ${error.code ?? error.message}; set --http-address or --http-port (the chart's agent.httpAddress or agent.httpPort)`));
        });
        server.listen(this.port, address, () => resolve());
      });
    }
    const [first] = this.#servers;
    return first === undefined ? this.port : (first.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const servers = this.#servers;
    this.#servers = [];
    await Promise.all(
      servers.map((server) => {
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      }),
    );
  }

  readonly #handle: RequestListener = (request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      this.sources.registry.metrics().then(
        (text) => response.writeHead(200, { "content-type": this.sources.registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500).end(String(error)),
      );
    } else if (path === "/healthz") {
      const alive = this.sources.isAlive();
      response.writeHead(alive ? 200 : 503, { "content-type": "text/plain" }).end(alive ? "ok\n" : "stalled\n");
    } else if (path === "/readyz") {
      const ready = this.sources.isReady?.() ?? this.sources.isAlive();
      response.writeHead(ready ? 200 : 503, { "content-type": "text/plain" }).end(ready ? "ok\n" : "routers starting\n");
    } else if (path === "/state") {
      response.writeHead(200, { "content-type": "application/json" }).end(`${JSON.stringify(this.sources.state(), null, 2)}\n`);
    } else {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics, /healthz, /readyz or /state\n");
    }
  };
}
