// The test bed's PKI, made with the openssl CLI. P-256 keys because generating them costs milliseconds where RSA
// costs a noticeable share of two busy cores, and every component of Kubernetes accepts them.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

// Long enough for a test bed left running by hand over a weekend; the CA dies with its temp dir anyway.
const validityDays = 7;

export interface KeyPair {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface CertificateRequest {
  readonly name: string;
  readonly commonName: string;
  readonly organizations?: readonly string[];
  readonly usage: "server" | "client";
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export interface ControlPlanePki {
  readonly dir: string;
  readonly ca: KeyPair;
  readonly apiServer: KeyPair;
  readonly admin: KeyPair;
  readonly controllerManager: KeyPair;
  readonly scheduler: KeyPair;
  readonly serviceAccount: { readonly publicKeyFile: string; readonly privateKeyFile: string };
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await execFileAsync("openssl", args);
  } catch (error) {
    const stderr = typeof error === "object" && error !== null && "stderr" in error ? String(error.stderr) : "";
    throw new Error(`openssl ${args[0] ?? ""} failed: ${stderr || String(error)}`);
  }
}

function subject(commonName: string, organizations: readonly string[] = []): string {
  const escape = (value: string): string => value.replace(/[/\\]/g, (c) => `\\${c}`);
  return [...organizations.map((o) => `/O=${escape(o)}`), `/CN=${escape(commonName)}`].join("");
}

export async function createCa(dir: string, commonName: string): Promise<KeyPair> {
  const ca = { certFile: join(dir, "ca.crt"), keyFile: join(dir, "ca.key") };
  await openssl([
    "req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
    "-keyout", ca.keyFile, "-out", ca.certFile, "-days", String(validityDays), "-subj", subject(commonName),
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
  ]);
  return ca;
}

// `x509 -req -extfile` rather than `req -x509 -CA`: only the extensions written here end up in the leaf, none of
// the system openssl.cnf's defaults (which would add CA:TRUE).
export async function issueCertificate(ca: KeyPair, dir: string, request: CertificateRequest): Promise<KeyPair> {
  const pair = { certFile: join(dir, `${request.name}.crt`), keyFile: join(dir, `${request.name}.key`) };
  const csrFile = join(dir, `${request.name}.csr`);
  const extFile = join(dir, `${request.name}.ext`);
  const altNames = [
    ...(request.dnsNames ?? []).map((name) => `DNS:${name}`),
    ...(request.ipAddresses ?? []).map((ip) => `IP:${ip}`),
  ];
  const extensions = [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    `extendedKeyUsage=${request.usage === "server" ? "serverAuth" : "clientAuth"}`,
    ...(altNames.length > 0 ? [`subjectAltName=${altNames.join(",")}`] : []),
  ];
  await writeFile(extFile, `${extensions.join("\n")}\n`);
  await openssl([
    "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
    "-keyout", pair.keyFile, "-out", csrFile, "-subj", subject(request.commonName, request.organizations),
  ]);
  await openssl([
    "x509", "-req", "-in", csrFile, "-CA", ca.certFile, "-CAkey", ca.keyFile,
    "-set_serial", `0x${randomBytes(16).toString("hex")}`, "-days", String(validityDays),
    "-extfile", extFile, "-out", pair.certFile,
  ]);
  await Promise.all([rm(csrFile), rm(extFile)]);
  return pair;
}

export const serviceClusterIpRange = "10.96.0.0/16";
// The first address of the service range: the `kubernetes` Service, which pods dial by ClusterIP.
export const kubernetesServiceIp = "10.96.0.1";

export async function createControlPlanePki(dir: string): Promise<ControlPlanePki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await createCa(dir, "ha-nginx-test-bed-ca");
  const serviceAccount = { publicKeyFile: join(dir, "sa.pub"), privateKeyFile: join(dir, "sa.key") };
  const [apiServer, admin, controllerManager, scheduler] = await Promise.all([
    issueCertificate(ca, dir, {
      name: "apiserver",
      commonName: "kube-apiserver",
      usage: "server",
      dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
      ipAddresses: ["127.0.0.1", kubernetesServiceIp],
    }),
    // system:masters is for the test harness alone; no product component may ever be given this identity.
    issueCertificate(ca, dir, { name: "admin", commonName: "test-harness-admin", organizations: ["system:masters"], usage: "client" }),
    issueCertificate(ca, dir, { name: "kube-controller-manager", commonName: "system:kube-controller-manager", usage: "client" }),
    issueCertificate(ca, dir, { name: "kube-scheduler", commonName: "system:kube-scheduler", usage: "client" }),
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", serviceAccount.privateKeyFile]).then(() =>
      openssl(["ec", "-in", serviceAccount.privateKeyFile, "-pubout", "-out", serviceAccount.publicKeyFile]),
    ),
  ]);
  return { dir, ca, apiServer, admin, controllerManager, scheduler, serviceAccount };
}
