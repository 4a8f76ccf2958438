// Every flag of the federation API server, validated in one place (exit 2 with a message).
import type { LevelWithSilent } from 'pino';
import type { HostPort } from '../../common/address.js';
import { LOG_LEVELS } from '../../common/log.js';
import { UsageError, fileFlag, integerFlag, listenFlag, logLevelFlag, parseFlags, requiredFlag, requiredListenFlag } from '../../common/flags.js';
import { DEFAULT_MAX_BODY_BYTES } from './body.js';
import type { ListenerLimits } from '../../common/listener-guard.js';
import { LISTENER_LIMITS_HELP, LISTENER_LIMIT_FLAGS, listenerLimitOptions } from '../../common/listener-flags.js';
import { OIDC_FLAGS, OIDC_HELP, oidcFlagOptions, type OidcFlagOptions } from './oidc-flags.js';

/** With the listener limits (README "Listener limits"). */
export interface ApiServerOptions extends ListenerLimits {
  listen: HostPort;
  /** Plain-HTTP GET /metrics for scrapers (no TLS, no authentication), or null: only /metrics on the HTTPS listener. */
  metricsListen: HostPort | null;
  /** sqlite:///path.db, sqlite::memory: or mysql://user:pass@host:3306/db */
  store: string;
  mysqlTablePrefix: string | null;
  /** Kubernetes EncryptionConfiguration for data at rest; null: the default (see README "Secrets at rest"). */
  encryptionProviderConfig: string | null;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** kube-apiserver static token file (token,user,uid,"groups"), or null for client certificates only. */
  tokenFile: string | null;
  /** OIDC ID tokens (--oidc-*), or null. */
  oidc: OidcFlagOptions | null;
  /** Serve the built-in core types, standing in for a member cluster's API server. */
  member: boolean;
  /** Member mode: pods/exec and pods/attach run processes, pods/portforward dials loopback ports (README "Pods in member mode"). */
  enablePodExec: boolean;
  maxBodyBytes: number;
  bookmarkIntervalMs: number;
  logLevel: LevelWithSilent;
  /** One info log line per request with the identity it runs as and who impersonated it. */
  logIdentities: boolean;
  /** Deny-list of client certificate serials (certs/revocation.ts), re-read on SIGHUP; null: nothing revoked. */
  revokedFile: string | null;
}

export const APISERVER_HELP = `usage: apiserver --ca FILE --cert FILE --key FILE [options]
  --listen HOST:PORT          [127.0.0.1:6443]
  --metrics-listen HOST:PORT  also serve GET /metrics on plain HTTP, unauthenticated (loopback or pod network) [off]
  --store URL                 sqlite:///path.db | sqlite::memory: | mysql://user:pass@host:3306/db [sqlite::memory:]
  --mysql-table-prefix P      table name prefix in a shared MySQL database [kv_]
  --encryption-provider-config FILE  EncryptionConfiguration for Secrets at rest
                              [SQLite file: generated <db>.encryption.yaml with a local key; MySQL: none]
  --token-file FILE           static bearer tokens, CSV lines token,user,uid,"group1,group2"
${OIDC_HELP}
  --member                    serve core types (namespaces, configmaps, secrets, services, serviceaccounts, deployments, pods);
                              without it: a federation control plane serving the KubeFed API
  --enable-pod-exec           with --member: exec/attach run commands as child processes of this server
                              (per-pod temp directory, minimal env) and port-forward dials 127.0.0.1 [off]
  --max-body-bytes N          request body limit [${DEFAULT_MAX_BODY_BYTES}]
  --bookmark-interval-ms MS   watch BOOKMARK period [10000]
${LISTENER_LIMITS_HELP}
  --log-level LEVEL           ${LOG_LEVELS.join('|')} [info]
  --log-identities            log each request's identity at info: {user, groups, impersonatedBy, method, path} [off]
  --revoked FILE              revoked certificate serials, one a line (fedtunnel-certs revoke): 403; re-read on SIGHUP`;

export function parseApiServerOptions(argv: string[]): ApiServerOptions | 'help' {
  const v = parseFlags(argv, {
    listen: { type: 'string' },
    'metrics-listen': { type: 'string' },
    store: { type: 'string' },
    'mysql-table-prefix': { type: 'string' },
    'encryption-provider-config': { type: 'string' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    'token-file': { type: 'string' },
    ...OIDC_FLAGS,
    member: { type: 'boolean' },
    'enable-pod-exec': { type: 'boolean' },
    'max-body-bytes': { type: 'string' },
    'bookmark-interval-ms': { type: 'string' },
    ...LISTENER_LIMIT_FLAGS,
    'log-level': { type: 'string' },
    'log-identities': { type: 'boolean' },
    revoked: { type: 'string' },
  });
  if (v.help) return 'help';
  const store = v.store ?? 'sqlite::memory:';
  if (v['enable-pod-exec'] && !v.member) throw new UsageError('--enable-pod-exec: only with --member');
  if (!/^(sqlite:|mysql:\/\/)/.test(store)) throw new UsageError('--store: expected sqlite:///path, sqlite::memory: or mysql://…');
  return {
    listen: requiredListenFlag('listen', v.listen, '127.0.0.1:6443'),
    metricsListen: listenFlag('metrics-listen', v['metrics-listen'], null),
    store,
    mysqlTablePrefix: v['mysql-table-prefix'] ?? null,
    encryptionProviderConfig: v['encryption-provider-config'] || null,
    caFile: requiredFlag('ca', v.ca),
    certFile: requiredFlag('cert', v.cert),
    keyFile: requiredFlag('key', v.key),
    tokenFile: v['token-file'] || null,
    oidc: oidcFlagOptions(v),
    member: v.member ?? false,
    enablePodExec: v['enable-pod-exec'] ?? false,
    maxBodyBytes: integerFlag('max-body-bytes', v['max-body-bytes'], DEFAULT_MAX_BODY_BYTES, 1024, 1024 * 1024 * 1024),
    bookmarkIntervalMs: integerFlag('bookmark-interval-ms', v['bookmark-interval-ms'], 10_000, 10, 3_600_000),
    ...listenerLimitOptions(v),
    logLevel: logLevelFlag(v['log-level']),
    logIdentities: v['log-identities'] ?? false,
    revokedFile: fileFlag('revoked', v.revoked),
  };
}
