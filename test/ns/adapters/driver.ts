import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import type { Lab, LabHost } from "../../../testing/lab/index.js";
import { waitFor } from "../../../testing/lab/index.js";

/** A test's handle on driver-main.ts running inside one lab namespace. The lab kills it on destroy(). */
export interface Driver {
  call<T>(request: Readonly<Record<string, unknown>>): Promise<T>;
  readonly events: readonly DriverEvent[];
  nextEvent(match: (event: DriverEvent) => boolean, what: string, timeoutMs?: number): Promise<DriverEvent>;
  close(): void;
}

export type DriverEvent = Readonly<Record<string, unknown>> & { readonly event: string };

const driverMain = fileURLToPath(new URL("./driver-main.ts", import.meta.url));

export async function startDriver(lab: Lab, host: LabHost): Promise<Driver> {
  const child = lab.spawn(host, process.execPath, ["--import", "tsx", driverMain], { stdio: ["pipe", "pipe", "pipe"] });
  const events: DriverEvent[] = [];
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: child.stdout ?? process.stdin });
  lines.on("line", (line) => {
    const message = JSON.parse(line) as { id?: number; result?: unknown; error?: string; event?: string };
    if (message.id === undefined) {
      events.push(message as DriverEvent);
      return;
    }
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) waiter?.reject(new Error(message.error));
    else waiter?.resolve(message.result);
  });
  child.once("exit", (code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`driver in ${host.name} exited (${code}): ${stderr}`));
    pending.clear();
  });
  await waitFor(() => events.some((event) => event.event === "ready") || child.exitCode !== null, {
    timeoutMs: 60_000,
    what: `the adapter driver in ${host.name} to start`,
  });
  if (child.exitCode !== null) throw new Error(`driver in ${host.name} exited (${child.exitCode}): ${stderr}`);
  let nextId = 1;
  let consumed = 0;
  return {
    events,
    call<T>(request: Readonly<Record<string, unknown>>): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: (value) => resolve(value as T), reject });
        child.stdin?.write(`${JSON.stringify({ ...request, id })}\n`);
      });
    },
    async nextEvent(match, what, timeoutMs = 10_000) {
      let found: DriverEvent | undefined;
      await waitFor(
        () => {
          const index = events.findIndex((event, at) => at >= consumed && match(event));
          if (index < 0) return false;
          found = events[index];
          consumed = index + 1;
          return true;
        },
        { timeoutMs, what, intervalMs: 10 },
      );
      if (found === undefined) throw new Error(`no event: ${what}`);
      return found;
    },
    close() {
      child.stdin?.end();
      child.kill("SIGTERM");
    },
  };
}
