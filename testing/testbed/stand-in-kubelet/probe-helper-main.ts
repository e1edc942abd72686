// The probe helper (see probe-helper.ts): runs inside a node's network namespace for as long as its stdin is open, and
// answers each JSON request line, an HTTP GET or a TCP connect, with one JSON reply line.
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import type { HelperReply, HelperRequest } from "./probe-helper.js";

type Settle = (ok: boolean, detail: string) => void;

function checkTcp(request: HelperRequest, done: Settle): void {
  const socket = connect({ host: request.host, port: request.port });
  socket.setTimeout(request.timeoutMs, () => {
    socket.destroy();
    done(false, "timeout");
  });
  socket.on("connect", () => {
    socket.destroy();
    done(true, "connected");
  });
  socket.on("error", (error) => done(false, error.message));
}

// Any 2xx or 3xx passes, as for the kubelet; certificates are not checked, as the kubelet does not.
function checkHttp(request: HelperRequest, done: Settle): void {
  const headers: Record<string, string> = {};
  for (const header of request.headers ?? []) headers[header.name] = header.value;
  const options: RequestOptions = {
    host: request.host,
    port: request.port,
    path: request.path,
    method: "GET",
    headers,
    timeout: request.timeoutMs,
    rejectUnauthorized: false,
  };
  const onResponse = (response: IncomingMessage): void => {
    response.resume();
    const code = response.statusCode ?? 0;
    done(code >= 200 && code < 400, `HTTP ${code}`);
  };
  const req = request.scheme === "HTTPS" ? httpsRequest(options, onResponse) : httpRequest(options, onResponse);
  req.on("timeout", () => {
    req.destroy();
    done(false, "timeout");
  });
  req.on("error", (error) => done(false, error.message));
  req.end();
}

function answer(request: HelperRequest): void {
  let isSettled = false;
  const done: Settle = (ok, detail) => {
    if (isSettled) return;
    isSettled = true;
    const reply: HelperReply = { id: request.id, ok, detail };
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  };
  if (request.kind === "tcp") checkTcp(request, done);
  else checkHttp(request, done);
}

const lines = createInterface({ input: process.stdin });
lines.on("close", () => process.exit(0));
lines.on("line", (line) => {
  let request: HelperRequest;
  try {
    request = JSON.parse(line) as HelperRequest;
  } catch {
    return;
  }
  answer(request);
});
