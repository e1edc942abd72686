import { createHash } from "node:crypto";

/** Longest object name that also fits a label value, so it can be a label value too. */
const MAX_NAME_LENGTH = 63;
const HASH_LENGTH = 8;

/**
 * `prefix + name`, or, when that is longer than 63 characters, its head plus a hash of the whole, so two long
 * resource names that share a head still get different objects.
 */
export function boundedName(prefix: string, name: string): string {
  const full = `${prefix}${name}`;
  if (full.length <= MAX_NAME_LENGTH) return full;
  const hash = createHash("sha256").update(full).digest("hex").slice(0, HASH_LENGTH);
  const head = full.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1).replace(/[-.]+$/, "");
  return `${head}-${hash}`;
}

/** The Role and RoleBinding that let the agents get a HighAvailabilityVIP's password Secret. */
export function passwordAccessName(havipName: string): string {
  return boundedName("ha-nginx-password-", havipName);
}
