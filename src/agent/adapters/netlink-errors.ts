import type { SetupFailure } from "../ports.js";

// netlink@0.3.0 rejects requests with `Error("Request rejected: <ERRNO>")` and socket errors with an
// ErrnoException carrying `code`; both come down to the errno name.
export function errnoName(error: unknown): string {
  if (!(error instanceof Error)) return "UNKNOWN";
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === "string") return code;
  return /Request rejected: (\w+)/.exec(error.message)?.[1] ?? "UNKNOWN";
}

export function setupFailureOf(errno: string): SetupFailure {
  if (errno === "EPERM" || errno === "EACCES") return "permission-denied";
  if (errno === "ENODEV") return "no-such-interface";
  return "failed";
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
