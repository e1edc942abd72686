import { aRouterConfig } from "../fixtures/router-config.js";
import { describe, expect, it } from "vitest";
import type { BackupState, MasterState } from "../../src/vrrp/machine.js";
import { step } from "../../src/vrrp/machine.js";
import { emptyPeerBook } from "../../src/vrrp/handover.js";
import { centiseconds, milliseconds as ms, seconds } from "../../src/vrrp/units.js";

const vip = { address: "2001:db8::150", prefixLength: 64 };
const config = aRouterConfig({ family: "ipv6", primaryAddress: "fe80::11", addresses: [vip, { address: "2001:db8::151", prefixLength: 64 }] });
const master: MasterState = { kind: "Master", config, isHealthy: true, isLinkUp: true, peers: emptyPeerBook, adverTimer: ms(11_000), garpRefreshTimer: undefined, assertedAt: undefined,
  lease: { grantedAt: ms(10_000), duration: seconds(5) } };

describe("a VIP lost behind the router's back (extension, not in RFC 5798)", () => {
  it("RFC 5798 §6.4.1/§6.4.3: a Master puts a lost VIP back and announces it as on becoming Master, whatever its spelling", () => {
    const result = step(master, { kind: "vip-lost", now: ms(10_500), address: "2001:0db8:0:0::150" });
    expect(result.state).toBe(master);
    expect(result.actions).toEqual([
      { kind: "add-vip", addresses: [vip], lease: seconds(5) },
      { kind: "announce-vip", addresses: [vip], repeat: config.garp.repeat },
    ]);
  });

  it("an address that is not one of its VIPs, or a router that is not Master, changes nothing", () => {
    expect(step(master, { kind: "vip-lost", now: ms(10_500), address: "2001:db8::99" }).actions).toEqual([]);
    const backup: BackupState = {
      kind: "Backup", config, isHealthy: true, isLinkUp: true, peers: emptyPeerBook, masterAdverInterval: centiseconds(100), masterDownTimer: ms(13_609),
      hold: undefined, preemptAllowedAt: undefined, takeoverReason: "master-down-timer-expired", candidacyTimer: undefined, nomination: undefined, leavingMaster: undefined, candidaciesSinceStart: undefined,
    };
    expect(step(backup, { kind: "vip-lost", now: ms(10_500), address: vip.address })).toEqual({ state: backup, actions: [] });
  });
});
