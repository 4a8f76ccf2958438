// The headers a member gets (pure). Whatever the client sent that carries identity — every
// Authorization, Proxy-Authorization, Impersonate-* and X-Remote-* line, in any case and count — is
// dropped, with the hop-by-hop headers and every header the client named in Connection; only then
// the hub adds its own credential and the caller's identity. Building the outbound set from the
// raw header lines (not http2-proxy's stripped copy) and adding ours last means no hop-by-hop
// rule can remove what the hub set (Rancher CVE-2021-31999: `Connection: Impersonate-User`).

export type OutboundHeaders = Record<string, string | string[]>;

/** The identity the member sees, through impersonation. */
export interface ForwardIdentity {
  user: string;
  groups: readonly string[];
  uid?: string;
  extra?: Readonly<Record<string, readonly string[]>>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings', 'proxy-authenticate', 'host']);

/** Identity-carrying headers a client may never pass through the hub. */
export function isIdentityHeader(lowerName: string): boolean {
  return lowerName === 'authorization' || lowerName === 'proxy-authorization' || lowerName.startsWith('impersonate-') || lowerName.startsWith('x-remote-');
}

/**
 * The client's headers minus identity, hop-by-hop and Connection-named ones. `rawHeaders` is
 * Node's flat [name, value, …] list, so duplicates are seen one by one. With `upgrade`, the
 * client's Upgrade value is kept and Connection is set to Upgrade (after the stripping).
 */
export function sanitizedHeaders(rawHeaders: readonly string[], options: { upgrade?: boolean } = {}): OutboundHeaders {
  const named = new Set<string>();
  let upgrade: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (name === 'connection') for (const token of rawHeaders[i + 1]!.split(',')) named.add(token.trim().toLowerCase());
    if (name === 'upgrade' && upgrade === undefined) upgrade = rawHeaders[i + 1]!;
  }
  const out: OutboundHeaders = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!;
    if (HOP_BY_HOP.has(name) || isIdentityHeader(name) || named.has(name)) continue;
    const previous = out[name];
    if (previous === undefined) out[name] = value;
    else out[name] = Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  if (options.upgrade && upgrade !== undefined) {
    out.connection = 'Upgrade';
    out.upgrade = upgrade;
  }
  return out;
}

/** Impersonate-Extra-<key>: lower-case, percent-encoded (as client-go writes them). */
export function extraHeaderName(key: string): string {
  return `impersonate-extra-${encodeURIComponent(key.toLowerCase())}`;
}

/** The impersonation headers for `who`: one Impersonate-Group line per group, never comma-joined. */
export function identityHeaders(who: ForwardIdentity): OutboundHeaders {
  const out: OutboundHeaders = { 'impersonate-user': who.user };
  if (who.groups.length > 0) out['impersonate-group'] = [...who.groups];
  if (who.uid) out['impersonate-uid'] = who.uid;
  for (const [key, values] of Object.entries(who.extra ?? {})) if (values.length > 0) out[extraHeaderName(key)] = [...values];
  return out;
}

/**
 * The full outbound header set: the sanitised client headers, then the hub's bearer token (if
 * its member credential is a token; a client certificate goes in TLS) and the caller's identity.
 */
export function outboundHeaders(rawHeaders: readonly string[], who: ForwardIdentity, credential: { token?: string }, options: { upgrade?: boolean } = {}): OutboundHeaders {
  const out = sanitizedHeaders(rawHeaders, options);
  if (credential.token) out.authorization = `Bearer ${credential.token}`;
  return Object.assign(out, identityHeaders(who));
}
