// The VIPAddressPool resource, v1alpha1: the cluster admin's answer to "who may claim an address". A
// HighAvailabilityVIP runs privileged agents and claims addresses on their LAN, so the controller admits one only when
// a pool admits all of it (src/controller/admission.ts). Cluster-scoped, like MetalLB's IPAddressPool, so a namespace's
// users cannot grant themselves addresses. As in schema.ts, each cross-field rule is a zod refinement and a CEL rule.
import { z } from "zod";
import { ADDRESS_MAX_LENGTH, hasHostBits, hostPrefixLength, parseVipAddress } from "./ip.js";
import { HAVIP_GROUP, HAVIP_KIND, HAVIP_VERSION, cel, describeAddressProblem, interfaceName, labelSelector, quote } from "./schema.js";

export const POOL_KIND = "VIPAddressPool";
export const POOL_PLURAL = "vipaddresspools";
export const POOL_SINGULAR = "vipaddresspool";
export const POOL_SHORT_NAME = "vippool";
export const POOL_API_VERSION = `${HAVIP_GROUP}/${HAVIP_VERSION}`;
/** In `spec.namespaces`: every namespace may claim from the pool. */
export const ALL_NAMESPACES = "*";
/** The example a refusal points the cluster admin to. */
export const POOL_EXAMPLE_FILE = "examples/vip-address-pool.yaml";

const MAX_POOL_ADDRESSES = 64;
const MAX_POOL_NAMESPACES = 256;
const MAX_POOL_INTERFACES = 16;

const poolAddress = z
  .string()
  .max(ADDRESS_MAX_LENGTH, { error: (issue) => `${quote(issue.input)} is too long for a CIDR; write e.g. 192.0.2.0/24` })
  .superRefine((text, ctx) => {
    const problem = describeAddressProblem(text, true);
    if (problem !== undefined) {
      ctx.addIssue({ code: "custom", message: problem, input: text });
      return;
    }
    // A range written with host bits usually means a typo in the prefix; say which range it would be.
    const network = parseVipAddress(text);
    if (network !== undefined && hasHostBits(network)) {
      ctx.addIssue({ code: "custom", message: `${quote(text)} has bits set past its /${network.prefixLength} prefix; write the range's first address, or /${hostPrefixLength(network.family)} for one address`, input: text });
    }
  })
  .meta(
    cel(
      { rule: "self.contains('/') ? isCIDR(self) : isIP(self)", message: "must be a CIDR or one address, e.g. 192.0.2.0/24, 2001:db8::/64 or 192.0.2.10" },
      { rule: "!self.contains('/') || !isCIDR(self) || cidr(self).masked() == cidr(self)", message: "has bits set past its prefix; write the range's first address, e.g. 192.0.2.0/24" },
    ),
  );

const namespaceName = z
  .string()
  .max(63)
  .refine((name) => name === ALL_NAMESPACES || /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name), {
    error: (issue) => `${quote(issue.input)} is not a namespace name; write e.g. ingress, or "*" for every namespace`,
  })
  .meta(cel({ rule: "self == '*' || self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')", message: 'must be a namespace name, e.g. ingress, or "*" for every namespace' }));

export const vipAddressPoolSpecSchema = z
  .strictObject({
    addresses: z
      .array(poolAddress)
      .min(1, { error: () => "needs at least one CIDR; add one, e.g. 192.0.2.0/24" })
      .max(MAX_POOL_ADDRESSES)
      .meta({ "x-kubernetes-list-type": "set" })
      .describe("CIDRs (IPv4 or IPv6; a plain address is that one address) every address of an admitted HighAvailabilityVIP falls in."),
    namespaces: z
      .array(namespaceName)
      .min(1, { error: () => 'needs at least one namespace; add one, e.g. ingress, or "*" for every namespace' })
      .max(MAX_POOL_NAMESPACES)
      .meta({ "x-kubernetes-list-type": "set" })
      .describe(`Namespaces whose HighAvailabilityVIPs may claim from this pool; "${ALL_NAMESPACES}": every namespace.`),
    nodes: z
      .strictObject({
        selector: labelSelector.optional().describe("Every node an admitted HighAvailabilityVIP is placed on matches it. Empty or absent: every node."),
      })
      .optional()
      .describe("Where an admitted HighAvailabilityVIP may run its privileged agents."),
    interfaces: z
      .array(interfaceName)
      .min(1, { error: () => "is empty; list at least one interface, or remove interfaces to allow any" })
      .max(MAX_POOL_INTERFACES)
      .meta({ "x-kubernetes-list-type": "set" })
      .optional()
      .describe("If set, an admitted HighAvailabilityVIP names one of these as spec.interface. Absent: any interface."),
  })
  .describe(`Which ${HAVIP_KIND}s may claim which addresses, from which namespaces, on which nodes and interfaces.`);

export const vipAddressPoolSchema = z.object({
  apiVersion: z.literal(POOL_API_VERSION, {
    error: (issue) => `${quote(issue.input)} is not ${POOL_API_VERSION}; set apiVersion: ${POOL_API_VERSION}`,
  }),
  kind: z.literal(POOL_KIND, { error: (issue) => `${quote(issue.input)} is not ${POOL_KIND}; set kind: ${POOL_KIND}` }),
  metadata: z.looseObject({ name: z.string().min(1).max(253) }),
  spec: vipAddressPoolSpecSchema,
});

export type VipAddressPoolSpec = z.output<typeof vipAddressPoolSpecSchema>;
export type VipAddressPoolSpecInput = z.input<typeof vipAddressPoolSpecSchema>;
export type VipAddressPool = z.output<typeof vipAddressPoolSchema>;
