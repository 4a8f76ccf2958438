/**
 * Name validation shared by certificate issuance (which refuses to embed a bad
 * name) and identity parsing (which refuses to trust one).
 */

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** RFC 1123 label as Kubernetes uses it for object names: lower case, 1-63 chars. */
export function isDnsLabel(name: string): boolean {
  return name.length >= 1 && name.length <= 63 && DNS_LABEL.test(name);
}

/**
 * Host name for a server certificate SAN: dot-separated DNS labels, optionally
 * starting with a single `*` wildcard label. Case-insensitive, since hosts are.
 */
export function isDnsName(name: string): boolean {
  if (name.length < 1 || name.length > 253) return false;
  const labels = name.toLowerCase().split('.');
  const firstLabelIndex = labels[0] === '*' && labels.length > 1 ? 1 : 0;
  return labels.slice(firstLabelIndex).every(isDnsLabel);
}

/**
 * Kubernetes user and group names are free-form (e-mail addresses, `oidc:...`),
 * so only reject what cannot survive a subject attribute: empty values, values
 * beyond the X.520 upper bound of 64 characters, and control characters.
 */
export function isSubjectName(name: string): boolean {
  return name.length >= 1 && name.length <= 64 && !/[\u0000-\u001f\u007f]/.test(name);
}

export class InvalidNameError extends Error {
  readonly code = 'INVALID_NAME';

  constructor(message: string) {
    super(message);
    this.name = 'InvalidNameError';
  }
}
