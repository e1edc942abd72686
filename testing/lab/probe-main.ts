// Runs inside the lab's client namespace (spawned by probe.ts) and reports one JSON line per request on stdout:
// {"t": <epoch ms when sent>, "ok": true, "by": "<body>"} or {"t": ..., "ok": false, "err": "<why>"}.
// Each request opens a new TCP connection, as a fresh client would, so a moved VIP is seen at once.
import { request } from "node:http";

interface Outcome {
  readonly isOk: boolean;
  readonly detail: string;
}

const [url = "", intervalText = "10", timeoutText = "100"] = process.argv.slice(2);
const intervalMs = Number(intervalText);
const timeoutMs = Number(timeoutText);
let isStopping = false;

process.on("SIGTERM", () => { isStopping = true; process.exit(0); });
process.on("SIGINT", () => { isStopping = true; process.exit(0); });

function getOnce(target: string): Promise<Outcome> {
  return new Promise((resolve) => {
    let isSettled = false;
    const settle = (outcome: Outcome): void => {
      if (isSettled) return;
      isSettled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const req = request(target, { agent: false, headers: { connection: "close" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => { body += chunk; });
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        settle(status === 200 ? { isOk: true, detail: body.trim() } : { isOk: false, detail: `status-${status}` });
      });
      res.on("error", (err: NodeJS.ErrnoException) => settle({ isOk: false, detail: err.code ?? "response-error" }));
    });
    const timer = setTimeout(() => {
      settle({ isOk: false, detail: "timeout" });
      req.destroy();
    }, timeoutMs);
    req.on("error", (err: NodeJS.ErrnoException) => settle({ isOk: false, detail: err.code ?? "request-error" }));
    req.end();
  });
}

async function main(): Promise<void> {
  if (url === "" || !(intervalMs > 0) || !(timeoutMs > 0)) {
    process.stderr.write("usage: probe-main <url> <intervalMs> <timeoutMs>\n");
    process.exit(2);
  }
  let next = performance.now();
  while (!isStopping) {
    const sentAt = Date.now();
    const outcome = await getOnce(url);
    const line = outcome.isOk ? { t: sentAt, ok: true, by: outcome.detail } : { t: sentAt, ok: false, err: outcome.detail };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    next += intervalMs;
    const waitMs = next - performance.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    else next = performance.now();
  }
}

await main();
