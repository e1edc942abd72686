// The HighAvailabilityVIP resource, v1alpha1: the one source of its TypeScript types, its validation and (through
// scripts/generate-crd.ts) the CRD's OpenAPI schema. Every cross-field rule exists twice, side by side: a zod refinement,
// whose message carries the offending value, and a CEL rule the API server enforces; keep the pairs in step (test/api
// checks that both reject the same specs). Where the shape departs from its design: docs/design-notes/api-v1alpha1.md.
// Over 500 lines on purpose: the spec's fields, their refinements and their CEL twins are one schema, read top to bottom.
import { z } from "zod";
import { DURATION_MAX_LENGTH, DURATION_PATTERN, formatDuration, isDuration, parseDuration } from "./duration.js";
import { ADDRESS_MAX_LENGTH, familyName, hostPrefixLength, parseIpAddress, parseVipAddress, type AddressFamily } from "./ip.js";

export const HAVIP_GROUP = "ha-nginx.io";
export const HAVIP_VERSION = "v1alpha1";
export const HAVIP_API_VERSION = `${HAVIP_GROUP}/${HAVIP_VERSION}`;
export const HAVIP_KIND = "HighAvailabilityVIP";
export const HAVIP_PLURAL = "highavailabilityvips";
export const HAVIP_SINGULAR = "highavailabilityvip";
export const HAVIP_SHORT_NAME = "havip";

/** Priority of a node that `spec.nodes.priorities` does not list (RFC 5798 §5.2.4: the default for backups). */
export const DEFAULT_PRIORITY = 100;
/** Most virtual addresses per resource; RFC 5798 §5.2.5 allows 255, and keepalived warns above 20. */
export const MAX_ADDRESSES = 16;
/**
 * Most nodes listed in `spec.nodes.priorities` and in each status list (`nodes`, `peers`, `cordonedNodes`), hence most
 * nodes a resource may select: the controller refuses a selector matching more (Ready=False, TooManyNodes).
 */
export const MAX_NODES = 128;
/** Most entries in `spec.transport.peers`. */
export const MAX_PEERS = 64;

/** A CEL rule for the CRD, evaluated by the API server on the schema node that carries it. */
export interface CelRule {
  readonly rule: string;
  readonly message: string;
  /** Where the API server reports the failure, relative to the node that carries the rule, e.g. ".delay". */
  readonly fieldPath?: string;
}

export function cel(...rules: CelRule[]): { "x-kubernetes-validations": CelRule[] } {
  return { "x-kubernetes-validations": rules };
}

export const quote = (value: unknown): string => JSON.stringify(value) ?? String(value);

// --- durations --------------------------------------------------------------------------------------------------

const durationText = z
  .string()
  .max(DURATION_MAX_LENGTH, { error: (issue) => `${quote(issue.input)} is too long for a duration; write e.g. 1s` })
  .regex(DURATION_PATTERN, {
    error: (issue) =>
      `${quote(issue.input)} is not a duration; write a number and one unit, e.g. 100ms, 1s, 1.5s, 2m (whole milliseconds)`,
  });

interface DurationBounds {
  readonly minMilliseconds: number;
  readonly maxMilliseconds: number;
  /** Also accept zero, meaning "off". */
  readonly isZeroAllowed?: boolean;
}

function boundedDuration(bounds: DurationBounds) {
  const min = formatDuration(bounds.minMilliseconds);
  const max = formatDuration(bounds.maxMilliseconds);
  const range = `${bounds.isZeroAllowed === true ? "0s (off) or " : ""}${min}..${max}`;
  const inRange = `duration(self) >= duration('${min}') && duration(self) <= duration('${max}')`;
  return durationText
    .refine(
      (text) => {
        if (!isDuration(text)) return true;
        const ms = parseDuration(text);
        return (bounds.isZeroAllowed === true && ms === 0) || (ms >= bounds.minMilliseconds && ms <= bounds.maxMilliseconds);
      },
      { error: (issue) => `${quote(issue.input)} is out of range; use ${range}` },
    )
    .meta(
      cel({
        rule: bounds.isZeroAllowed === true ? `duration(self) == duration('0s') || (${inRange})` : inRange,
        message: `must be ${range}`,
      }),
    );
}

// --- shared pieces ----------------------------------------------------------------------------------------------

/** Explains what is wrong with an address text and how to write it, or returns undefined when it is fine. */
export function describeAddressProblem(text: string, isPrefixAllowed: boolean): string | undefined {
  const slash = text.indexOf("/");
  if (slash !== -1 && !isPrefixAllowed) {
    return `${quote(text)} has a prefix; peers are plain addresses, write e.g. 192.0.2.11`;
  }
  const ip = parseIpAddress(slash === -1 ? text : text.slice(0, slash));
  if (ip === undefined) {
    return `${quote(text)} is not an IP address; write e.g. ${isPrefixAllowed ? "192.0.2.10/24 or 2001:db8::10/64" : "192.0.2.11 or 2001:db8::11"}`;
  }
  if (parseVipAddress(text) === undefined) {
    return `${quote(text)} has an invalid prefix length; use /0../${hostPrefixLength(ip.family)} for ${familyName(ip.family)}, or no prefix`;
  }
  return undefined;
}

const vipAddress = z
  .string()
  .max(ADDRESS_MAX_LENGTH, { error: (issue) => `${quote(issue.input)} is too long for an address; write e.g. 192.0.2.10/24` })
  .superRefine((text, ctx) => {
    const problem = describeAddressProblem(text, true);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem, input: text });
  })
  .meta(
    cel({
      rule: "self.contains('/') ? isCIDR(self) : isIP(self)",
      message: "must be an IP address with an optional prefix, e.g. 192.0.2.10/24 or 2001:db8::10/64",
    }),
  );

const peerAddress = z
  .string()
  .max(ADDRESS_MAX_LENGTH, { error: (issue) => `${quote(issue.input)} is too long for an address; write e.g. 192.0.2.11` })
  .superRefine((text, ctx) => {
    const problem = describeAddressProblem(text, false);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem, input: text });
  })
  .meta(cel({ rule: "isIP(self)", message: "must be an IP address without prefix, e.g. 192.0.2.11" }));

const labelSelectorRequirement = z
  .strictObject({
    key: z.string().min(1).max(317),
    operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
    values: z.array(z.string().max(63)).max(64).optional(),
  })
  .superRefine((requirement, ctx) => {
    const hasValues = (requirement.values?.length ?? 0) > 0;
    const needsValues = requirement.operator === "In" || requirement.operator === "NotIn";
    if (needsValues && !hasValues) {
      ctx.addIssue({ code: "custom", path: ["values"], message: `operator ${requirement.operator} needs values; add at least one` });
    }
    if (!needsValues && hasValues) {
      ctx.addIssue({ code: "custom", path: ["values"], message: `operator ${requirement.operator} takes no values; remove them` });
    }
  })
  .meta(
    cel({
      rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
      message: "In and NotIn need values (add some); Exists and DoesNotExist take none (remove them)",
      fieldPath: ".values",
    }),
  );

/** A Kubernetes label selector (metav1.LabelSelector); an empty selector matches everything. */
export const labelSelector = z.strictObject({
  matchLabels: z.record(z.string().min(1).max(317), z.string().max(63)).optional(),
  matchExpressions: z.array(labelSelectorRequirement).max(32).optional(),
});

// Range rules also carry a CEL rule: the API server's own minimum/maximum message states the bound but not why or
// what to write, and a rejected `kubectl apply` is where most people first meet these limits.
const priority = z
  .int({ error: () => "expected a whole number; use 1..254" })
  .min(1, { error: (issue) => `${quote(issue.input)} is out of range; use 1..254 (0 is reserved for a master giving up, RFC 5798 §5.2.4)` })
  .max(254, { error: (issue) => `${quote(issue.input)} is out of range; use 1..254 (255 is reserved for the address owner, RFC 5798 §5.2.4)` })
  .meta(
    cel({
      rule: "self >= 1 && self <= 254",
      message: "must be 1..254: 0 is reserved for a master giving up and 255 for the address owner (RFC 5798 §5.2.4); use e.g. 100",
    }),
  );

// --- spec -------------------------------------------------------------------------------------------------------

const preemptionSchema = z
  .strictObject({
    // RFC 5798 §6.1 Preempt_Mode; Delayed is keepalived's preempt_delay.
    mode: z.enum(["Always", "Never", "Delayed"]).default("Always").describe(
      "Always: a higher-priority node takes over at once. Never: the master keeps the VIP. Delayed: take over after delay.",
    ),
    delay: boundedDuration({ minMilliseconds: 1, maxMilliseconds: 1_000_000 }).optional().describe(
      "With mode Delayed: how long a higher-priority node waits before taking over (keepalived's preempt_delay).",
    ),
  })
  .superRefine((preemption, ctx) => {
    if (preemption.mode === "Delayed" && preemption.delay === undefined) {
      ctx.addIssue({ code: "custom", path: ["delay"], message: "mode Delayed needs a delay; set spec.preemption.delay, e.g. 30s" });
    }
    if (preemption.mode !== "Delayed" && preemption.delay !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["delay"],
        message: `delay only applies with mode Delayed; set spec.preemption.mode: Delayed, or remove delay`,
      });
    }
  })
  .meta(
    cel(
      { rule: "self.mode != 'Delayed' || has(self.delay)", message: "mode Delayed needs a delay; set spec.preemption.delay, e.g. 30s", fieldPath: ".delay" },
      { rule: "self.mode == 'Delayed' || !has(self.delay)", message: "delay only applies with mode Delayed; set spec.preemption.mode: Delayed, or remove delay", fieldPath: ".delay" },
    ),
  )
  .describe("Whether a higher-priority node takes the VIP from a lower-priority master (RFC 5798 §6.1 Preempt_Mode).");

const nodesSchema = z
  .strictObject({
    selector: labelSelector.optional().describe("Node label selector: the node's agent serves this resource only on matching nodes. Empty or absent: every node."),
    tolerations: z
      .array(z.looseObject({}).meta({ "x-kubernetes-preserve-unknown-fields": true }))
      .max(64)
      .default([])
      .describe("Tolerations (core/v1 Toleration): the resource runs only on nodes whose NoSchedule and NoExecute taints it tolerates. The one agent DaemonSet carries every resource's."),
    priorities: z
      .array(z.strictObject({ node: z.string().min(1).max(253), priority }))
      .max(MAX_NODES)
      .meta({
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["node"],
        // The list-map check alone reports a bare "Duplicate value" without saying what to do.
        ...cel({ rule: "self.all(x, self.exists_one(y, y.node == x.node))", message: "must list each node once; remove the second entry of a node" }),
      })
      .default([])
      .describe(`VRRP priority per node name (RFC 5798 §5.2.4); unlisted nodes get ${DEFAULT_PRIORITY}.`),
  })
  .superRefine((nodes, ctx) => {
    const firstIndex = new Map<string, number>();
    nodes.priorities.forEach((entry, index) => {
      const first = firstIndex.get(entry.node);
      if (first === undefined) {
        firstIndex.set(entry.node, index);
        return;
      }
      ctx.addIssue({
        code: "custom",
        path: ["priorities", index, "node"],
        message: `${quote(entry.node)} is listed twice (also at spec.nodes.priorities[${first}]); keep one entry per node`,
      });
    });
  })
  .describe("Which nodes run the agent and with which priority.");

const transportSchema = z
  .strictObject({
    mode: z.enum(["Unicast", "Multicast"]).default("Unicast").describe(
      "Unicast: advertise to the selected nodes' addresses plus peers. Multicast: to 224.0.0.18 / ff02::12 (RFC 5798 §5.1.1.2).",
    ),
    peers: z
      .array(peerAddress)
      .max(MAX_PEERS)
      .meta({ "x-kubernetes-list-type": "set" })
      .default([])
      .describe("Extra unicast peers: standalone mode, or a router outside Kubernetes."),
    successorNaming: z
      .enum(["Enabled", "Disabled"])
      .default("Enabled")
      .describe(
        "Extension, not in RFC 5798: Backups announce their candidacy and a leaving MASTER names the best one, which takes over without waiting Skew_Time. It uses IP protocol 253 (RFC 3692 experimental), and only while every router heard is ha-nginx. Disabled: RFC 5798 alone.",
      ),
  })
  .superRefine((transport, ctx) => {
    if (transport.mode === "Multicast" && transport.peers.length > 0) {
      ctx.addIssue({ code: "custom", path: ["peers"], message: "peers only apply with mode Unicast; set spec.transport.mode: Unicast, or remove peers" });
    }
  })
  .meta(
    cel({
      rule: "self.mode == 'Unicast' || size(self.peers) == 0",
      message: "peers only apply with mode Unicast; set spec.transport.mode: Unicast, or remove peers",
      fieldPath: ".peers",
    }),
  )
  .describe("Where advertisements go.");

const authenticationSchema = z.strictObject({
  passwordSecretRef: z
    .strictObject({
      name: z.string().min(1).max(253),
      key: z.string().min(1).max(253).regex(/^[-._a-zA-Z0-9]+$/, { error: (issue) => `${quote(issue.input)} is not a Secret key; use letters, digits, "-", "_" or "."` }),
    })
    .describe("Secret in the resource's namespace holding the password. Its first 8 bytes are sent (RFC 2338 §5.3.6.1): a longer one is cut, as keepalived cuts auth_pass, and the agent logs a warning. A change to the Secret reaches every agent within about 10 s, on all nodes at once."),
});

const probeSchema = z
  .strictObject({
    httpGet: z.strictObject({
      path: z.string().max(2048).regex(/^\//, { error: (issue) => `${quote(issue.input)} must start with "/"; write e.g. /healthz` }),
      port: z.int().min(1).max(65535),
      host: z.string().min(1).max(253).default("127.0.0.1"),
      scheme: z.enum(["HTTP", "HTTPS"]).optional().describe("HTTPS does not verify the certificate, as the kubelet's probes do not."),
    }),
    period: boundedDuration({ minMilliseconds: 10, maxMilliseconds: 300_000 }).default("200ms"),
    timeout: boundedDuration({ minMilliseconds: 10, maxMilliseconds: 300_000 }).default("100ms"),
    failureThreshold: z.int().min(1).max(100).default(2),
    successThreshold: z.int().min(1).max(100).default(1),
  })
  .superRefine((probe, ctx) => {
    if (isDuration(probe.timeout) && isDuration(probe.period) && parseDuration(probe.timeout) > parseDuration(probe.period)) {
      ctx.addIssue({
        code: "custom",
        path: ["timeout"],
        message: `${quote(probe.timeout)} is longer than period ${quote(probe.period)}; lower timeout or raise period`,
      });
    }
  })
  .meta(
    cel({
      rule: "duration(self.timeout) <= duration(self.period)",
      message: "timeout is longer than period; lower timeout or raise period",
      fieldPath: ".timeout",
    }),
  );

const EMPTY_POD_SELECTOR_MESSAGE =
  "is empty, so it matches every pod in the namespace, the agent's own included, and a node would always look healthy; " +
  "add matchLabels naming the nginx pods, e.g. app: nginx, or remove nginxPodSelector";

const healthCheckSchema = z.strictObject({
  nginxPodSelector: labelSelector
    .refine(
      (selector) => Object.keys(selector.matchLabels ?? {}).length > 0 || (selector.matchExpressions?.length ?? 0) > 0,
      { error: () => EMPTY_POD_SELECTOR_MESSAGE },
    )
    .meta(
      cel({
        rule: "(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",
        message: `must not be empty: an empty selector ${EMPTY_POD_SELECTOR_MESSAGE.replace(/^is empty, so it /, "")}`,
      }),
    )
    .optional()
    .describe("nginx pods in this namespace; a node is healthy only while one of its matching pods is Ready and not terminating."),
  probe: probeSchema.optional().describe("The agent's own local probe, independent of the API server."),
  weight: z
    .int({ error: () => "expected a whole number; use -253..0" })
    .min(-253, { error: (issue) => `${quote(issue.input)} is out of range; use -253..0` })
    .max(0, { error: (issue) => `${quote(issue.input)} is out of range; use 0 (unhealthy node goes FAULT) or a negative number down to -253` })
    .meta(
      cel({
        rule: "self >= -253 && self <= 0",
        message: "must be -253..0: use 0 (an unhealthy node goes FAULT) or a negative number subtracted from its priority, e.g. -60",
      }),
    )
    .default(0)
    .describe("0: an unhealthy node goes FAULT and releases the VIP. Negative: subtracted from its priority (keepalived's weight)."),
}).describe("When a node counts as healthy enough to hold the VIP. Absent: every node counts as healthy.");

const garpSchema = z.strictObject({
  repeat: z.int().min(1).max(100).default(5).describe("Gratuitous ARPs / unsolicited NAs sent on becoming MASTER."),
  refresh: boundedDuration({ minMilliseconds: 1_000, maxMilliseconds: 3_600_000, isZeroAllowed: true })
    .default("0s")
    .describe("Re-announce period while MASTER; 0s is off."),
}).describe("Gratuitous ARP (IPv4) and unsolicited Neighbor Advertisement (IPv6) announcements of the VIP.");

/** A Linux interface name: IFNAMSIZ - 1 characters, none of them a slash, colon, percent sign or white space. */
const INTERFACE_NAME = /^[^\s/:%]{1,15}$/;

export const interfaceName = z
  .string()
  .max(15, { error: (issue) => `${quote(issue.input)} is longer than 15 characters, the Linux limit; write e.g. eth0, or omit it` })
  // A refinement rather than a regex: the API server would report a regex as a bare pattern, the CEL rule says
  // what a name may hold. "." and ".." are refused by the kernel's dev_valid_name().
  .refine((name) => INTERFACE_NAME.test(name) && name !== "." && name !== "..", {
    error: (issue) => `${quote(issue.input)} is not a Linux interface name (1..15 characters, no "/", ":" or spaces); write e.g. eth0, or omit it`,
  })
  .meta(
    cel({
      rule: `self.matches('${INTERFACE_NAME.source.replaceAll("\\", "\\\\")}') && self != '.' && self != '..'`,
      message: 'must be a Linux interface name: 1..15 characters, not "." or "..", no "/", ":", "%" or spaces; write e.g. eth0, or omit it',
    }),
  );

const V2_MIN_INTERVAL_MS = 1_000; // RFC 3768 §5.3.7: Adver Int is whole seconds, 8 bits
const V2_MAX_INTERVAL_MS = 255_000;
const V3_MIN_INTERVAL_MS = 10; // RFC 5798 §5.2.7: Max Adver Int is 12 bits of centiseconds
const V3_MAX_INTERVAL_MS = 40_950;

/**
 * The interval a spec without one gets. Under VRRPv3 a Backup notices a silent Master after 3 × 250 ms + Skew_Time,
 * within 1 s at any priority; VRRPv2 counts whole seconds.
 */
const DEFAULT_ADVERTISEMENT_INTERVAL = { 2: "1s", 3: "250ms" } as const;

export function advertisementIntervalOf(spec: { readonly vrrpVersion: 2 | 3; readonly advertisementInterval?: string | undefined }): string {
  return spec.advertisementInterval ?? DEFAULT_ADVERTISEMENT_INTERVAL[spec.vrrpVersion];
}

/** Why `advertisementInterval` does not fit `vrrpVersion`, with the fix; undefined when it fits. */
function describeIntervalProblem(version: 2 | 3, text: string): string | undefined {
  if (!isDuration(text)) return undefined;
  const ms = parseDuration(text);
  if (version === 2) {
    if (ms % 1_000 !== 0) {
      return `${quote(text)} is not a whole number of seconds; VRRPv2 advertises in seconds (use 1s..255s, or vrrpVersion: 3)`;
    }
    if (ms < V2_MIN_INTERVAL_MS || ms > V2_MAX_INTERVAL_MS) return `${quote(text)} is out of range for VRRPv2; use 1s..255s`;
    return undefined;
  }
  if (ms % 10 !== 0) {
    return `${quote(text)} is not a multiple of 10ms; VRRPv3 advertises in centiseconds (RFC 5798 §5.2.7), use e.g. 10ms, 50ms, 1s`;
  }
  if (ms > V3_MAX_INTERVAL_MS) return `${quote(text)} is over 40.95s, the longest VRRPv3 interval (RFC 5798 §5.2.7); use 10ms..40.95s`;
  if (ms < V3_MIN_INTERVAL_MS) return `${quote(text)} is under 10ms, the shortest VRRPv3 interval; use 10ms..40.95s`;
  return undefined;
}

export const haVipSpecSchema = z
  .strictObject({
    addresses: z
      .array(vipAddress)
      .min(1, { error: () => "needs at least one address; add one, e.g. 192.0.2.10/24" })
      .max(MAX_ADDRESSES, { error: () => `holds more than ${MAX_ADDRESSES} addresses; split them across several resources` })
      .meta({
        "x-kubernetes-list-type": "set",
        ...cel({
          // Catches what the list-set cannot: the same address written twice with different prefixes or spellings.
          // Unparsable entries are skipped here; the per-item rule reports them.
          rule:
            "self.map(a, a.split('/')[0]).filter(a, isIP(a)).map(a, ip(a))" +
            ".all(x, self.map(a, a.split('/')[0]).filter(a, isIP(a)).map(a, ip(a)).exists_one(y, x == y))",
          message: "holds the same address twice; remove the duplicate",
        }),
      })
      .describe("Virtual addresses, all IPv4 or all IPv6, each with an optional prefix (default /32 or /128)."),
    interface: interfaceName
      .optional()
      .describe("Interface for the addresses and adverts; default: the interface holding the node's own address."),
    virtualRouterID: z
      .int({ error: () => "expected a whole number; use 1..255, or omit it to let the controller allocate one" })
      .min(1, { error: (issue) => `${quote(issue.input)} is out of range; use 1..255, or omit it to let the controller allocate one` })
      .max(255, { error: (issue) => `${quote(issue.input)} is out of range; use 1..255, or omit it to let the controller allocate one` })
      .meta(cel({ rule: "self >= 1 && self <= 255", message: "must be 1..255 (RFC 5798 §5.2.3); use e.g. 51, or omit it to let the controller allocate one" }))
      .optional()
      .describe(
        "VRID (RFC 5798 §5.2.3), 1..255. When omitted the controller allocates one that no other HighAvailabilityVIP of the " +
          "address family in the cluster uses (it cannot see which nodes share a LAN), counting down from 255 because " +
          "hand-built keepalived setups take the low VRIDs; so at most 255 resources per family omit it.",
      ),
    vrrpVersion: z
      .literal([2, 3], { error: (issue) => `${quote(issue.input)} is not a VRRP version; use 3 (RFC 5798) or 2 (RFC 3768)` })
      .default(3)
      .describe("3 (RFC 5798, default) or 2 (RFC 3768, IPv4 only, for old peers)."),
    advertisementInterval: durationText
      .optional()
      .describe(
        "Advertisement interval. VRRPv3: 10ms..40.95s in 10ms steps, default 250ms, so a silent Master is replaced within " +
          "1 s. VRRPv2: whole seconds 1s..255s, default 1s.",
      ),
    preemption: preemptionSchema.prefault({}),
    nodes: nodesSchema.prefault({}),
    transport: transportSchema.prefault({}),
    authentication: authenticationSchema.optional().describe("VRRPv2 simple-text password, like keepalived's auth_type PASS."),
    healthCheck: healthCheckSchema.optional(),
    garp: garpSchema.prefault({}),
  })
  .superRefine((spec, ctx) => {
    const parsed = spec.addresses.map((text) => parseVipAddress(text));
    const families = new Set(parsed.flatMap((address) => (address === undefined ? [] : [address.family])));
    if (families.size > 1) {
      ctx.addIssue({
        code: "custom",
        path: ["addresses"],
        message: "mixes IPv4 and IPv6; a virtual router carries one family (RFC 5798 §5.2.9), so create one resource per family",
      });
    }
    const firstIndex = new Map<string, number>();
    parsed.forEach((address, index) => {
      if (address === undefined) return;
      const first = firstIndex.get(address.address);
      if (first === undefined) {
        firstIndex.set(address.address, index);
        return;
      }
      ctx.addIssue({
        code: "custom",
        path: ["addresses", index],
        message: `${quote(spec.addresses[index])} repeats the address of spec.addresses[${first}]; remove the duplicate`,
      });
    });
    if (spec.vrrpVersion === 2 && families.has("ipv6")) {
      ctx.addIssue({ code: "custom", path: ["vrrpVersion"], message: "VRRPv2 carries only IPv4 (RFC 3768); use vrrpVersion: 3 for IPv6 addresses" });
    }
    const intervalProblem = describeIntervalProblem(spec.vrrpVersion, advertisementIntervalOf(spec));
    if (intervalProblem !== undefined) ctx.addIssue({ code: "custom", path: ["advertisementInterval"], message: intervalProblem });
    if (spec.authentication !== undefined && spec.vrrpVersion !== 2) {
      ctx.addIssue({
        code: "custom",
        path: ["authentication"],
        message: "VRRPv3 has no authentication (RFC 5798 §9); remove authentication, or set vrrpVersion: 2",
      });
    }
    const [family] = families;
    if (family !== undefined && families.size === 1) {
      spec.transport.peers.forEach((peer, index) => {
        const peerFamily = parseIpAddress(peer)?.family;
        if (peerFamily !== undefined && peerFamily !== family) {
          ctx.addIssue({
            code: "custom",
            path: ["transport", "peers", index],
            message: `${quote(peer)} is ${familyName(peerFamily)} but spec.addresses are ${familyName(family)}; use ${familyName(family)} peers`,
          });
        }
      });
    }
  })
  .meta(
    cel(
      {
        rule: "self.addresses.all(a, a.contains(':')) || self.addresses.all(a, !a.contains(':'))",
        message: "mixes IPv4 and IPv6; a virtual router carries one family, so create one HighAvailabilityVIP per family",
        fieldPath: ".addresses",
      },
      {
        rule: "self.vrrpVersion == 3 || self.addresses.all(a, !a.contains(':'))",
        message: "VRRPv2 carries only IPv4 (RFC 3768); use vrrpVersion: 3 for IPv6 addresses",
        fieldPath: ".vrrpVersion",
      },
      {
        rule:
          "self.vrrpVersion == 3 || !has(self.advertisementInterval) || (duration(self.advertisementInterval).getMilliseconds() % 1000 == 0 && " +
          "duration(self.advertisementInterval) >= duration('1s') && duration(self.advertisementInterval) <= duration('255s'))",
        message: "must be whole seconds 1s..255s with vrrpVersion 2 (VRRPv2 advertises in seconds); use e.g. 1s, or vrrpVersion: 3",
        fieldPath: ".advertisementInterval",
      },
      {
        rule:
          "self.vrrpVersion == 2 || !has(self.advertisementInterval) || (duration(self.advertisementInterval).getMilliseconds() % 10 == 0 && " +
          "duration(self.advertisementInterval) >= duration('10ms') && duration(self.advertisementInterval) <= duration('40950ms'))",
        message: "must be 10ms..40.95s in 10ms steps with vrrpVersion 3 (centiseconds, RFC 5798 §5.2.7); use e.g. 1s or 100ms",
        fieldPath: ".advertisementInterval",
      },
      {
        rule: "self.vrrpVersion == 2 || !has(self.authentication)",
        message: "VRRPv3 has no authentication (RFC 5798 §9); remove authentication, or set vrrpVersion: 2",
        fieldPath: ".authentication",
      },
      {
        rule: "self.transport.peers.all(p, p.contains(':') == self.addresses[0].contains(':'))",
        message: "peers must have the family of spec.addresses; use IPv4 peers for IPv4 addresses, IPv6 for IPv6",
        fieldPath: ".transport.peers",
      },
    ),
  )
  .describe("Desired state: the virtual addresses and how the nodes elect the one that holds them.");

// --- status -----------------------------------------------------------------------------------------------------

/**
 * A node's VRRP state, written only by its own agent: INIT, BACKUP and MASTER are RFC 5798 §6.4's; FAULT is an
 * extension, not in RFC 5798 (keepalived's: health check failed, VIP released). UNKNOWN is never written now but still
 * accepted, so an entry an older controller left neither fails status writes (no validation ratcheting before
 * Kubernetes 1.30) nor hides the resource; it reads as gone.
 */
export const nodeStateSchema = z.enum(["INIT", "BACKUP", "MASTER", "FAULT", "UNKNOWN"]);

const timestamp = z.iso.datetime({ offset: true });

export const nodeStatusEntrySchema = z.object({
  node: z.string().min(1).max(253),
  state: nodeStateSchema.describe("INIT | BACKUP | MASTER (RFC 5798 §6.4) | FAULT (health check failed), as the node's agent last reported it. UNKNOWN: left by version 0.1.0, read as gone."),
  priority: z.int().min(0).max(255).optional().describe("Configured priority (RFC 5798 §5.2.4)."),
  effectivePriority: z.int().min(0).max(255).optional().describe("Priority after the health check's weight: what the node advertises."),
  healthy: z.boolean().optional(),
  reason: z.string().max(1024).optional().describe("Why the node entered its state."),
  address: z.string().max(ADDRESS_MAX_LENGTH).optional().describe("The node's own address, the source of its adverts."),
  lastTransitionTime: timestamp.optional(),
});

/** The standard metav1.Condition shape. */
export const conditionSchema = z.object({
  type: z.string().min(1).max(316).regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/),
  status: z.enum(["True", "False", "Unknown"]),
  observedGeneration: z.int().min(0).optional(),
  lastTransitionTime: timestamp,
  reason: z.string().min(1).max(1024).regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  message: z.string().max(32768),
});

/** A set of node names the controller publishes in status. */
function nodeNameSet(description: string) {
  return z.array(z.string().max(253)).max(MAX_NODES).meta({ "x-kubernetes-list-type": "set" }).optional().describe(description);
}

export const haVipStatusSchema = z
  .object({
    observedGeneration: z.int().min(0).optional(),
    virtualRouterID: z.int().min(1).max(255).optional(),
    master: z.string().max(253).optional().describe('Node that holds the VIP; "" when no node is MASTER.'),
    // Written by the controller, read by every agent: a status field (not a ConfigMap or a DaemonSet argument) so
    // that a node joining or leaving changes the agents' unicast peers without restarting them.
    peers: z
      .array(z.string().max(ADDRESS_MAX_LENGTH))
      .max(MAX_NODES)
      .meta({ "x-kubernetes-list-type": "set" })
      .optional()
      .describe("Unicast peers the controller publishes: the InternalIP, of the spec's family, of every selected node, Ready or not."),
    cordonedNodes: nodeNameSet(
      "Selected nodes marked unschedulable (kubectl cordon or drain), published by the controller: their agents count as unhealthy, so the VIP leaves them as on a planned move, until they are uncordoned. Empty when every selected node is cordoned.",
    ),
    healthyNodes: z
      .int()
      .min(0)
      .max(MAX_NODES)
      .optional()
      .describe("Selected nodes whose agent reports BACKUP or MASTER and a healthy nginx: how many can hold the VIP now (kubectl get havip -o wide)."),
    passwordSecretVersion: z
      .string()
      .max(64)
      .optional()
      .describe(
        "The resourceVersion of the VRRPv2 password Secret (spec.authentication.passwordSecretRef) as the controller last saw it, checked every 10 s without reading the password; when it changes every agent reads the password again at once, so a rotated Secret takes effect on all nodes together.",
      ),
    goneNodes: nodeNameSet(
      "Selected nodes whose agent has been silent for 30 s (its pod gone, or its node NotReady), published by the controller: their nodes entries are the agent's last word, and they count as neither MASTER nor BACKUP.",
    ),
    nodes: z
      .array(nodeStatusEntrySchema)
      .max(MAX_NODES)
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["node"] })
      .optional()
      .describe(
        "One entry per node, written only by that node's agent (server-side apply, field manager ha-nginx-agent-<node>). The controller removes the entry of a node that left the selection 30 s later.",
      ),
    conditions: z
      .array(conditionSchema)
      .max(32)
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] })
      .optional(),
  })
  .describe(
    "Observed state. Each field has one writer: the agents their own nodes entry; the controller everything else (server-side apply, field manager ha-nginx-controller).",
  );

// --- the resource -----------------------------------------------------------------------------------------------

export const highAvailabilityVipSchema = z.object({
  apiVersion: z.literal(HAVIP_API_VERSION, {
    error: (issue) => `${quote(issue.input)} is not ${HAVIP_API_VERSION}; set apiVersion: ${HAVIP_API_VERSION}`,
  }),
  kind: z.literal(HAVIP_KIND, { error: (issue) => `${quote(issue.input)} is not ${HAVIP_KIND}; set kind: ${HAVIP_KIND}` }),
  metadata: z.looseObject({
    name: z.string().min(1).max(253),
    namespace: z.string().max(63).optional(),
    generation: z.int().optional(),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: haVipSpecSchema,
  status: haVipStatusSchema.optional(),
});

/** A validated resource with every default filled in. */
export type HighAvailabilityVIP = z.output<typeof highAvailabilityVipSchema>;
/** A resource as written by hand or read from YAML, before defaults. */
export type HighAvailabilityVIPInput = z.input<typeof highAvailabilityVipSchema>;
export type HaVipSpec = z.output<typeof haVipSpecSchema>;
export type HaVipSpecInput = z.input<typeof haVipSpecSchema>;
export type HaVipStatus = z.output<typeof haVipStatusSchema>;
export type NodeStatusEntry = z.output<typeof nodeStatusEntrySchema>;
export type NodeState = z.output<typeof nodeStateSchema>;
export type HaVipCondition = z.output<typeof conditionSchema>;
export type ConditionStatus = HaVipCondition["status"];
export type VrrpVersion = HaVipSpec["vrrpVersion"];
export type Preemption = HaVipSpec["preemption"];
export type PreemptionMode = Preemption["mode"];
export type NodesSpec = HaVipSpec["nodes"];
export type NodePriority = NodesSpec["priorities"][number];
export type LabelSelector = z.output<typeof labelSelector>;
export type Toleration = NodesSpec["tolerations"][number];
export type Transport = HaVipSpec["transport"];
export type TransportMode = Transport["mode"];
export type Authentication = z.output<typeof authenticationSchema>;
export type HealthCheck = z.output<typeof healthCheckSchema>;
export type Probe = z.output<typeof probeSchema>;
export type HttpGetAction = Probe["httpGet"];
export type Garp = HaVipSpec["garp"];

/** The configured priority of `node`: its entry in `spec.nodes.priorities`, else {@link DEFAULT_PRIORITY}. */
export function priorityOf(spec: HaVipSpec, node: string): number {
  return spec.nodes.priorities.find((entry) => entry.node === node)?.priority ?? DEFAULT_PRIORITY;
}

/** The family of a validated spec's addresses. */
export function addressFamilyOf(spec: HaVipSpec): AddressFamily {
  return spec.addresses.some((text) => text.includes(":")) ? "ipv6" : "ipv4";
}
