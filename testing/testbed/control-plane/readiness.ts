// Waiting for a component to be ready, and failing with the tail of its log when it exits or never gets there.
import { readFileSync } from "node:fs";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { ControlPlanePki } from "../pki.js";
import type { Component } from "./processes.js";

const pollIntervalMs = 250;
const logTailLines = 40;

function logTail(path: string): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-logTailLines).join("\n");
  } catch {
    return "(no log)";
  }
}

interface ProbeResult {
  readonly status: number;
  readonly body: string;
}

export interface TlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly rejectUnauthorized: boolean;
}

function probe(url: string, tls?: TlsMaterial): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const onResponse = (response: IncomingMessage): void => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      response.on("error", reject);
    };
    const req = url.startsWith("https:")
      ? httpsRequest(url, { ...tls, timeout: 5_000 }, onResponse)
      : httpRequest(url, { timeout: 5_000 }, onResponse);
    req.on("timeout", () => req.destroy(new Error("probe timed out")));
    req.on("error", reject);
    req.end();
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(
  what: string,
  component: Component,
  timeoutMs: number,
  check: () => Promise<string | true>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    const child = component.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${component.name} exited (${String(child?.exitCode ?? child?.signalCode)}) before ${what}; ` +
          `tail of ${component.logFile}:\n${logTail(component.logFile)}`,
      );
    }
    try {
      const outcome = await check();
      if (outcome === true) return;
      last = outcome;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await delay(pollIntervalMs);
  }
  throw new Error(
    `${what} not reached within ${timeoutMs} ms (last: ${last}); tail of ${component.logFile}:\n${logTail(component.logFile)}`,
  );
}

export function adminTls(pki: ControlPlanePki): TlsMaterial {
  return {
    ca: readFileSync(pki.ca.certFile),
    cert: readFileSync(pki.admin.certFile),
    key: readFileSync(pki.admin.keyFile),
    rejectUnauthorized: true,
  };
}

async function expectOk(url: string, material?: TlsMaterial): Promise<string | true> {
  const result = await probe(url, material);
  return result.status === 200 ? true : `HTTP ${result.status}: ${result.body.slice(0, 500)}`;
}

export function waitForEtcdHealth(etcd: Component, etcdUrl: string, timeoutMs: number): Promise<void> {
  return waitUntil("etcd /health", etcd, timeoutMs, async () => {
    const result = await probe(`${etcdUrl}/health`);
    return result.status === 200 && result.body.includes('"true"') ? true : `HTTP ${result.status}: ${result.body}`;
  });
}

export function waitForReadyz(apiServer: Component, server: string, tls: TlsMaterial, timeoutMs: number): Promise<void> {
  return waitUntil("kube-apiserver /readyz", apiServer, timeoutMs, () => expectOk(`${server}/readyz`, tls));
}

// Their serving certificates are self-signed at start-up; /healthz is open to anonymous callers by default.
export function waitForHealthz(component: Component, port: number, timeoutMs: number): Promise<void> {
  return waitUntil(`${component.name} /healthz`, component, timeoutMs, () =>
    expectOk(`https://127.0.0.1:${port}/healthz`, { rejectUnauthorized: false }),
  );
}

// Pods cannot be created in a namespace before its `default` ServiceAccount exists; the first test should not
// race the service-account controller.
export function waitForDefaultServiceAccount(
  kubectl: (args: readonly string[]) => Promise<{ readonly code: number; readonly stderr: string }>,
  controllerManager: Component,
  timeoutMs: number,
): Promise<void> {
  return waitUntil("ServiceAccount default/default", controllerManager, timeoutMs, async () => {
    const result = await kubectl(["get", "serviceaccount", "default", "-n", "default", "-o", "name"]);
    return result.code === 0 ? true : result.stderr.trim();
  });
}
