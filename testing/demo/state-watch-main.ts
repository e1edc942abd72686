// Runs inside one demo node's namespace (spawned by state-watch.ts) and polls the agent's GET /state there, printing
// one JSON line per poll: {"t": <epoch ms>, "body": "<the /state document>"} or {"t": ..., "err": "<why>"}.
// One long-lived poller per node instead of a `curl` per poll keeps the demo's table cheap to redraw 5 times a second.
// A third argument, the lab's id, is not read: it only marks the process as that lab's in `ps`.

const [url = "", intervalText = "200"] = process.argv.slice(2);
const intervalMs = Number(intervalText);
const requestTimeoutMs = 500;

process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));

async function pollOnce(): Promise<Record<string, string | number>> {
  const t = Date.now();
  try {
    const answer = await fetch(url, { signal: AbortSignal.timeout(requestTimeoutMs) });
    const body = await answer.text();
    return answer.ok ? { t, body } : { t, err: `status-${answer.status}` };
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    const code = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.name) : "error";
    return { t, err: code };
  }
}

if (url === "" || !(intervalMs > 0)) {
  process.stderr.write("usage: state-watch-main <url> <intervalMs> [lab-id]\n");
  process.exit(2);
}
for (;;) {
  process.stdout.write(`${JSON.stringify(await pollOnce())}\n`);
  await new Promise((resolve) => setTimeout(resolve, intervalMs));
}
