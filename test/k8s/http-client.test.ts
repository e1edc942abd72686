import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { describeApiError } from "../../src/k8s/errors.js";
import { credentialsFromEnvironment, credentialsFromKubeconfig, KubernetesHttpClient, type Credentials } from "../../src/k8s/http-client.js";

/** A stand-in API server on loopback whose answer each test sets. */
let server: Server;
let answer: (request: IncomingMessage, response: ServerResponse) => void = () => undefined;
let folder: string;

beforeAll(async () => {
  server = createServer((request, response) => answer(request, response));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  folder = mkdtempSync(join(tmpdir(), "ha-nginx-http-client-"));
});

afterEach(() => server.closeAllConnections());

afterAll(() => {
  server.close();
  rmSync(folder, { recursive: true, force: true });
});

function plainCredentials(token?: () => string): Credentials {
  const { port } = server.address() as { port: number };
  return { server: `http://127.0.0.1:${port}`, ca: undefined, isTlsVerified: true, token, clientCertificate: undefined };
}

async function elapsedUntilFailure(call: () => Promise<unknown>): Promise<number> {
  const startedAt = Date.now();
  await expect(call()).rejects.toThrow();
  return Date.now() - startedAt;
}

describe("the agent's Kubernetes client", () => {
  it("sends the method, path, query, body and content type, and returns the JSON answer", async () => {
    let seen: { method?: string; url?: string; type?: string; body: string } = { body: "" };
    answer = (request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString()));
      request.on("end", () => {
        seen = { method: request.method, url: request.url, type: request.headers["content-type"], body };
        response.end(JSON.stringify({ kind: "HighAvailabilityVIP" }));
      });
    };
    const client = new KubernetesHttpClient(plainCredentials());
    const result = await client.call("PATCH", "/apis/ha-nginx.io/v1alpha1/namespaces/edge/highavailabilityvips/web/status", {
      query: { fieldManager: "ha-nginx-agent-n1", force: "true" },
      body: { status: { nodes: [] } },
      contentType: "application/apply-patch+yaml",
    });
    expect(result).toEqual({ kind: "HighAvailabilityVIP" });
    expect(seen).toEqual({
      method: "PATCH",
      url: "/apis/ha-nginx.io/v1alpha1/namespaces/edge/highavailabilityvips/web/status?fieldManager=ha-nginx-agent-n1&force=true",
      type: "application/apply-patch+yaml",
      body: JSON.stringify({ status: { nodes: [] } }),
    });
  });

  it("reads the token again for every call, so a rotated service-account token is used at once", async () => {
    const tokenFile = join(folder, "token");
    const headers: (string | undefined)[] = [];
    answer = (request, response) => {
      headers.push(request.headers.authorization);
      response.end("{}");
    };
    const credentials = credentialsFromKubeconfig(writeKubeconfig("rotating", { tokenFile }));
    const client = new KubernetesHttpClient(credentials);
    writeFileSync(tokenFile, "first\n");
    await client.call("GET", "/api/v1/nodes");
    writeFileSync(tokenFile, "second\n");
    await client.call("GET", "/api/v1/nodes");
    expect(headers).toEqual(["Bearer first", "Bearer second"]);
  });

  it("a refused call carries the status code and the API server's message, as describeApiError prints them", async () => {
    answer = (_request, response) => {
      response.statusCode = 403;
      response.end(JSON.stringify({ kind: "Status", message: 'secrets "vrrp" is forbidden: User "system:serviceaccount:x:y" cannot get resource "secrets"' }));
    };
    const client = new KubernetesHttpClient(plainCredentials());
    const error: unknown = await client.call("GET", "/api/v1/namespaces/edge/secrets/vrrp").catch((caught: unknown) => caught);
    expect(describeApiError(error)).toBe(
      'HTTP 403 (RBAC: the Role or ClusterRole bound to this ServiceAccount does not allow it): secrets "vrrp" is forbidden: User "system:serviceaccount:x:y" cannot get resource "secrets"',
    );
  });

  it("a call the server holds fails at the 3 s bound, and one given its own signal ends with that signal", async () => {
    answer = () => undefined;
    const client = new KubernetesHttpClient(plainCredentials());
    const bounded = await elapsedUntilFailure(() => client.call("GET", "/api/v1/nodes"));
    expect(bounded).toBeGreaterThanOrEqual(2_900);
    expect(bounded).toBeLessThan(6_000);
    expect(await elapsedUntilFailure(() => client.call("GET", "/api/v1/nodes", { signal: AbortSignal.timeout(200) }))).toBeLessThan(2_000);
  }, 15_000);

  it("a watch delivers each event line and ends with null when the server ends it", async () => {
    answer = (request, response) => {
      expect(new URL(request.url ?? "", "http://x").searchParams.get("watch")).toBe("true");
      response.write(`${JSON.stringify({ type: "ADDED", object: { metadata: { name: "a", resourceVersion: "5" } } })}\n`);
      response.end(`${JSON.stringify({ type: "DELETED", object: { metadata: { name: "a", resourceVersion: "6" } } })}\n`);
    };
    const client = new KubernetesHttpClient(plainCredentials());
    const events: string[] = [];
    const ended = await new Promise<unknown>((resolve) => {
      void client.watch("/api/v1/pods", { fieldSelector: "spec.nodeName=n1" }, (type, object) => events.push(`${type} ${(object as { metadata: { name: string } }).metadata.name}`), resolve);
    });
    expect(events).toEqual(["ADDED a", "DELETED a"]);
    expect(ended).toBeNull();
  });

  it("a torn watch stream ends the watch with an error instead of skipping the event", async () => {
    answer = (_request, response) => {
      response.write('{"type":"MODIFIED","object":{"metad\n');
    };
    const client = new KubernetesHttpClient(plainCredentials());
    const ended = await new Promise<unknown>((resolve) => void client.watch("/api/v1/pods", {}, () => undefined, resolve));
    expect(ended).toBeInstanceOf(SyntaxError);
  });

  it("a watch the server refuses ends with its status code", async () => {
    answer = (_request, response) => {
      response.statusCode = 410;
      response.end(JSON.stringify({ kind: "Status", message: "too old resource version" }));
    };
    const client = new KubernetesHttpClient(plainCredentials());
    const ended = await new Promise<unknown>((resolve) => void client.watch("/api/v1/pods", {}, () => undefined, resolve));
    expect(ended).toMatchObject({ code: 410 });
  });
});

function writeKubeconfig(name: string, user: Record<string, unknown>, cluster: Record<string, unknown> = {}): string {
  const { port } = server.address() as { port: number };
  const path = join(folder, `${name}.yaml`);
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "c",
      contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
      clusters: [{ name: "k", cluster: { server: `http://127.0.0.1:${port}`, ...cluster } }],
      users: [{ name: "u", user }],
    }),
  );
  return path;
}

describe("where the agent finds the API server", () => {
  it("a kubeconfig's relative certificate paths are read beside the kubeconfig, and the data forms are decoded", () => {
    writeFileSync(join(folder, "ca.crt"), "CA");
    const credentials = credentialsFromKubeconfig(
      writeKubeconfig("files", { "client-certificate-data": Buffer.from("CERT").toString("base64"), "client-key-data": Buffer.from("KEY").toString("base64") }, { "certificate-authority": "ca.crt" }),
    );
    expect(credentials.ca?.toString()).toBe("CA");
    expect(credentials.clientCertificate).toEqual({ cert: Buffer.from("CERT"), key: Buffer.from("KEY") });
    expect(credentials.isTlsVerified).toBe(true);
  });

  it("an exec plugin is refused with the kubeconfig, the user and what to give instead", () => {
    const path = writeKubeconfig("exec", { exec: { command: "aws" } });
    expect(() => credentialsFromKubeconfig(path)).toThrow(`kubeconfig ${path}: user u uses an exec or auth-provider plugin, which the agent does not run; give it a token or a client certificate`);
  });

  it("$KUBECONFIG comes first; in a pod without it, the service account's API server address is used, IPv6 bracketed", () => {
    const fromFile = credentialsFromEnvironment({ KUBECONFIG: writeKubeconfig("env", { token: "t" }), KUBERNETES_SERVICE_HOST: "10.96.0.1" });
    expect(fromFile.token?.()).toBe("t");
    writeFileSync(join(folder, "token"), "projected\n");
    const inPod = credentialsFromEnvironment({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "6443" }, folder);
    expect(inPod.server).toBe("https://[fd00::1]:6443");
    expect(inPod.token?.()).toBe("projected");
    expect(inPod.ca?.toString()).toBe("CA");
  });
});
