// nginx runs from Debian's binary with the pod's configuration: the image's /etc/nginx/nginx.conf (if mounted) or a
// generated main file that includes /etc/nginx/conf.d, with every path the image would own (pid, logs, temp files)
// moved into the pod folder and every mount path rewritten to it.
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { hostPathOf, translatePaths, type Mount } from "./pod-config.js";

// Returns the main configuration file to start nginx with.
export async function nginxConfig(podDir: string, nodeName: string, mounts: readonly Mount[]): Promise<string> {
  const root = join(podDir, "nginx");
  await Promise.all(["logs", "tmp", "cache"].map((sub) => mkdir(join(root, sub), { recursive: true })));
  for (const mount of mounts) {
    if (mount.containerPath.startsWith("/etc/nginx")) await rewriteTree(mount.hostPath, mounts);
  }
  const globals = [
    `pid ${join(root, "nginx.pid")};`,
    "daemon off;",
    "error_log stderr notice;",
  ].join("\n");
  const temps = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((name) => `${name}_temp_path ${join(root, "tmp", name)};`).join("\n  ");
  const main = join(root, "nginx.conf");
  const ownMain = hostPathOf("/etc/nginx/nginx.conf", mounts);
  if (ownMain !== undefined && existsSync(ownMain) && (await stat(ownMain)).isFile()) {
    const text = (await readFile(ownMain, "utf8")).replace(/^\s*(pid|daemon|user|error_log)\s[^;]*;/gm, "");
    await writeFile(main, `${globals}\n${translatePaths(text, mounts).replaceAll("/var/log/nginx", join(root, "logs")).replaceAll("/var/cache/nginx", join(root, "cache"))}`);
    return main;
  }
  // As the image's main file does: include /etc/nginx/conf.d/*.conf, whether that folder or single files in it are mounted.
  const includes: string[] = [];
  const confD = hostPathOf("/etc/nginx/conf.d", mounts);
  if (confD !== undefined && (await stat(confD)).isDirectory()) includes.push(`include ${confD}/*.conf;`);
  for (const mount of mounts) {
    if (mount.containerPath.startsWith("/etc/nginx/conf.d/") && mount.containerPath.endsWith(".conf")) includes.push(`include ${mount.hostPath};`);
  }
  const servers = includes.length === 0 ? defaultServer(nodeName) : includes.join("\n  ");
  await writeFile(main, `${globals}
worker_processes 1;
events { worker_connections 512; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  ${temps}
  ${servers}
}
`);
  return main;
}

async function rewriteTree(path: string, mounts: readonly Mount[]): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) return;
  if (info.isDirectory()) {
    for (const entry of await readdir(path)) await rewriteTree(join(path, entry), mounts);
    return;
  }
  if (!info.isFile() || info.size > 1_000_000) return;
  const text = await readFile(path, "utf8");
  const rewritten = translatePaths(text, mounts);
  if (rewritten !== text) await writeFile(path, rewritten);
}

function defaultServer(nodeName: string): string {
  return `server {
    listen 80 default_server;
    location = /healthz { default_type text/plain; return 200 "ok\\n"; }
    location / { default_type text/plain; return 200 "${nodeName}\\n"; }
  }`;
}
