import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { HttpProbe, ProbeFailure, ProbeResult } from "../ports.js";
import type { Milliseconds } from "../../vrrp/units.js";

export interface HttpProbeTarget {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly scheme: "HTTP" | "HTTPS";
  readonly timeout: Milliseconds;
}

/** Enough for nginx's status line and headers; a longer head is judged by its status line. */
const MAX_HEAD = 4096;

/**
 * One HTTP/1.0 GET on a fresh connection (no keep-alive: a pooled socket could hide a listener that is gone), judged
 * on its status once the headers are in. 2xx and 3xx count as healthy, as the kubelet counts them. The timeout bounds
 * the exchange up to the end of the headers. HTTPS does not verify the certificate, as the kubelet's probes do not: the probe asks whether nginx
 * answers, not who it is. Written on a bare socket because node:http's client cost a third more CPU at the 200 ms
 * period the chart uses (docs/design-notes/agent-footprint.md).
 */
export class NodeHttpProbe implements HttpProbe {
  readonly #request: string;

  constructor(private readonly target: HttpProbeTarget) {
    const host = target.host.includes(":") ? `[${target.host}]` : target.host;
    this.#request = `GET ${target.path} HTTP/1.0\r\nHost: ${host}:${target.port}\r\nUser-Agent: ha-nginx-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n`;
  }

  probe(): Promise<ProbeResult> {
    const { host, port, scheme, timeout } = this.target;
    return new Promise((resolve) => {
      let isSettled = false;
      let head = "";
      const settle = (result: ProbeResult): void => {
        if (isSettled) return;
        isSettled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(result);
      };
      const fail = (reason: ProbeFailure, detail: string): void => settle({ ok: false, reason, detail });
      // Timers run before I/O: on a stalled loop the answer may already wait in the socket when the timeout fires, so
      // the timeout waits for the poll phase to read it, as the runtime's VRRP timers do.
      const timer = setTimeout(() => setImmediate(() => fail("timeout", `no complete answer within ${timeout} ms`)), timeout);
      const onConnected = (): void => {
        socket.write(this.#request);
      };
      const socket: Socket =
        scheme === "HTTPS" ? tlsConnect({ host, port, rejectUnauthorized: false, servername: isIp(host) ? undefined : host }, onConnected) : netConnect({ host, port }, onConnected);
      socket.setEncoding("latin1");
      const judge = (): void => {
        const status = statusOf(head);
        if (status === undefined) fail("failed", `not an HTTP answer: ${JSON.stringify(head.split("\r\n", 1)[0] ?? "")}`);
        else if (status >= 200 && status < 400) settle({ ok: true, status });
        else fail("bad-status", `HTTP ${status}`);
      };
      socket.on("data", (chunk: string) => {
        if (head.length < MAX_HEAD) head += chunk.slice(0, MAX_HEAD - head.length);
        // The status is known once the headers end; the body would only say it again.
        if (head.includes("\r\n\r\n") || head.length >= MAX_HEAD) judge();
      });
      socket.on("end", judge);
      socket.on("error", (error) => fail(failureOf(error), error.message));
    });
  }
}

function statusOf(head: string): number | undefined {
  const match = /^HTTP\/\d\.\d (\d{3})[ \r]/.exec(head);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}

function failureOf(error: Error): ProbeFailure {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ECONNREFUSED") return "refused";
  return "failed";
}
