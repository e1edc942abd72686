// The agent's Kubernetes client: a handful of REST calls and watches over node:http(s). client-node loads its whole
// generated API and every auth plugin at import, about 70 MiB of RSS on every node, more than the agent's VRRP work
// at 100 routers (docs/design-notes/agent-footprint.md). The controller, one replica, keeps client-node.

import { readFileSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { createInterface } from "node:readline";
import { parse } from "yaml";

/** A healthy API server answers small reads and writes in milliseconds; a call still open after 3 s is waiting on
 * something that is down, and the status goal is 5 s from recovery. */
export const API_CALL_TIMEOUT_MS = 3_000;

/** A call the API server answered with an error status; `code` and `body` are what describeApiError reads. */
export class KubernetesApiError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${code}`);
  }
}

export interface Credentials {
  readonly server: string;
  readonly ca: Buffer | undefined;
  readonly isTlsVerified: boolean;
  /** Read again for every call: a projected service-account token is rotated on disk by the kubelet. */
  readonly token: (() => string) | undefined;
  readonly clientCertificate: { readonly cert: Buffer; readonly key: Buffer } | undefined;
}

export type Query = Readonly<Record<string, string>>;

export interface CallOptions {
  readonly query?: Query;
  readonly body?: unknown;
  readonly contentType?: string;
  /** Ends the call in place of the default bound, for a caller that owns its deadline. */
  readonly signal?: AbortSignal;
}

export interface WatchHandle {
  abort(): void;
}

export class KubernetesHttpClient {
  readonly #server: URL;
  readonly #agent: HttpAgent;
  readonly #token: (() => string) | undefined;

  constructor(credentials: Credentials) {
    this.#server = new URL(credentials.server);
    this.#token = credentials.token;
    const isHttps = this.#server.protocol === "https:";
    this.#agent = isHttps
      ? new HttpsAgent({
          keepAlive: true,
          ca: credentials.ca,
          cert: credentials.clientCertificate?.cert,
          key: credentials.clientCertificate?.key,
          rejectUnauthorized: credentials.isTlsVerified,
        })
      : new HttpAgent({ keepAlive: true });
  }

  /** The JSON answer of one call, which ends within API_CALL_TIMEOUT_MS unless `options.signal` bounds it. */
  async call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
    const signal = options.signal ?? AbortSignal.timeout(API_CALL_TIMEOUT_MS);
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const response = await this.#send(method, this.#url(path, options.query ?? {}), signal, body, options.contentType);
    const text = await readText(response);
    if ((response.statusCode ?? 0) >= 400) throw new KubernetesApiError(response.statusCode ?? 0, text, `${method} ${path}`);
    return (text === "" ? {} : JSON.parse(text)) as T;
  }

  /** Streams watch events to `onEvent` until the server ends the watch, it fails, or it is aborted; then `done` runs
   * once, with null for a normal end. The shape is client-node's Watch.watch, so the reflector takes either. */
  async watch(path: string, query: Query, onEvent: (type: string, object: unknown) => void, done: (error: unknown) => void): Promise<WatchHandle> {
    const controller = new AbortController();
    let isDone = false;
    const finish = (error: unknown): void => {
      if (isDone) return;
      isDone = true;
      controller.abort();
      done(error);
    };
    try {
      const response = await this.#send("GET", this.#url(path, { ...query, watch: "true" }), controller.signal, undefined, undefined);
      if (response.statusCode !== 200) throw new KubernetesApiError(response.statusCode ?? 0, await readText(response), `watch ${path}`);
      response.on("end", () => finish(null));
      response.on("close", () => finish(null));
      // readline passes the response's errors on as its own.
      const lines = createInterface({ input: response, crlfDelay: Infinity });
      lines.on("error", finish);
      lines.on("line", (line) => {
        if (line === "") return;
        try {
          const event = JSON.parse(line) as { type: string; object: unknown };
          onEvent(event.type, event.object);
        } catch (error) {
          // A torn stream: end the watch, and the reflector relists, rather than go on with a gap.
          finish(error);
        }
      });
    } catch (error) {
      finish(error);
    }
    return controller;
  }

  #url(path: string, query: Query): URL {
    const url = new URL(this.#server.pathname.replace(/\/$/, "") + path, this.#server);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    return url;
  }

  #send(method: string, url: URL, signal: AbortSignal, body: string | undefined, contentType: string | undefined): Promise<IncomingMessage> {
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = this.#token?.();
    if (token !== undefined && token !== "") headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = contentType ?? "application/json";
    const request = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const outgoing = request(url, { method, headers, agent: this.#agent, signal }, resolve);
      outgoing.on("error", reject);
      outgoing.end(body);
    });
  }
}

async function readText(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Where a process finds the API server, as kubectl and client-node do: $KUBECONFIG, else the pod's service account,
 * else ~/.kube/config. */
export function credentialsFromEnvironment(env: NodeJS.ProcessEnv = process.env, serviceAccount = SERVICE_ACCOUNT): Credentials {
  const kubeconfig = env.KUBECONFIG?.split(":").find((path) => path !== "");
  if (kubeconfig !== undefined) return credentialsFromKubeconfig(kubeconfig);
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host !== undefined && host !== "") {
    const tokenFile = join(serviceAccount, "token");
    return {
      server: `https://${host.includes(":") ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? "443"}`,
      ca: readFileSync(join(serviceAccount, "ca.crt")),
      isTlsVerified: true,
      token: () => readFileSync(tokenFile, "utf8").trim(),
      clientCertificate: undefined,
    };
  }
  return credentialsFromKubeconfig(join(homedir(), ".kube", "config"));
}

interface KubeconfigFile {
  readonly "current-context"?: string;
  readonly contexts?: readonly { readonly name: string; readonly context?: { readonly cluster?: string; readonly user?: string } }[];
  readonly clusters?: readonly { readonly name: string; readonly cluster?: Readonly<Record<string, unknown>> }[];
  readonly users?: readonly { readonly name: string; readonly user?: Readonly<Record<string, unknown>> }[];
}

/** A kubeconfig's current context with a token or a client certificate; exec and auth-provider plugins are refused,
 * since an agent runs in its pod with a service account. */
export function credentialsFromKubeconfig(path: string): Credentials {
  const config = parse(readFileSync(path, "utf8")) as KubeconfigFile;
  const fail = (what: string): never => {
    throw new Error(`kubeconfig ${path}: ${what}`);
  };
  const contextName = config["current-context"] ?? fail("no current-context");
  const context = config.contexts?.find((candidate) => candidate.name === contextName)?.context ?? fail(`no context named ${contextName}`);
  const cluster = config.clusters?.find((candidate) => candidate.name === context.cluster)?.cluster ?? fail(`no cluster named ${String(context.cluster)}`);
  const user = config.users?.find((candidate) => candidate.name === context.user)?.user ?? {};
  if (user.exec !== undefined || user["auth-provider"] !== undefined) fail(`user ${String(context.user)} uses an exec or auth-provider plugin, which the agent does not run; give it a token or a client certificate`);
  const base = dirname(path);
  const bytes = (dataKey: string, fileKey: string, of: Readonly<Record<string, unknown>>): Buffer | undefined => {
    const data = of[dataKey];
    if (typeof data === "string") return Buffer.from(data, "base64");
    const file = of[fileKey];
    return typeof file === "string" ? readFileSync(isAbsolute(file) ? file : join(base, file)) : undefined;
  };
  const server = cluster.server;
  if (typeof server !== "string") fail(`cluster ${String(context.cluster)} has no server`);
  const cert = bytes("client-certificate-data", "client-certificate", user);
  const key = bytes("client-key-data", "client-key", user);
  const token = user.token;
  const tokenFile = user.tokenFile;
  return {
    server: server as string,
    ca: bytes("certificate-authority-data", "certificate-authority", cluster),
    isTlsVerified: cluster["insecure-skip-tls-verify"] !== true,
    token: typeof token === "string" ? () => token : typeof tokenFile === "string" ? () => readFileSync(tokenFile, "utf8").trim() : undefined,
    clientCertificate: cert !== undefined && key !== undefined ? { cert, key } : undefined,
  };
}

