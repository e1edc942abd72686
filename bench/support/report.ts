// Small helpers for the benchmarks' markdown output.

import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const upper = sorted[mid] ?? 0;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] ?? upper) + upper) / 2;
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Writes a benchmark's report to bench/results/<name>-<UTC stamp>.md; returns the path. */
export function writeResults(name: string, startedAt: Date, text: string): string {
  const dir = fileURLToPath(new URL("../results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}-${fileStamp(startedAt)}.md`);
  writeFileSync(path, text);
  return path;
}

function fileStamp(date: Date): string {
  // 2026-11-23T1005Z: sortable, one file per run, no colons in the name.
  const iso = date.toISOString();
  return `${iso.slice(0, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}Z`;
}

export function parseList<T extends string>(text: string, allowed: readonly T[], what: string): T[] {
  const items = text.split(",").map((item) => item.trim()).filter((item) => item !== "");
  const unknown = items.filter((item) => !(allowed as readonly string[]).includes(item));
  if (unknown.length > 0) throw new Error(`unknown ${what}: ${unknown.join(", ")} (known: ${allowed.join(", ")})`);
  return items as T[];
}

export function parsePositiveInts(text: string, what: string): number[] {
  return text.split(",").map((item) => {
    const value = Number(item.trim());
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${what}: ${JSON.stringify(item)} is not a positive integer`);
    return value;
  });
}

/** keepalived's version and the machine's load: what a reader needs to weigh the figures. */
export function machineNote(): string {
  const keepalived = spawnSync("/usr/sbin/keepalived", ["--version"], { encoding: "utf8" });
  const version = `${keepalived.stdout}${keepalived.stderr}`.split("\n")[0]?.trim() ?? "?";
  return `${version}; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(" ")} on ${spawnSync("nproc", { encoding: "utf8" }).stdout.trim()} cores (shared).`;
}
