import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLab, startNginx, waitFor, type Lab, type LabHost } from "../../../testing/lab/index.js";
import { createCa, issueCertificate } from "../../../testing/testbed/pki.js";
import { startDriver, type Driver } from "./driver.js";

describe("link monitor and HTTP probe on a lab node", () => {
  let lab: Lab | undefined;
  let host: LabHost;
  let n1: Driver;

  beforeAll(async () => {
    lab = await createLab({ nodes: 1, idPrefix: "hclp" });
    const [first] = lab.nodes;
    if (first === undefined) throw new Error("lab without a node");
    host = first;
    await startNginx(lab, host);
    n1 = await startDriver(lab, host);
  });

  afterAll(async () => {
    n1?.close();
    await lab?.destroy();
  });

  it("sees the carrier go down on cutLink and come back on restoreLink", async () => {
    if (lab === undefined) throw new Error("no lab");
    expect(await n1.call({ op: "link-start", ifname: "eth0" })).toEqual({ ok: true, isUp: true });
    await lab.cutLink(host);
    expect((await n1.nextEvent((e) => e.event === "link", "the link to go down")).isUp).toBe(false);
    expect(await n1.call({ op: "link-is-up" })).toEqual({ isUp: false });
    await lab.restoreLink(host);
    expect((await n1.nextEvent((e) => e.event === "link", "the link to come back")).isUp).toBe(true);
    expect(await n1.call({ op: "link-is-up" })).toEqual({ isUp: true });
    expect(await n1.call({ op: "link-stop" })).toEqual({ ok: true, isUp: true });
  });

  it("fails to monitor a missing interface", async () => {
    const driver = n1;
    expect(await driver.call({ op: "link-start", ifname: "nope0" })).toMatchObject({ ok: false, code: "no-such-interface" });
  });

  it("probes nginx's /healthz: ok with the status", async () => {
    const result = await n1.call({ op: "probe", host: "127.0.0.1", port: 80, path: "/healthz", timeoutMs: 2_000 });
    expect(result).toEqual({ ok: true, status: 200 });
  });

  it("probes a closed port: refused, with a reason", async () => {
    const result = await n1.call({ op: "probe", host: "127.0.0.1", port: 81, path: "/healthz", timeoutMs: 2_000 });
    expect(result).toMatchObject({ ok: false, reason: "refused" });
  });

  it("probes a server that answers 404: bad-status", async () => {
    if (lab === undefined) throw new Error("no lab");
    lab.spawn(host, "python3", ["-m", "http.server", "--bind", "127.0.0.1", "8081", "--directory", lab.tmpDir]);
    await waitFor(async () => (await lab?.httpGet(host, "http://127.0.0.1:8081/"))?.status === 200, {
      timeoutMs: 20_000,
      what: "python's http.server to listen",
    });
    const result = await n1.call({ op: "probe", host: "127.0.0.1", port: 8081, path: "/healthz", timeoutMs: 2_000 });
    expect(result).toMatchObject({ ok: false, reason: "bad-status", detail: "HTTP 404" });
  });

  it("Kubernetes httpGet scheme HTTPS: probes over TLS without verifying the self-signed certificate; plain HTTP to that port fails", async () => {
    if (lab === undefined) throw new Error("no lab");
    const ca = await createCa(lab.tmpDir, "probe-test-ca");
    const server = await issueCertificate(ca, lab.tmpDir, { name: "nginx-tls", commonName: "nginx", usage: "server", ipAddresses: ["127.0.0.1"] });
    const serve = [
      "import http.server, ssl, sys",
      "httpd = http.server.HTTPServer(('127.0.0.1', 8443), http.server.SimpleHTTPRequestHandler)",
      "context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)",
      "context.load_cert_chain(sys.argv[1], sys.argv[2])",
      "httpd.socket = context.wrap_socket(httpd.socket, server_side=True)",
      "httpd.serve_forever()",
    ].join("\n");
    lab.spawn(host, "python3", ["-c", serve, server.certFile, server.keyFile], { cwd: lab.tmpDir });
    await waitFor(async () => (await n1.call<{ ok: boolean }>({ op: "probe", host: "127.0.0.1", port: 8443, path: "/", scheme: "HTTPS", timeoutMs: 2_000 })).ok, {
      timeoutMs: 20_000,
      what: "python's TLS server to answer",
    });
    expect(await n1.call({ op: "probe", host: "127.0.0.1", port: 8443, path: "/", scheme: "HTTPS", timeoutMs: 2_000 })).toEqual({ ok: true, status: 200 });
    expect(await n1.call({ op: "probe", host: "127.0.0.1", port: 8443, path: "/", scheme: "HTTP", timeoutMs: 2_000 })).toMatchObject({ ok: false });
  });

  it("probes an address nobody answers for: timeout within its bound", async () => {
    if (lab === undefined) throw new Error("no lab");
    const started = performance.now();
    const result = await n1.call({ op: "probe", host: lab.vip(9).address, port: 80, path: "/healthz", timeoutMs: 300 });
    expect(result).toMatchObject({ ok: false, reason: "timeout" });
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
