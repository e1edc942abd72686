// VRID allocation and conflict detection between HighAvailabilityVIPs. A VRID names a virtual router on a LAN
// (RFC 5798 §5.2.3), separately per address family (§7.3: IPv4 and IPv6 routers are distinct). The controller cannot
// see which nodes share a LAN, so an allocated VRID is unique per family in the whole cluster, whatever the node sets;
// two spec VRIDs that clash are an error on shared nodes and a warning otherwise. Addresses collide cluster-wide.
import { addressFamilyOf, ConditionReason, familyName, parseVipAddress, type HaVipSpec } from "../api/v1alpha1/index.js";
import { keyOf, type PeerResource } from "./plan-inputs.js";

/** RFC 5798 §5.2.3: VRID is 1..255. */
const MIN_VRID = 1;
const MAX_VRID = 255;
// Allocation counts down from MAX_VRID because hand-built keepalived setups and tutorials take the low VRIDs (1, 10,
// 50, 51, 100), so the top of the range is the least likely to meet a router already on the LAN.

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

/** Another resource that sets the same spec.virtualRouterID on other nodes: fine unless a LAN joins the two. */
export interface VridSharing {
  /** The other resource ("namespace/name"). */
  readonly other: string;
  readonly message: string;
}

export interface VridDecision {
  /** undefined only when every VRID of the family is taken in the cluster. */
  readonly virtualRouterID: number | undefined;
  readonly conflicts: readonly VridConflict[];
  readonly sharings: readonly VridSharing[];
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
 * unless a resource of the same family has a stronger claim to it; otherwise the highest VRID free in the family.
 */
export function decideVrid(mine: Claim, others: readonly Claim[]): VridDecision {
  const family = addressFamilyOf(mine.spec);
  const sameFamily = others.filter((other) => other.key !== mine.key && addressFamilyOf(other.spec) === family);
  const conflicts: VridConflict[] = [];
  const sharings: VridSharing[] = [];

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
    sameFamily.some((other) => claimedVrid(other) === vrid && !keepsAgainst(mine, other));

  let virtualRouterID: number | undefined = current;
  if (mine.spec.virtualRouterID !== undefined) {
    // An allocated VRID equal to this one moves away by itself; only another spec VRID stays to clash.
    for (const other of sameFamily) {
      if (other.spec.virtualRouterID !== mine.spec.virtualRouterID) continue;
      if (overlaps(mine.nodes, other.nodes)) {
        conflicts.push({
          reason: ConditionReason.VirtualRouterIDInUse,
          other: other.key,
          message:
            `virtualRouterID ${mine.spec.virtualRouterID} is also used by HighAvailabilityVIP ${other.key} on shared nodes; ` +
            `change spec.virtualRouterID in one of them, or omit it to let the controller allocate one`,
        });
      } else {
        sharings.push({
          other: other.key,
          message:
            `virtualRouterID ${mine.spec.virtualRouterID} is also set by HighAvailabilityVIP ${other.key} on other nodes; ` +
            `if any of its nodes share a LAN with these, change spec.virtualRouterID in one of them, or omit it to let the controller allocate one`,
        });
      }
    }
  } else if (current === undefined || isContested(current)) {
    const taken = new Set(sameFamily.flatMap((other) => {
      const vrid = claimedVrid(other);
      return vrid === undefined ? [] : [vrid];
    }));
    virtualRouterID = undefined;
    for (let vrid = MAX_VRID; vrid >= MIN_VRID; vrid -= 1) {
      if (!taken.has(vrid)) {
        virtualRouterID = vrid;
        break;
      }
    }
    if (virtualRouterID === undefined) {
      conflicts.push({
        reason: ConditionReason.VirtualRouterIDsExhausted,
        other: "",
        message:
          `all ${MAX_VRID - MIN_VRID + 1} ${familyName(family)} VRIDs are taken by other HighAvailabilityVIPs, the cluster's limit: an allocated VRID is unique ` +
          `per address family because the controller cannot see which nodes share a LAN; delete a HighAvailabilityVIP you no longer need, ` +
          `or set spec.virtualRouterID to one that a resource on another LAN sets in its spec`,
      });
    }
  }
  return { virtualRouterID, conflicts, sharings };
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
