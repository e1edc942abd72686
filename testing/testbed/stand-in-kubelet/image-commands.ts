// Images are not pulled: an image's repository picks what runs. A repository ending in `ha-nginx` runs the built CLI,
// `nginx` runs Debian's /usr/sbin/nginx, and any other image is refused with imageNotSupportedReason.
import type { V1Container } from "@kubernetes/client-node";
import { join } from "node:path";
import type { CommandLine } from "./namespace-process.js";

export const imageNotSupportedReason = "ImageNotSupportedByTestbed";

export type ImageKind = "ours" | "nginx" | "unsupported";

export function imageKind(image: string | undefined): ImageKind {
  if (image === undefined) return "unsupported";
  const withoutDigest = image.split("@")[0] ?? image;
  const lastSlash = withoutDigest.lastIndexOf("/");
  const lastColon = withoutDigest.lastIndexOf(":");
  const repository = lastColon > lastSlash ? withoutDigest.slice(0, lastColon) : withoutDigest;
  if (repository === "ha-nginx" || repository.endsWith("/ha-nginx")) return "ours";
  if (repository === "nginx" || repository.endsWith("/nginx")) return "nginx";
  return "unsupported";
}

// Our image's entrypoint is the CLI; a command that names it (ha-nginx …, node …/dist/cli.js …) maps to the build.
export function oursCommand(repoDir: string, command: readonly string[] | undefined, args: readonly string[]): CommandLine {
  const cli = join(repoDir, "dist", "cli.js");
  const [first, second, ...rest] = command ?? [];
  if (first === undefined) return { cmd: process.execPath, args: [cli, ...args] };
  if (first.split("/").pop() === "ha-nginx") return { cmd: process.execPath, args: [cli, ...[second, ...rest].filter(isString), ...args] };
  if (first.split("/").pop() === "node" && second !== undefined && second.endsWith("dist/cli.js")) {
    return { cmd: process.execPath, args: [cli, ...rest, ...args] };
  }
  return { cmd: first, args: [...[second, ...rest].filter(isString), ...args] };
}

function isString(value: string | undefined): value is string {
  return value !== undefined;
}

// The command line of an exec probe or hook in a container of this image.
export function commandFor(repoDir: string, spec: V1Container, command: readonly string[], args: readonly string[]): CommandLine {
  return imageKind(spec.image) === "ours" ? oursCommand(repoDir, command, args) : { cmd: command[0] ?? "true", args: [...command.slice(1), ...args] };
}

// `sleep N`, `/bin/sleep N` or `sh -c "sleep N"`: waiting in the kubelet is cheaper than a process and needs no netns.
export function sleepSeconds(command: readonly string[]): number | undefined {
  const words = command.length === 3 && /(^|\/)(ba)?sh$/.test(command[0] ?? "") && command[1] === "-c"
    ? (command[2] ?? "").trim().split(/\s+/)
    : [...command];
  if (words.length === 2 && /(^|\/)sleep$/.test(words[0] ?? "") && /^\d+(\.\d+)?$/.test(words[1] ?? "")) return Number(words[1]);
  return undefined;
}

// `nginx -s quit` in a preStop hook talks to the pid file of the image; here the kubelet knows the master's pid.
export function nginxSignalFor(command: readonly string[]): NodeJS.Signals | undefined {
  const words = command.length === 3 && command[1] === "-c" ? (command[2] ?? "").split(/\s+/) : [...command];
  const index = words.indexOf("-s");
  if (index < 0 || !(words[0] ?? "").endsWith("nginx")) return undefined;
  const map: Readonly<Record<string, NodeJS.Signals>> = { quit: "SIGQUIT", stop: "SIGTERM", reload: "SIGHUP", reopen: "SIGUSR1" };
  return map[words[index + 1] ?? ""];
}
