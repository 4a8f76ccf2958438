// How to reach one member cluster, read from its KubeFedCluster and credential Secret: where its
// API server is (an address inside the member, dialed through the tunnel), how to verify it, and
// how to authenticate. Pure: the caller watches the objects and rebuilds the client on change.
import type { KubeObject } from '../apiserver/storage.js';
import { isValidHost } from '../../common/address.js';
import { apiEndpointUrl } from '../kubefed/api.js';

export class MemberConfigError extends Error {
  override readonly name = 'MemberConfigError';
}

export interface MemberConfig {
  cluster: string;
  /** `https://host:port` as kubeconfig `server`. */
  server: string;
  /** What dial() is asked for: host:port inside the member cluster. */
  address: string;
  /** TLS server name (absent for IP addresses, as client-go does). */
  servername: string | undefined;
  ca: Buffer | undefined;
  token: string | undefined;
  cert: Buffer | undefined;
  key: Buffer | undefined;
  /** KubeFed's spec.disabledTLSValidations: '*' disables verification; the others one check each. */
  skipVerify: { all: boolean; subjectName: boolean; validityPeriod: boolean };
}

function decode(field: string, value: unknown): Buffer | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new MemberConfigError(`${field}: expected base64 data`);
  return Buffer.from(value, 'base64');
}

/**
 * The Secret (spec.secretRef, in the cluster's namespace) holds KubeFed's `token` (a bearer token)
 * or, in addition, `tls.crt` + `tls.key` (a client certificate); `ca.crt` is used when the
 * KubeFedCluster has no caBundle.
 */
export function memberConfig(cluster: KubeObject, secret: KubeObject | null | undefined): MemberConfig {
  const name = cluster.metadata.name!;
  // Admission validates these types, but objects in the store are read back as they are: a wrong
  // type is a config error of this cluster, not an exception in the controller.
  const spec = (cluster.spec ?? {}) as { apiEndpoint?: unknown; caBundle?: unknown; secretRef?: { name?: unknown }; disabledTLSValidations?: unknown };
  if (!spec.apiEndpoint) throw new MemberConfigError('spec.apiEndpoint is empty');
  if (typeof spec.apiEndpoint !== 'string') throw new MemberConfigError('spec.apiEndpoint must be a string');
  let url: URL;
  try {
    url = apiEndpointUrl(spec.apiEndpoint);
  } catch {
    throw new MemberConfigError(`spec.apiEndpoint ${JSON.stringify(spec.apiEndpoint)} is not a URL`);
  }
  if (url.protocol !== 'https:') throw new MemberConfigError(`spec.apiEndpoint must be https (got ${url.protocol})`);
  if (!spec.secretRef?.name) throw new MemberConfigError('spec.secretRef.name is empty');
  if (typeof spec.secretRef.name !== 'string') throw new MemberConfigError('spec.secretRef.name must be a string');
  if (!secret) throw new MemberConfigError(`secret ${spec.secretRef.name} not found`);
  const data = (secret.data ?? {}) as Record<string, unknown>;
  const tokenBytes = decode('token', data.token);
  const cert = decode('tls.crt', data['tls.crt']);
  const key = decode('tls.key', data['tls.key']);
  if (!tokenBytes && !(cert && key)) throw new MemberConfigError(`secret ${spec.secretRef.name} holds neither a token nor tls.crt and tls.key`);
  if (Boolean(cert) !== Boolean(key)) throw new MemberConfigError(`secret ${spec.secretRef.name}: tls.crt and tls.key go together`);
  const ca = decode('spec.caBundle', spec.caBundle) ?? decode('ca.crt', data['ca.crt']);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // What dial() would refuse (BAD_TARGET) on every probe is refused here, once, as this cluster's config error.
  if (!isValidHost(host)) throw new MemberConfigError(`spec.apiEndpoint ${JSON.stringify(spec.apiEndpoint)}: ${JSON.stringify(host)} is not a host name or IP address`);
  const port = url.port || '443';
  const disabled = spec.disabledTLSValidations ?? [];
  if (!Array.isArray(disabled)) throw new MemberConfigError('spec.disabledTLSValidations must be a list');
  const isIp = /^[\d.]+$/.test(host) || host.includes(':');
  return {
    cluster: name,
    server: `https://${url.host}`,
    address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    servername: isIp ? undefined : host,
    ca,
    token: tokenBytes?.toString('utf8').trim() || undefined,
    cert,
    key,
    skipVerify: { all: disabled.includes('*'), subjectName: disabled.includes('SubjectName'), validityPeriod: disabled.includes('ValidityPeriod') },
  };
}
