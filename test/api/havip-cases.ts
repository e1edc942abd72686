// Accept/reject tables for HighAvailabilityVIP specs. The unit tests run them through zod; they are plain data so a
// test against a real API server can run the same table through the CRD's schema and CEL rules. On kube-apiserver
// v1.37.2 (server dry-run, 2026-11-23) every valid case was accepted and every invalid one rejected at `serverPath`
// (or `path`).
import type { HaVipSpecInput } from "../../src/api/v1alpha1/index.js";

export interface ValidSpecCase {
  readonly name: string;
  readonly spec: HaVipSpecInput;
}

export interface InvalidSpecCase {
  readonly name: string;
  /** Deliberately loose: invalid specs do not fit the input type. */
  readonly spec: Record<string, unknown>;
  /** Where the issue must point, as "spec.…". */
  readonly path: string;
  /** A word or phrase of the fix that the message must contain. */
  readonly fix: string;
  /** Where the API server reports it, when that differs from `path` (CEL rules on a list report the list). */
  readonly serverPath?: string;
}

const v4 = ["10.77.0.200/24"];

export const validSpecCases: readonly ValidSpecCase[] = [
  { name: "one IPv4 address, everything else defaulted", spec: { addresses: v4 } },
  { name: "IPv4 address without prefix", spec: { addresses: ["10.77.0.200"] } },
  { name: "several IPv6 addresses with and without prefix", spec: { addresses: ["2001:db8::10/64", "2001:db8::11", "fe80::10/64"] } },
  { name: "sixteen addresses", spec: { addresses: Array.from({ length: 16 }, (_, i) => `10.77.0.${i + 1}`) } },
  { name: "VRID at both ends", spec: { addresses: v4, virtualRouterID: 255 } },
  { name: "VRRPv3 shortest interval", spec: { addresses: v4, advertisementInterval: "10ms" } },
  { name: "VRRPv3 longest interval in seconds", spec: { addresses: v4, advertisementInterval: "40.95s" } },
  { name: "VRRPv3 longest interval in milliseconds", spec: { addresses: v4, advertisementInterval: "40950ms" } },
  { name: "VRRPv3 fractional seconds", spec: { addresses: v4, advertisementInterval: "1.5s" } },
  {
    name: "VRRPv2 with whole seconds and a password",
    spec: {
      addresses: v4,
      vrrpVersion: 2,
      advertisementInterval: "255s",
      authentication: { passwordSecretRef: { name: "vrrp-auth", key: "password" } },
    },
  },
  { name: "VRRPv2 interval in minutes", spec: { addresses: v4, vrrpVersion: 2, advertisementInterval: "2m" } },
  { name: "delayed preemption", spec: { addresses: v4, preemption: { mode: "Delayed", delay: "30s" } } },
  { name: "no preemption", spec: { addresses: v4, preemption: { mode: "Never" } } },
  { name: "multicast without peers", spec: { addresses: v4, transport: { mode: "Multicast" } } },
  { name: "unicast peers of the same family", spec: { addresses: ["2001:db8::10"], transport: { peers: ["2001:db8::1", "fe80::2"] } } },
  {
    name: "priorities at both ends and the strongest weight (valid, though WeightIneffective warns)",
    spec: {
      addresses: v4,
      nodes: { priorities: [{ node: "edge-1", priority: 254 }, { node: "edge-2", priority: 1 }] },
      healthCheck: { weight: -253 },
    },
  },
  {
    name: "selector with every operator, tolerations passed through",
    spec: {
      addresses: v4,
      nodes: {
        selector: {
          matchLabels: { "ha-nginx.io/edge": "true" },
          matchExpressions: [
            { key: "zone", operator: "In", values: ["a", "b"] },
            { key: "spare", operator: "DoesNotExist" },
          ],
        },
        tolerations: [{ key: "edge", operator: "Exists", effect: "NoSchedule", tolerationSeconds: 30 }],
      },
    },
  },
  {
    name: "full health check",
    spec: {
      addresses: v4,
      interface: "eth0.100",
      healthCheck: {
        nginxPodSelector: { matchLabels: { app: "nginx" } },
        probe: { httpGet: { path: "/healthz", port: 8080, scheme: "HTTPS" }, period: "1s", timeout: "1s" },
        weight: -60,
      },
    },
  },
  { name: "periodic GARP refresh", spec: { addresses: v4, garp: { repeat: 1, refresh: "1h" } } },
];

const v3Interval = (advertisementInterval: string) => ({ addresses: v4, advertisementInterval });
const v2Interval = (advertisementInterval: string) => ({ addresses: v4, vrrpVersion: 2, advertisementInterval });

export const invalidSpecCases: readonly InvalidSpecCase[] = [
  { name: "no addresses field", spec: {}, path: "spec.addresses", fix: "add it" },
  { name: "empty address list", spec: { addresses: [] }, path: "spec.addresses", fix: "add one" },
  {
    name: "seventeen addresses",
    spec: { addresses: Array.from({ length: 17 }, (_, i) => `10.77.0.${i + 1}`) },
    path: "spec.addresses",
    fix: "split",
  },
  { name: "IPv4 octet over 255", spec: { addresses: ["10.77.0.300"] }, path: "spec.addresses[0]", fix: "write e.g." },
  { name: "host name instead of address", spec: { addresses: ["vip.example.com"] }, path: "spec.addresses[0]", fix: "write e.g." },
  { name: "IPv4 prefix over 32", spec: { addresses: ["10.77.0.200/33"] }, path: "spec.addresses[0]", fix: "/0../32" },
  { name: "IPv6 prefix over 128", spec: { addresses: ["2001:db8::1/129"] }, path: "spec.addresses[0]", fix: "/0../128" },
  { name: "IPv6 zone", spec: { addresses: ["fe80::1%eth0"] }, path: "spec.addresses[0]", fix: "write e.g." },
  { name: "IPv4-mapped IPv6", spec: { addresses: ["::ffff:10.77.0.200"] }, path: "spec.addresses[0]", fix: "write e.g." },
  { name: "mixed families", spec: { addresses: ["10.77.0.200", "2001:db8::1"] }, path: "spec.addresses", fix: "one resource per family" },
  {
    name: "same address twice with different prefixes",
    spec: { addresses: ["10.77.0.200/24", "10.77.0.200"] },
    path: "spec.addresses[1]",
    fix: "remove the duplicate",
    serverPath: "spec.addresses",
  },
  {
    name: "same IPv6 address in two spellings",
    spec: { addresses: ["2001:db8::1", "2001:db8:0::1/64"] },
    path: "spec.addresses[1]",
    fix: "remove the duplicate",
    serverPath: "spec.addresses",
  },
  { name: "VRID 0", spec: { addresses: v4, virtualRouterID: 0 }, path: "spec.virtualRouterID", fix: "omit it" },
  { name: "VRID 256", spec: { addresses: v4, virtualRouterID: 256 }, path: "spec.virtualRouterID", fix: "1..255" },
  { name: "VRID not whole", spec: { addresses: v4, virtualRouterID: 5.5 }, path: "spec.virtualRouterID", fix: "1..255" },
  { name: "VRRP version 4", spec: { addresses: v4, vrrpVersion: 4 }, path: "spec.vrrpVersion", fix: "use 3" },
  { name: "VRRPv2 with IPv6", spec: { addresses: ["2001:db8::1"], vrrpVersion: 2 }, path: "spec.vrrpVersion", fix: "vrrpVersion: 3" },
  { name: "VRRPv2 sub-second interval", spec: v2Interval("150ms"), path: "spec.advertisementInterval", fix: "vrrpVersion: 3" },
  { name: "VRRPv2 fractional seconds", spec: v2Interval("1.5s"), path: "spec.advertisementInterval", fix: "1s..255s" },
  { name: "VRRPv2 interval over 255 s", spec: v2Interval("256s"), path: "spec.advertisementInterval", fix: "1s..255s" },
  { name: "VRRPv2 zero interval", spec: v2Interval("0s"), path: "spec.advertisementInterval", fix: "1s..255s" },
  { name: "VRRPv3 interval not in 10 ms steps", spec: v3Interval("15ms"), path: "spec.advertisementInterval", fix: "e.g. 10ms" },
  { name: "VRRPv3 interval over 40.95 s", spec: v3Interval("41s"), path: "spec.advertisementInterval", fix: "10ms..40.95s" },
  { name: "VRRPv3 interval under 10 ms", spec: v3Interval("0ms"), path: "spec.advertisementInterval", fix: "10ms..40.95s" },
  { name: "duration with a space", spec: v3Interval("1 s"), path: "spec.advertisementInterval", fix: "one unit" },
  { name: "compound duration", spec: v3Interval("1m30s"), path: "spec.advertisementInterval", fix: "one unit" },
  { name: "sub-millisecond duration", spec: v3Interval("10.5ms"), path: "spec.advertisementInterval", fix: "whole milliseconds" },
  { name: "duration as a number", spec: { addresses: v4, advertisementInterval: 1 }, path: "spec.advertisementInterval", fix: "write a string" },
  {
    name: "priority 255",
    spec: { addresses: v4, nodes: { priorities: [{ node: "edge-1", priority: 255 }] } },
    path: "spec.nodes.priorities[0].priority",
    fix: "1..254",
  },
  {
    name: "priority 0",
    spec: { addresses: v4, nodes: { priorities: [{ node: "edge-1", priority: 0 }] } },
    path: "spec.nodes.priorities[0].priority",
    fix: "1..254",
  },
  {
    name: "node listed twice",
    spec: { addresses: v4, nodes: { priorities: [{ node: "edge-1", priority: 150 }, { node: "edge-1", priority: 120 }] } },
    path: "spec.nodes.priorities[1].node",
    fix: "one entry per node",
    serverPath: "spec.nodes.priorities[1]",
  },
  {
    name: "authentication with VRRPv3",
    spec: { addresses: v4, authentication: { passwordSecretRef: { name: "vrrp-auth", key: "password" } } },
    path: "spec.authentication",
    fix: "vrrpVersion: 2",
  },
  {
    name: "authentication without a key",
    spec: { addresses: v4, vrrpVersion: 2, authentication: { passwordSecretRef: { name: "vrrp-auth" } } },
    path: "spec.authentication.passwordSecretRef.key",
    fix: "add it",
  },
  {
    name: "delay without mode Delayed",
    spec: { addresses: v4, preemption: { delay: "30s" } },
    path: "spec.preemption.delay",
    fix: "mode: Delayed",
  },
  {
    name: "mode Delayed without delay",
    spec: { addresses: v4, preemption: { mode: "Delayed" } },
    path: "spec.preemption.delay",
    fix: "set spec.preemption.delay",
  },
  {
    name: "delay over 1000 s",
    spec: { addresses: v4, preemption: { mode: "Delayed", delay: "1001s" } },
    path: "spec.preemption.delay",
    fix: "1ms..1000s",
  },
  { name: "unknown preemption mode", spec: { addresses: v4, preemption: { mode: "Sometimes" } }, path: "spec.preemption.mode", fix: "Always" },
  {
    name: "peers with multicast",
    spec: { addresses: v4, transport: { mode: "Multicast", peers: ["10.77.0.11"] } },
    path: "spec.transport.peers",
    fix: "mode: Unicast",
  },
  {
    name: "IPv6 peer for IPv4 addresses",
    spec: { addresses: v4, transport: { peers: ["2001:db8::1"] } },
    path: "spec.transport.peers[0]",
    fix: "IPv4 peers",
    serverPath: "spec.transport.peers",
  },
  {
    name: "peer with a prefix",
    spec: { addresses: v4, transport: { peers: ["10.77.0.11/24"] } },
    path: "spec.transport.peers[0]",
    fix: "plain addresses",
  },
  { name: "positive weight", spec: { addresses: v4, healthCheck: { weight: 10 } }, path: "spec.healthCheck.weight", fix: "use 0" },
  { name: "weight below -253", spec: { addresses: v4, healthCheck: { weight: -254 } }, path: "spec.healthCheck.weight", fix: "-253..0" },
  {
    name: "probe timeout longer than period",
    spec: { addresses: v4, healthCheck: { probe: { httpGet: { path: "/healthz", port: 80 }, period: "100ms", timeout: "200ms" } } },
    path: "spec.healthCheck.probe.timeout",
    fix: "lower timeout",
  },
  {
    name: "probe path without slash",
    spec: { addresses: v4, healthCheck: { probe: { httpGet: { path: "healthz", port: 80 } } } },
    path: "spec.healthCheck.probe.httpGet.path",
    fix: "/healthz",
  },
  {
    name: "probe port out of range",
    spec: { addresses: v4, healthCheck: { probe: { httpGet: { path: "/", port: 70000 } } } },
    path: "spec.healthCheck.probe.httpGet.port",
    fix: "≤ 65535",
  },
  {
    name: "In without values",
    spec: { addresses: v4, nodes: { selector: { matchExpressions: [{ key: "zone", operator: "In" }] } } },
    path: "spec.nodes.selector.matchExpressions[0].values",
    fix: "add at least one",
  },
  { name: "interface name with a slash", spec: { addresses: v4, interface: "eth0/1" }, path: "spec.interface", fix: "e.g. eth0" },
  { name: "interface name ..", spec: { addresses: v4, interface: ".." }, path: "spec.interface", fix: "e.g. eth0" },
  {
    name: "empty nginxPodSelector, which would match the agent's own pod",
    spec: { addresses: v4, healthCheck: { nginxPodSelector: {} } },
    path: "spec.healthCheck.nginxPodSelector",
    fix: "add matchLabels",
  },
  {
    name: "nginxPodSelector with empty matchLabels",
    spec: { addresses: v4, healthCheck: { nginxPodSelector: { matchLabels: {} } } },
    path: "spec.healthCheck.nginxPodSelector",
    fix: "add matchLabels",
  },
  { name: "interface name too long", spec: { addresses: v4, interface: "a-very-long-interface" }, path: "spec.interface", fix: "e.g. eth0" },
  { name: "GARP refresh under a second", spec: { addresses: v4, garp: { refresh: "500ms" } }, path: "spec.garp.refresh", fix: "0s (off)" },
  { name: "GARP repeat 0", spec: { addresses: v4, garp: { repeat: 0 } }, path: "spec.garp.repeat", fix: "≥ 1" },
  {
    name: "misspelt field",
    spec: { addresses: v4, advertisementIntreval: "1s" },
    path: "spec.advertisementIntreval",
    fix: "spelling",
  },
];
