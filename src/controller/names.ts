import { createHash } from "node:crypto";

/** Longest object name that also fits a label value, so the DaemonSet name can label its pods. */
const MAX_NAME_LENGTH = 63;
const HASH_LENGTH = 8;

/**
 * `prefix + name`, or, when that is longer than 63 characters, its head plus a hash of the whole, so two long
 * resource names that share a head still get different DaemonSets.
 */
export function boundedName(prefix: string, name: string): string {
  const full = `${prefix}${name}`;
  if (full.length <= MAX_NAME_LENGTH) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, HASH_LENGTH);
  const head = full.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1).replace(/[-.]+$/, "");
  return `${head}-${hash}`;
}

/** The agent DaemonSet, ServiceAccount and RoleBinding of a HighAvailabilityVIP share this name. */
export function agentObjectName(havipName: string): string {
  return boundedName("ha-nginx-agent-", havipName);
}

/**
 * The Role and RoleBinding that let a HighAvailabilityVIP's agents get its password Secret. Their own prefix, not
 * agentObjectName's, so that no resource name can make them collide with another resource's agent RoleBinding.
 */
export function passwordAccessName(havipName: string): string {
  return boundedName("ha-nginx-password-", havipName);
}
