import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { HttpProbe, ProbeFailure, ProbeResult } from "../ports.js";
import type { Milliseconds } from "../../vrrp/units.js";

export interface HttpProbeTarget {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly scheme: "HTTP" | "HTTPS";
  readonly timeout: Milliseconds;
}

/**
 * One GET on a fresh connection (no keep-alive: a pooled socket could hide a listener that is gone). 2xx and 3xx
 * count as healthy, as the kubelet counts them. The timeout bounds the whole exchange, body included. HTTPS does not
 * verify the certificate, as the kubelet's probes do not: the probe asks whether nginx answers, not who it is.
 */
export class NodeHttpProbe implements HttpProbe {
  constructor(private readonly target: HttpProbeTarget) {}

  probe(): Promise<ProbeResult> {
    const { host, port, path, scheme, timeout } = this.target;
    return new Promise((resolve) => {
      let isSettled = false;
      const deadline = new AbortController();
      // Timers run before I/O: on a stalled loop the answer may already wait in the socket when the timeout fires, so
      // the abort waits for the poll phase to read it, as the runtime's VRRP timers do.
      const timer = setTimeout(() => setImmediate(() => deadline.abort()), timeout);
      const settle = (result: ProbeResult): void => {
        if (isSettled) return;
        isSettled = true;
        clearTimeout(timer);
        req.destroy();
        resolve(result);
      };
      const fail = (reason: ProbeFailure, detail: string): void => settle({ ok: false, reason, detail });
      const options = { host, port, path, method: "GET", agent: false, signal: deadline.signal } as const;
      const onResponse = (res: IncomingMessage): void => {
        const status = res.statusCode ?? 0;
        res.on("error", (error) => fail(failureOf(error), error.message));
        res.on("end", () => {
          if (status >= 200 && status < 400) settle({ ok: true, status });
          else fail("bad-status", `HTTP ${status}`);
        });
        res.resume();
      };
      const req = scheme === "HTTPS" ? httpsRequest({ ...options, rejectUnauthorized: false }, onResponse) : httpRequest(options, onResponse);
      req.on("error", (error) => fail(failureOf(error), error.message));
      req.end();
    });
  }
}

function failureOf(error: Error): ProbeFailure {
  const code = (error as NodeJS.ErrnoException).code;
  if (error.name === "AbortError" || error.name === "TimeoutError" || code === "ABORT_ERR") return "timeout";
  if (code === "ECONNREFUSED") return "refused";
  return "failed";
}
