// Who may claim an address: a HighAvailabilityVIP is admitted when one VIPAddressPool admits all of it (every address
// inside the pool's CIDRs, its namespace listed, every node it is placed on matching, its interface allowed). Creating
// one runs privileged agents on its nodes and claims addresses on their LAN, so with no pool nothing is admitted. Pure.
import {
  ALL_NAMESPACES,
  isInNetwork,
  parseVipAddress,
  POOL_EXAMPLE_FILE,
  POOL_KIND,
  type HaVipSpec,
  type VipAddressPoolSpec,
} from "../api/v1alpha1/index.js";
import { matchesSelector } from "../api/v1alpha1/selector.js";

/** A VIPAddressPool whose spec passed validation. */
export interface AddressPool {
  readonly name: string;
  readonly spec: VipAddressPoolSpec;
}

/** What admission reads of a resource: where it lives, what it claims and where it runs. */
export interface AdmissionRequest {
  readonly namespace: string;
  readonly spec: Pick<HaVipSpec, "addresses" | "interface">;
  /** The nodes it is placed on (selector and tolerations), with their labels. */
  readonly nodes: readonly { readonly name: string; readonly labels: Readonly<Record<string, string>> }[];
}

export type Admission = { readonly isAdmitted: true; readonly pool: string } | { readonly isAdmitted: false; readonly message: string };

/** How many pools a refusal describes; the rest are counted, so a cluster with many pools gets a readable message. */
const POOLS_DESCRIBED = 5;

const list = (items: readonly string[]): string => `[${items.join(", ")}]`;

/** The first reason `pool` does not admit the request, in the words a refusal uses; undefined when it admits it. */
function poolRefusal(pool: AddressPool, request: AdmissionRequest): string | undefined {
  const networks = pool.spec.addresses.flatMap((text) => {
    const network = parseVipAddress(text);
    return network === undefined ? [] : [network];
  });
  const outside = request.spec.addresses.filter((text) => {
    const address = parseVipAddress(text);
    return address === undefined || !networks.some((network) => isInNetwork(address, network));
  });
  if (outside.length > 0) return `pool "${pool.name}" covers ${pool.spec.addresses.join(", ")}, not ${outside.join(", ")}`;
  const namespaces = pool.spec.namespaces;
  if (!namespaces.includes(ALL_NAMESPACES) && !namespaces.includes(request.namespace)) {
    return `pool "${pool.name}" covers ${pool.spec.addresses.join(", ")} for namespaces ${list(namespaces)}`;
  }
  const selector = pool.spec.nodes?.selector;
  const strayNodes = request.nodes.filter((node) => !matchesSelector(selector, node.labels)).map((node) => node.name);
  if (strayNodes.length > 0) return `pool "${pool.name}" does not allow nodes ${list(strayNodes)} (its nodes.selector)`;
  const interfaces = pool.spec.interfaces;
  if (interfaces !== undefined && (request.spec.interface === undefined || !interfaces.includes(request.spec.interface))) {
    const named = request.spec.interface === undefined ? "spec.interface is unset" : `not ${request.spec.interface}`;
    return `pool "${pool.name}" allows interfaces ${list(interfaces)}, ${named}`;
  }
  return undefined;
}

/**
 * Whether a pool admits the resource, and if none does, a message that names the rule each pool applies and the fix.
 * Pools are tried by name, so the admitting pool named in the status does not flip between reconciles.
 */
export function decideAdmission(request: AdmissionRequest, pools: readonly AddressPool[]): Admission {
  const addresses = request.spec.addresses.join(", ");
  const claim = `${addresses} for namespace "${request.namespace}"`;
  if (pools.length === 0) {
    return {
      isAdmitted: false,
      message:
        `no ${POOL_KIND} exists, so no HighAvailabilityVIP may claim an address (it runs privileged agents on its nodes): ` +
        `ask a cluster admin to create a ${POOL_KIND} that admits ${claim} (see ${POOL_EXAMPLE_FILE})`,
    };
  }
  const sorted = [...pools].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const refusals: string[] = [];
  for (const pool of sorted) {
    const refusal = poolRefusal(pool, request);
    if (refusal === undefined) return { isAdmitted: true, pool: pool.name };
    refusals.push(refusal);
  }
  const described = refusals.slice(0, POOLS_DESCRIBED);
  const more = refusals.length - described.length;
  return {
    isAdmitted: false,
    message:
      `no ${POOL_KIND} admits ${claim}: ${described.join("; ")}${more > 0 ? `; and ${more} more` : ""}; ` +
      `ask a cluster admin to add a ${POOL_KIND} or widen one (see ${POOL_EXAMPLE_FILE})`,
  };
}
