// Kubeconfig files for the test bed: one cluster, one user, one context, written 0600 because they hold credentials.
import { writeFile } from "node:fs/promises";
import { stringify } from "yaml";

export type KubeconfigCredentials =
  | { readonly kind: "client-certificate"; readonly certFile: string; readonly keyFile: string }
  | { readonly kind: "token"; readonly token: string };

export interface KubeconfigOptions {
  readonly server: string;
  readonly caFile: string;
  readonly userName: string;
  readonly credentials: KubeconfigCredentials;
  readonly namespace?: string;
}

export function renderKubeconfig(options: KubeconfigOptions): string {
  const user =
    options.credentials.kind === "token"
      ? { token: options.credentials.token }
      : { "client-certificate": options.credentials.certFile, "client-key": options.credentials.keyFile };
  const cluster = "ha-nginx-test-bed";
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: cluster, cluster: { server: options.server, "certificate-authority": options.caFile } }],
    users: [{ name: options.userName, user }],
    contexts: [
      {
        name: options.userName,
        context: { cluster, user: options.userName, ...(options.namespace === undefined ? {} : { namespace: options.namespace }) },
      },
    ],
    "current-context": options.userName,
  });
}

export async function writeKubeconfig(path: string, options: KubeconfigOptions): Promise<string> {
  await writeFile(path, renderKubeconfig(options), { mode: 0o600 });
  return path;
}
