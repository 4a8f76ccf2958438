// Pure mapping of verified OIDC ID-token claims to a user, with kube-apiserver's rules for
// --oidc-username-claim/-prefix and --oidc-groups-claim/-prefix.
import type { UserInfo } from './authz.js';

export interface ClaimMapping {
  /** The claim naming the user [sub]. */
  usernameClaim: string;
  /**
   * Put before the user name. undefined: kube-apiserver's default — none for the email claim,
   * else "<issuer URL>#" so that OIDC users cannot collide with certificate or token-file users.
   * "-" on the command line means none (the flag parser turns it into "").
   */
  usernamePrefix: string | undefined;
  /** The claim holding the groups (a string or an array of strings); null: no groups from the token. */
  groupsClaim: string | null;
  groupsPrefix: string;
}

export type ClaimRefusal = 'missing_username' | 'email_not_verified' | 'bad_groups_claim';

/** The prefix actually used for user names (kube-apiserver's defaulting rule). */
export function effectiveUsernamePrefix(mapping: ClaimMapping, issuerUrl: string): string {
  if (mapping.usernamePrefix !== undefined) return mapping.usernamePrefix;
  return mapping.usernameClaim === 'email' ? '' : `${issuerUrl}#`;
}

/**
 * The user of a verified token's claims, or why none: the username claim must be a non-empty
 * string; with the email claim, `email_verified` must not be false (as in kube-apiserver); the groups
 * claim, when present, must be a string or an array of strings (absent: no groups).
 */
export function userFromClaims(claims: Record<string, unknown>, mapping: ClaimMapping, issuerUrl: string): UserInfo | { refused: ClaimRefusal } {
  const name = claims[mapping.usernameClaim];
  if (typeof name !== 'string' || name === '') return { refused: 'missing_username' };
  if (mapping.usernameClaim === 'email' && 'email_verified' in claims && claims.email_verified !== true) return { refused: 'email_not_verified' };
  const groups: string[] = [];
  if (mapping.groupsClaim !== null && claims[mapping.groupsClaim] !== undefined) {
    const raw = claims[mapping.groupsClaim];
    const list = typeof raw === 'string' ? [raw] : raw;
    if (!Array.isArray(list) || !list.every((g): g is string => typeof g === 'string')) return { refused: 'bad_groups_claim' };
    for (const g of list) if (g !== '') groups.push(mapping.groupsPrefix + g);
  }
  return { user: effectiveUsernamePrefix(mapping, issuerUrl) + name, groups };
}
