// VRID allocation and conflict detection between HighAvailabilityVIPs. A VRID names a virtual router on a LAN
// (RFC 5798 §5.2.3), separately per address family (§7.3: IPv4 and IPv6 routers are distinct), so two resources
// collide only when they share a node and a family. Addresses collide cluster-wide: one address, one owner.
import { addressFamilyOf, ConditionReason, parseVipAddress, type HaVipSpec } from "../api/v1alpha1/index.js";
import { keyOf, type PeerResource } from "./inputs.js";

/** RFC 5798 §5.2.3: VRID is 1..255. */
const MIN_VRID = 1;
const MAX_VRID = 255;

export interface Claim {
  readonly key: string;
  readonly creationTimestamp: string;
  readonly spec: HaVipSpec;
  readonly statusVirtualRouterID: number | undefined;
  /** Names of the nodes its selector matches. */
  readonly nodes: ReadonlySet<string>;
}

export interface VridConflict {
  readonly reason: typeof ConditionReason.VirtualRouterIDInUse | typeof ConditionReason.AddressInUse | typeof ConditionReason.VirtualRouterIDsExhausted;
  /** The other resource ("namespace/name"), or "" when all VRIDs are taken. */
  readonly other: string;
  readonly message: string;
}

export interface VridDecision {
  /** undefined only when every VRID is taken on these nodes. */
  readonly virtualRouterID: number | undefined;
  readonly conflicts: readonly VridConflict[];
}

function overlaps(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const node of a) if (b.has(node)) return true;
  return false;
}

/** The VRID a resource uses now: the spec's, else the one allocated into its status. */
function claimedVrid(claim: Claim): number | undefined {
  return claim.spec.virtualRouterID ?? claim.statusVirtualRouterID;
}

// Who keeps a contested VRID: a VRID written in the spec cannot move, and between two allocated ones the older
// resource keeps it (name order breaks a tie), so the younger re-allocates and nothing already running moves.
function keepsAgainst(mine: Claim, other: Claim): boolean {
  const isMineFixed = mine.spec.virtualRouterID !== undefined;
  const isOtherFixed = other.spec.virtualRouterID !== undefined;
  if (isMineFixed !== isOtherFixed) return isMineFixed;
  if (mine.creationTimestamp !== other.creationTimestamp) return mine.creationTimestamp < other.creationTimestamp;
  return mine.key < other.key;
}

function canonicalAddresses(spec: HaVipSpec): Map<string, string> {
  const byAddress = new Map<string, string>();
  for (const text of spec.addresses) {
    const parsed = parseVipAddress(text);
    if (parsed !== undefined) byAddress.set(parsed.address, text);
  }
  return byAddress;
}

/**
 * Decides this resource's VRID and its conflicts with `others`. Stable: a VRID in the spec or the status is kept
 * unless an overlapping resource has a stronger claim to it; otherwise the lowest VRID free on the shared nodes.
 */
export function decideVrid(mine: Claim, others: readonly Claim[]): VridDecision {
  const family = addressFamilyOf(mine.spec);
  const neighbours = others.filter((other) => other.key !== mine.key && addressFamilyOf(other.spec) === family && overlaps(mine.nodes, other.nodes));
  const conflicts: VridConflict[] = [];

  const myAddresses = canonicalAddresses(mine.spec);
  for (const other of others) {
    if (other.key === mine.key) continue;
    for (const [address, text] of canonicalAddresses(other.spec)) {
      if (!myAddresses.has(address)) continue;
      conflicts.push({
        reason: ConditionReason.AddressInUse,
        other: other.key,
        message: `address ${text} is also claimed by HighAvailabilityVIP ${other.key}; remove it from one of them`,
      });
    }
  }

  const current = claimedVrid(mine);
  const isContested = (vrid: number): boolean =>
    neighbours.some((other) => claimedVrid(other) === vrid && !keepsAgainst(mine, other));

  let virtualRouterID: number | undefined = current;
  if (mine.spec.virtualRouterID !== undefined) {
    for (const other of neighbours) {
      if (claimedVrid(other) !== mine.spec.virtualRouterID || other.spec.virtualRouterID === undefined) continue;
      conflicts.push({
        reason: ConditionReason.VirtualRouterIDInUse,
        other: other.key,
        message:
          `virtualRouterID ${mine.spec.virtualRouterID} is also used by HighAvailabilityVIP ${other.key} on shared nodes; ` +
          `change spec.virtualRouterID in one of them, or omit it to let the controller allocate one`,
      });
    }
  } else if (current === undefined || isContested(current)) {
    const taken = new Set(neighbours.flatMap((other) => {
      const vrid = claimedVrid(other);
      return vrid === undefined ? [] : [vrid];
    }));
    virtualRouterID = undefined;
    for (let vrid = MIN_VRID; vrid <= MAX_VRID; vrid += 1) {
      if (!taken.has(vrid)) {
        virtualRouterID = vrid;
        break;
      }
    }
    if (virtualRouterID === undefined) {
      conflicts.push({
        reason: ConditionReason.VirtualRouterIDsExhausted,
        other: "",
        message: "all 255 VRIDs are used by other HighAvailabilityVIPs on the selected nodes; narrow spec.nodes.selector or merge resources",
      });
    }
  }
  return { virtualRouterID, conflicts };
}

/** A Claim from another resource's facts, given the nodes its selector matches. */
export function claimOf(resource: PeerResource, nodes: ReadonlySet<string>): Claim {
  return {
    key: keyOf(resource),
    creationTimestamp: resource.creationTimestamp,
    spec: resource.spec,
    statusVirtualRouterID: resource.statusVirtualRouterID,
    nodes,
  };
}
