// The --oidc-* flags (kube-apiserver's names) of the federation API server and of the hub (its
// embedded federation API server), parsed in one place.
import fs from 'node:fs';
import { UsageError, fileFlag } from '../../common/flags.js';
import type { OidcOptions } from './oidc.js';

export const OIDC_FLAGS = {
  'oidc-issuer-url': { type: 'string' },
  'oidc-client-id': { type: 'string' },
  'oidc-username-claim': { type: 'string' },
  'oidc-username-prefix': { type: 'string' },
  'oidc-groups-claim': { type: 'string' },
  'oidc-groups-prefix': { type: 'string' },
  'oidc-ca-file': { type: 'string' },
} as const;

export const OIDC_HELP = `  --oidc-issuer-url URL       accept OIDC ID tokens of this issuer (https; discovery + JWKS) [off]
  --oidc-client-id ID         the audience (aud) tokens must carry (required with --oidc-issuer-url)
  --oidc-username-claim C     the claim naming the user [sub]
  --oidc-username-prefix P    put before user names; "-" none [email claim: none; else "<issuer URL>#"]
  --oidc-groups-claim C       the claim holding groups (string or array) [none]
  --oidc-groups-prefix P      put before group names [""]
  --oidc-ca-file FILE         CA bundle for the issuer's TLS [system CAs]`;

/** The flag values: a path to the CA instead of its content (read by oidcOptionsFromFlags at start-up). */
export type OidcFlagOptions = Omit<OidcOptions, 'ca'> & { caFile: string | null };

type OidcValues = { [K in keyof typeof OIDC_FLAGS]?: string | boolean | (string | boolean)[] };
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** null when OIDC is off (no --oidc-issuer-url); the other --oidc-* flags need it. */
export function oidcFlagOptions(v: OidcValues): OidcFlagOptions | null {
  const issuerUrl = text(v['oidc-issuer-url']);
  if (issuerUrl === undefined || issuerUrl === '') {
    const stray = Object.keys(OIDC_FLAGS).find((f) => f !== 'oidc-issuer-url' && v[f as keyof OidcValues] !== undefined);
    if (stray) throw new UsageError(`--${stray}: only with --oidc-issuer-url`);
    return null;
  }
  let url: URL;
  try {
    url = new URL(issuerUrl);
  } catch {
    throw new UsageError('--oidc-issuer-url: not a URL');
  }
  if (url.protocol !== 'https:') throw new UsageError('--oidc-issuer-url: must be https://');
  if (url.search !== '' || url.hash !== '') throw new UsageError('--oidc-issuer-url: no query or fragment');
  const clientId = text(v['oidc-client-id']);
  if (!clientId) throw new UsageError('--oidc-client-id: required with --oidc-issuer-url');
  const prefix = text(v['oidc-username-prefix']);
  const groupsClaim = text(v['oidc-groups-claim']);
  return {
    issuerUrl,
    clientId,
    usernameClaim: text(v['oidc-username-claim']) || 'sub',
    usernamePrefix: prefix === '-' ? '' : prefix,
    groupsClaim: groupsClaim || null,
    groupsPrefix: text(v['oidc-groups-prefix']) ?? '',
    caFile: fileFlag('oidc-ca-file', text(v['oidc-ca-file'])),
  };
}

/** Reads the CA file (start-up only; an unreadable file is a UsageError). */
export function oidcOptions(flags: OidcFlagOptions): OidcOptions {
  const { caFile, ...rest } = flags;
  if (caFile === null) return { ...rest, ca: null };
  try {
    return { ...rest, ca: fs.readFileSync(caFile) };
  } catch (error) {
    throw new UsageError(`--oidc-ca-file: cannot read ${caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}
