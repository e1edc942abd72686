// Captures real keepalived adverts as golden fixtures for the codec tests: `npx tsx scripts/capture-keepalived-fixtures.ts`
// (root). Each case runs one keepalived in a lab node (n1), records what arrives on the other node's eth0 (n2) with
// tcpdump, and writes the IP datagram as hex plus its metadata to test/fixtures/keepalived/. See the README there.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createLab } from "../testing/lab/index.js";
import type { Lab, LabHost } from "../testing/lab/index.js";
import { keepalivedConfig, startKeepalived } from "../testing/lab/keepalived.js";
import type { KeepalivedOptions } from "../testing/lab/keepalived.js";

const outDir = join(import.meta.dirname, "..", "test", "fixtures", "keepalived");
const vrrpProtocol = 112;
const mcastGroup4 = [224, 0, 0, 18] as const;

interface CaptureCase {
  readonly name: string;
  readonly description: string;
  readonly options: (lab: Lab, peer: LabHost) => KeepalivedOptions;
  // "steady": the last advert at the configured priority; "shutdown": the priority-0 advert sent on SIGTERM.
  readonly pick: "steady" | "shutdown";
  readonly minKeepalived?: readonly [number, number, number];
}

const cases: readonly CaptureCase[] = [
  {
    name: "v3-ipv4-multicast",
    description: "VRRPv3 over IPv4 to 224.0.0.18, keepalived's default checksum (IPv4 pseudo-header included)",
    options: (lab) => ({ vrid: 51, version: 3, priority: 150, advertIntervalMs: 1000, vips: [`${lab.vip(0).address}/24`] }),
    pick: "steady",
  },
  {
    name: "v3-ipv4-checksum-as-v2",
    description: "VRRPv3 over IPv4 multicast with v3_checksum_as_v2: checksum without the pseudo-header (RFC 9568)",
    options: (lab) => ({ vrid: 51, version: 3, priority: 150, advertIntervalMs: 1000, vips: [`${lab.vip(0).address}/24`],
      checksum: "v3-as-v2" }),
    pick: "steady",
    minKeepalived: [2, 2, 8],
  },
  {
    name: "v3-ipv4-unicast",
    description: "VRRPv3 over IPv4 unicast to one peer; pseudo-header with the unicast destination",
    options: (lab, peer) => ({ vrid: 52, version: 3, priority: 150, advertIntervalMs: 1000,
      vips: [`${lab.vip(0).address}/24`], transport: { mode: "unicast", peers: [peer.address] } }),
    pick: "steady",
  },
  {
    name: "v3-ipv4-unicast-old-checksum",
    description: "VRRPv3 over IPv4 unicast with old_unicast_checksum: pseudo-header destination is 224.0.0.18",
    options: (lab, peer) => ({ vrid: 52, version: 3, priority: 150, advertIntervalMs: 1000,
      vips: [`${lab.vip(0).address}/24`], transport: { mode: "unicast", peers: [peer.address] },
      checksum: "old-unicast" }),
    pick: "steady",
  },
  {
    name: "v2-ipv4-pass",
    description: "VRRPv2 multicast with auth_type PASS, password secret12 (8 characters, the maximum)",
    options: (lab) => ({ vrid: 53, version: 2, priority: 150, advertIntervalMs: 1000, vips: [`${lab.vip(0).address}/24`],
      authPass: "secret12" }),
    pick: "steady",
  },
  {
    name: "v2-ipv4-pass-short",
    description: "VRRPv2 multicast with auth_type PASS, password 1111 as in the tutorials (zero-padded to 8 bytes)",
    options: (lab) => ({ vrid: 51, version: 2, priority: 100, advertIntervalMs: 1000, vips: [`${lab.vip(0).address}/24`],
      authPass: "1111" }),
    pick: "steady",
  },
  {
    name: "v2-ipv4-noauth",
    description: "VRRPv2 multicast without authentication",
    options: (lab) => ({ vrid: 53, version: 2, priority: 150, advertIntervalMs: 1000, vips: [`${lab.vip(0).address}/24`] }),
    pick: "steady",
  },
  {
    name: "v3-ipv6-multicast",
    description: "VRRPv3 over IPv6 to ff02::12 from the link-local address; the checksum is computed by the kernel",
    options: (lab) => ({ vrid: 61, version: 3, priority: 150, advertIntervalMs: 1000,
      vips: [`${lab.vip(0).address6}/64`] }),
    pick: "steady",
  },
  {
    name: "v3-ipv4-priority-0",
    description: "VRRPv3 over IPv4 multicast: the priority-0 advert keepalived sends when it stops (SIGTERM) as MASTER",
    options: (lab) => ({ vrid: 51, version: 3, priority: 150, advertIntervalMs: 1000, vips: [`${lab.vip(0).address}/24`] }),
    pick: "shutdown",
  },
  {
    name: "v3-ipv4-two-vips",
    description: "VRRPv3 over IPv4 multicast with two virtual addresses, in configuration order",
    options: (lab) => ({ vrid: 55, version: 3, priority: 200, advertIntervalMs: 1000,
      vips: [`${lab.vip(0).address}/24`, `${lab.vip(1).address}/24`] }),
    pick: "steady",
  },
  {
    name: "v3-ipv4-interval-100ms",
    description: "VRRPv3 over IPv4 multicast with advert_int 0.1 (10 centiseconds)",
    options: (lab) => ({ vrid: 56, version: 3, priority: 120, advertIntervalMs: 100, vips: [`${lab.vip(0).address}/24`] }),
    pick: "steady",
  },
];

// --- pcap -------------------------------------------------------------------------------------------------------

const linkTypeEthernet = 1;
const linkTypeLinuxSll = 113;
const linkTypeLinuxSll2 = 276;

interface CapturedDatagram {
  readonly timestampUs: number;
  readonly datagram: Buffer;
}

function readPcap(file: Buffer): { linkType: number; datagrams: CapturedDatagram[] } {
  if (file.length < 24) throw new Error("pcap shorter than its global header");
  const magic = file.readUInt32LE(0);
  const isLittle = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const isBig = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1;
  if (!isLittle && !isBig) throw new Error(`not a pcap file (magic ${magic.toString(16)})`);
  const isNano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  const u32 = (at: number): number => (isLittle ? file.readUInt32LE(at) : file.readUInt32BE(at));
  const linkType = u32(20) & 0x0fffffff;
  const datagrams: CapturedDatagram[] = [];
  for (let at = 24; at + 16 <= file.length;) {
    const seconds = u32(at);
    const fraction = u32(at + 4);
    const included = u32(at + 8);
    const frame = file.subarray(at + 16, at + 16 + included);
    at += 16 + included;
    const datagram = networkLayer(linkType, frame);
    if (datagram !== undefined) {
      datagrams.push({ timestampUs: seconds * 1e6 + (isNano ? Math.floor(fraction / 1000) : fraction), datagram });
    }
  }
  return { linkType, datagrams };
}

function networkLayer(linkType: number, frame: Buffer): Buffer | undefined {
  let etherType: number;
  let offset: number;
  if (linkType === linkTypeEthernet) {
    etherType = frame.readUInt16BE(12);
    offset = 14;
  } else if (linkType === linkTypeLinuxSll) {
    etherType = frame.readUInt16BE(14);
    offset = 16;
  } else if (linkType === linkTypeLinuxSll2) {
    etherType = frame.readUInt16BE(0);
    offset = 20;
  } else {
    throw new Error(`unsupported pcap link type ${linkType}`);
  }
  return etherType === 0x0800 || etherType === 0x86dd ? Buffer.from(frame.subarray(offset)) : undefined;
}

// --- just enough decoding to describe and verify a capture; the product codec lives in src/vrrp -----------------

interface Described {
  readonly family: "ipv4" | "ipv6";
  readonly ipHeaderLength: number;
  readonly ttl: number;
  readonly source: string;
  readonly destination: string;
  readonly vrrp: Buffer;
}

function describeIp(datagram: Buffer): Described | undefined {
  const ipVersion = datagram[0] === undefined ? 0 : datagram[0] >> 4;
  if (ipVersion === 4) {
    const ihl = ((datagram[0] ?? 0) & 0x0f) * 4;
    if (datagram[9] !== vrrpProtocol) return undefined;
    const total = datagram.readUInt16BE(2);
    return { family: "ipv4", ipHeaderLength: ihl, ttl: datagram[8] ?? 0, source: ipv4(datagram.subarray(12, 16)),
      destination: ipv4(datagram.subarray(16, 20)), vrrp: datagram.subarray(ihl, total) };
  }
  if (ipVersion === 6) {
    if (datagram[6] !== vrrpProtocol) return undefined;
    const payload = datagram.readUInt16BE(4);
    return { family: "ipv6", ipHeaderLength: 40, ttl: datagram[7] ?? 0, source: ipv6(datagram.subarray(8, 24)),
      destination: ipv6(datagram.subarray(24, 40)), vrrp: datagram.subarray(40, 40 + payload) };
  }
  return undefined;
}

function ipv4(bytes: Buffer): string {
  return [...bytes].join(".");
}

function ipv6(bytes: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16));
  let best = { at: -1, length: 0 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === "0") j += 1;
    if (j - i > best.length && j - i > 1) best = { at: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.at < 0) return groups.join(":");
  return `${groups.slice(0, best.at).join(":")}::${groups.slice(best.at + best.length).join(":")}`;
}

function onesComplementSum(parts: readonly Buffer[]): number {
  let sum = 0;
  for (const part of parts) {
    for (let i = 0; i < part.length; i += 2) sum += ((part[i] ?? 0) << 8) | (part[i + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function verifies(parts: readonly Buffer[]): boolean {
  return onesComplementSum(parts) === 0xffff;
}

function ipv4PseudoHeader(source: Buffer, destination: Buffer, length: number): Buffer {
  const header = Buffer.alloc(12);
  source.copy(header, 0);
  destination.copy(header, 4);
  header[9] = vrrpProtocol;
  header.writeUInt16BE(length, 10);
  return header;
}

// Which checksum rule the sender used, found by checking every candidate against the captured bytes.
function checksumMode(datagram: Buffer, d: Described, version: number): string {
  if (d.family === "ipv6") {
    const pseudo = Buffer.alloc(40);
    datagram.copy(pseudo, 0, 8, 40);
    pseudo.writeUInt32BE(d.vrrp.length, 32);
    pseudo[39] = vrrpProtocol;
    return verifies([pseudo, d.vrrp]) ? "ipv6-pseudo-header" : "unverified";
  }
  if (version === 2) return verifies([d.vrrp]) ? "vrrp-only" : "unverified";
  const source = datagram.subarray(12, 16);
  if (verifies([ipv4PseudoHeader(source, datagram.subarray(16, 20), d.vrrp.length), d.vrrp])) {
    return "ipv4-pseudo-header";
  }
  if (verifies([ipv4PseudoHeader(source, Buffer.from(mcastGroup4), d.vrrp.length), d.vrrp])) {
    return "ipv4-pseudo-header-multicast-destination";
  }
  return verifies([d.vrrp]) ? "vrrp-only" : "unverified";
}

function vrrpFields(d: Described): Record<string, unknown> {
  const v = d.vrrp;
  const version = (v[0] ?? 0) >> 4;
  const count = v[3] ?? 0;
  const addressLength = d.family === "ipv4" ? 4 : 16;
  const addresses = Array.from({ length: count }, (_, i) => {
    const bytes = v.subarray(8 + i * addressLength, 8 + (i + 1) * addressLength);
    return d.family === "ipv4" ? ipv4(bytes) : ipv6(bytes);
  });
  const common = { version, type: (v[0] ?? 0) & 0x0f, vrid: v[1], priority: v[2], addressCount: count, addresses,
    checksum: `0x${v.readUInt16BE(6).toString(16).padStart(4, "0")}` };
  if (version === 3) {
    return { ...common, reservedBits: v.readUInt16BE(4) >> 12, maxAdverIntCentiseconds: v.readUInt16BE(4) & 0x0fff };
  }
  const authData = v.subarray(8 + count * 4, 16 + count * 4);
  return { ...common, authType: v[4], adverIntSeconds: v[5], authDataHex: authData.toString("hex"),
    authDataText: authData.toString("latin1").replace(/\0+$/, "") };
}

// --- running one case ----------------------------------------------------------------------------------------

async function keepalivedVersion(): Promise<[number, number, number]> {
  const { execFile } = await import("node:child_process");
  const output = await new Promise<string>((resolve, reject) => {
    execFile("/usr/sbin/keepalived", ["--version"], (err, stdout, stderr) => {
      if (err !== null) reject(err);
      else resolve(stdout + stderr);
    });
  });
  const match = /Keepalived v(\d+)\.(\d+)\.(\d+)/.exec(output);
  if (match === null) throw new Error(`cannot read keepalived's version from: ${output}`);
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

function atLeast(have: readonly number[], want: readonly number[]): boolean {
  for (let i = 0; i < want.length; i += 1) {
    const a = have[i] ?? 0;
    const b = want[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function captureCase(lab: Lab, sender: LabHost, receiver: LabHost, c: CaptureCase, version: string):
Promise<void> {
  const pcapPath = join(lab.tmpDir, `${c.name}.pcap`);
  const tcpdump = lab.spawn(receiver, "tcpdump", ["-i", receiver.ifname, "-U", "-n", "-w", pcapPath,
    "ip proto 112 or ip6 proto 112"]);
  let tcpdumpLog = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${tcpdumpLog}`)), 10_000);
    tcpdump.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      tcpdumpLog += chunk;
      if (tcpdumpLog.includes("listening on")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const tcpdumpExit = new Promise<void>((resolve) => tcpdump.once("exit", () => resolve()));

  const options = c.options(lab, receiver);
  const keepalived = await startKeepalived(lab, sender, { ...options, state: "MASTER" });
  try {
    await keepalived.waitForState("MASTER", 20_000);
    await delay(Math.max(2_500, 3 * (options.advertIntervalMs ?? 1000)));
    if (c.pick === "shutdown") await keepalived.stop();
  } finally {
    await keepalived.stop();
  }
  await delay(500);
  tcpdump.kill("SIGINT");
  await tcpdumpExit;

  const { linkType, datagrams } = readPcap(await readFile(pcapPath));
  const adverts = datagrams.flatMap((captured) => {
    const described = describeIp(captured.datagram);
    return described === undefined ? [] : [{ ...captured, described }];
  });
  const wanted = c.pick === "shutdown" ? 0 : options.priority;
  const chosen = adverts.filter((a) => a.described.vrrp[2] === wanted && a.described.vrrp[1] === options.vrid).at(-1);
  if (chosen === undefined) {
    throw new Error(`${c.name}: no advert with priority ${wanted} among ${adverts.length} captured`);
  }
  const d = chosen.described;
  const vrrpVersion = (d.vrrp[0] ?? 0) >> 4;
  const mode = checksumMode(chosen.datagram, d, vrrpVersion);
  if (mode === "unverified") throw new Error(`${c.name}: no checksum rule matches the captured advert`);

  const metadata = {
    case: c.name,
    description: c.description,
    keepalivedVersion: version,
    capturedAt: new Date(chosen.timestampUs / 1000).toISOString(),
    pcapLinkType: linkType,
    family: d.family,
    ipHeaderLength: d.ipHeaderLength,
    vrrpOffset: d.ipHeaderLength,
    vrrpLength: d.vrrp.length,
    datagramLength: chosen.datagram.length,
    source: d.source,
    destination: d.destination,
    ttl: d.ttl,
    checksumMode: mode,
    configured: {
      version: options.version ?? 3,
      vrid: options.vrid,
      priority: options.priority,
      advertIntervalMs: options.advertIntervalMs ?? 1000,
      vips: options.vips,
      transport: options.transport?.mode ?? "multicast",
      authType: options.authPass === undefined ? "none" : "PASS",
      authPass: options.authPass ?? null,
      checksum: options.checksum ?? "default",
    },
    vrrp: vrrpFields(d),
    keepalivedConfig: keepalivedConfig({ ...options, state: "MASTER", interface: sender.ifname,
      routerId: sender.name, transport: options.transport?.mode === "unicast"
        ? { ...options.transport, sourceAddress: options.vips.some((v) => v.includes(":")) ? sender.address6 : sender.address }
        : { mode: "multicast" } }),
  };
  await writeFile(join(outDir, `${c.name}.hex`), `${chosen.datagram.toString("hex")}\n`);
  await writeFile(join(outDir, `${c.name}.json`), `${JSON.stringify(metadata, null, 2)}\n`);
  console.log(`${c.name}: ${adverts.length} adverts captured, kept ${chosen.datagram.length} bytes, checksum ${mode}`);
}

async function main(): Promise<void> {
  const versionParts = await keepalivedVersion();
  const version = versionParts.join(".");
  const only = new Set(process.argv.slice(2));
  await mkdir(outDir, { recursive: true });
  const lab = await createLab({ nodes: 2, idPrefix: "kf" });
  try {
    const [sender, receiver] = lab.nodes;
    if (sender === undefined || receiver === undefined) throw new Error("lab has fewer than 2 nodes");
    for (const c of cases) {
      if (only.size > 0 && !only.has(c.name)) continue;
      if (c.minKeepalived !== undefined && !atLeast(versionParts, c.minKeepalived)) {
        console.log(`${c.name}: skipped, needs keepalived ${c.minKeepalived.join(".")} (have ${version})`);
        continue;
      }
      await captureCase(lab, sender, receiver, c, version);
    }
  } finally {
    await lab.destroy();
  }
}

await main();
