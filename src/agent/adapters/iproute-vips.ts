import { execFile } from "node:child_process";
import { z } from "zod";
import type { InterfaceAddress, Outcome, SetupFailure, OutcomeWithValue, VipManager } from "../ports.js";
import type { Seconds } from "../../vrrp/units.js";

// VIPs through iproute2's `ip`, the fallback for when the netlink binding misbehaves. One process per call.

const ipAddrJson = z.array(
  z.object({
    addr_info: z.array(z.object({ family: z.string(), local: z.string(), prefixlen: z.number() })).default([]),
  }),
);

interface Run {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class IprouteVipManager implements VipManager {
  constructor(private readonly ipBinary: string = "ip") {}

  async add(vip: InterfaceAddress, ifname: string, lease: Seconds): Promise<Outcome<SetupFailure>> {
    // nodad: a VIP answers at once instead of sitting "tentative" through duplicate address detection.
    const extra = vip.family === "ipv6" ? ["nodad"] : [];
    // Deprecated from the start for IPv6 (RFC 6724 rule 3): the kernel never picks a VIP as the source of the node's own
    // traffic, unicast adverts included.
    const lifetimes = ["valid_lft", String(lease), "preferred_lft", vip.family === "ipv6" ? "0" : String(lease)];
    // replace: adds the address, or renews the lifetimes of the one that is there.
    const run = await this.ip(["addr", "replace", `${vip.address}/${vip.prefixLength}`, "dev", ifname, ...lifetimes, ...extra]);
    return outcomeOf(run, undefined);
  }

  async remove(vip: InterfaceAddress, ifname: string): Promise<Outcome<SetupFailure>> {
    const run = await this.ip(["addr", "del", `${vip.address}/${vip.prefixLength}`, "dev", ifname]);
    return outcomeOf(run, /Cannot assign requested address|address not found/i);
  }

  async list(ifname: string): Promise<OutcomeWithValue<readonly InterfaceAddress[], SetupFailure>> {
    const run = await this.ip(["-j", "addr", "show", "dev", ifname]);
    const outcome = outcomeOf(run, undefined);
    if (!outcome.ok) return outcome;
    const parsed = ipAddrJson.safeParse(parseJson(run.stdout));
    if (!parsed.success) return { ok: false, code: "failed", detail: `unexpected ip -j output: ${parsed.error.message}` };
    const value = parsed.data.flatMap((link) =>
      link.addr_info.flatMap((info): InterfaceAddress[] => {
        if (info.family === "inet") return [{ family: "ipv4", address: info.local, prefixLength: info.prefixlen }];
        if (info.family === "inet6") return [{ family: "ipv6", address: info.local, prefixLength: info.prefixlen }];
        return [];
      }),
    );
    return { ok: true, value };
  }

  stop(): void {}

  private ip(args: readonly string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(this.ipBinary, args, { env: { LC_ALL: "C", PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } }, (error, stdout, stderr) => {
        const exitCode = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ exitCode, stdout, stderr: stderr || (error?.message ?? "") });
      });
    });
  }
}

function outcomeOf(run: Run, alreadyDone: RegExp | undefined): Outcome<SetupFailure> {
  if (run.exitCode === 0 || alreadyDone?.test(run.stderr) === true) return { ok: true };
  const detail = run.stderr.trim();
  if (/Operation not permitted/.test(detail)) return { ok: false, code: "permission-denied", detail };
  if (/Cannot find device|does not exist/.test(detail)) return { ok: false, code: "no-such-interface", detail };
  return { ok: false, code: "failed", detail };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
