// Every flag of proxy-server, validated in one place. A bad flag is a usage error (exit 2) with a
// message that names the flag; nothing starts half-configured.
import { hostname } from 'node:os';
import type { HostPort } from '../common/address.js';
import { DEFAULT_WINDOW } from '../wire/frames.js';
import { LOG_LEVELS } from '../common/log.js';
import { DAY_MS, UsageError, choiceFlag, durationFlag, fileFlag, integerFlag, listenFlag, logLevelFlag, parseFlags, requiredFlag, requiredListenFlag } from '../common/flags.js';
import { isDnsLabel } from '../certs/names.js';
import { UNTENANTED_PLACEMENTS, type UntenantedPlacement } from '../federation/kubefed/tenancy.js';
import { OIDC_FLAGS, OIDC_HELP, oidcFlagOptions, type OidcFlagOptions } from '../federation/apiserver/oidc-flags.js';
import { DEFAULT_LISTENER_LIMITS, type ListenerLimits } from '../common/listener-guard.js';
import { LISTENER_LIMITS_HELP, LISTENER_LIMIT_FLAGS, listenerLimitOptions } from '../common/listener-flags.js';
import type { LevelWithSilent } from 'pino';

/** Every listener (agent, CONNECT, admin, embedded federation) takes the listener limits. */
export interface ServerOptions extends ListenerLimits {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** TLS listener for agents: raw TLS carrier (ALPN fedtunnel/1) and WebSocket carrier on one port. */
  agentListen: HostPort;
  /** HTTP CONNECT over TLS with client certificates; null disables it. */
  connectListen: HostPort | null;
  /** HTTP CONNECT over a Unix socket (access by file permissions, like ANP's uds mode). */
  connectUds: string | null;
  /** Cluster for CONNECT requests on the Unix socket that name none (kube egress selector). */
  udsDefaultCluster: string | null;
  /** Plain HTTP health/metrics/debug endpoint; meant for loopback or a pod network. */
  adminListen: HostPort | null;
  dialTimeoutMs: number;
  maxPendingDials: number;
  maxStreamsPerAgent: number;
  windowBytes: number;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  maxHeaderBytes: number;
  drainTimeoutMs: number;
  /** After start, how long an unknown cluster is NO_AGENT (agents still reconnecting) rather than UNKNOWN_CLUSTER. */
  agentRejoinWindowMs: number;
  /** The embedded federation API server; null disables it. */
  federationListen: HostPort | null;
  /** Its store: sqlite:///path.db (embedded, the default) or mysql://user:pass@host:3306/db. */
  federationStore: string;
  /** EncryptionConfiguration for the federation store's Secrets; null: generated next to a SQLite store. */
  federationEncryptionConfig: string | null;
  /** The federation controller (propagation, status, cluster health) beside the federation API server. */
  federationController: boolean;
  /** The controller runs on the one replica holding this lease in the store; a dead holder's lease is taken over after this long. */
  controllerLeaseDurationMs: number;
  /** On SIGTERM, /readyz answers 503 for this long before the replica stops taking work (load balancers notice first). */
  shutdownDelayMs: number;
  /** Where federated objects of a namespace without a tenant go: only clusters without a tenant, or all (README "Tenants"). */
  federationUntenantedPlacement: UntenantedPlacement;
  /** A federated object deleted while a placed cluster is unreachable: wait for it, or orphan there after the timeout. */
  unreachableDeletion: 'wait' | 'orphan';
  unreachableDeletionTimeoutMs: number;
  /** Timeout of each request the controller makes to a member cluster (through the tunnel). */
  memberRequestTimeoutMs: number;
  /** The federation dials non-tunnel addresses (CRD conversion webhooks) from the hub itself; off: only <host>.<cluster>.tunnel. */
  federationDirectEgress: boolean;
  /** Static bearer tokens for the /clusters proxy (kube-apiserver token file format); null: none. */
  tokenAuthFile?: string | null;
  /** OIDC ID tokens accepted by the embedded federation API server and the /clusters proxy (--oidc-*); null/absent: off. */
  oidc?: OidcFlagOptions | null;
  /**
   * The topology (cell) conversion webhook, https://<service>.<cluster>.tunnel:<port>/convert, and the
   * PEM CA file of its serving certificate; null: Federated<Kind> types serve v1beta1 only.
   */
  topologyWebhook: { url: string; caFile: string } | null;
  instance: string;
  logLevel: LevelWithSilent;
  /** Deny-list of certificate serials (certs/revocation.ts), re-read on SIGHUP; null: nothing revoked. */
  revokedFile: string | null;
  /** The CA's private key: the hub signs agent certificates (enrolment, renewal); null: both are off. */
  caKeyFile: string | null;
  /** Bootstrap tokens (fedtunnel-certs token create), re-read on SIGHUP; null: enrolment is off. */
  bootstrapTokensFile: string | null;
  /** The hub's ledger of used tokens (it is the only writer); default <bootstrap tokens file>.used. Replicas use the store's table and only import its ids. */
  bootstrapTokensUsedFile: string | null;
  /** Lifetime of the agent certificates the hub signs. */
  agentCertTtlMs: number;
  /** CNs of HTTP/2 front proxies (client certificates of --ca) trusted to forward agent certificates. */
  agentFrontProxies: string[];
  /** HA replicas (README "HA replicas"): membership in --federation-store's database; null/absent: a single hub. */
  replicas?: ReplicaOptions | null;
}

export interface ReplicaOptions {
  /** host:port agents and peer replicas dial to reach this replica; port 0: the bound agent port. */
  advertiseAgentAddress: HostPort;
  heartbeatMs: number;
  /** A replica whose latest heartbeat is older than this is gone. */
  ttlMs: number;
}

export const SERVER_DEFAULTS = {
  dialTimeoutMs: 10_000,
  maxPendingDials: 1_000,
  maxStreamsPerAgent: 10_000,
  windowBytes: DEFAULT_WINDOW,
  keepaliveIntervalMs: 10_000,
  keepaliveTimeoutMs: 30_000,
  ...DEFAULT_LISTENER_LIMITS,
  maxHeaderBytes: 16 * 1024,
  drainTimeoutMs: 30_000,
  shutdownDelayMs: 0,
  controllerLeaseDurationMs: 6_000,
  agentRejoinWindowMs: 30_000,
  federationStore: 'sqlite:///var/lib/fedtunnel/federation.db',
  unreachableDeletionTimeoutMs: 5 * 60_000,
  memberRequestTimeoutMs: 10_000,
  agentCertTtlMs: 30 * 86_400_000,
  replicaHeartbeatMs: 2_000,
} as const;

export const SERVER_HELP = `usage: proxy-server --ca FILE --cert FILE --key FILE [options]
  --agent-listen HOST:PORT     agent carrier listener (TLS, HTTP/2, WebSocket)  [0.0.0.0:8091]
  --agent-front-proxy CN       (repeatable) an HTTP/2 reverse proxy whose client certificate (of --ca)
                               has this CN may forward the agent certificate it verified
                               (README "HTTP/2 carrier"); default: none, agents' own certificates only
  --connect-listen HOST:PORT   HTTP CONNECT frontend over mTLS, "off" disables [0.0.0.0:8090]
  --connect-uds PATH           HTTP CONNECT frontend on a Unix socket (mode 0660)
  --uds-default-cluster NAME   cluster for Unix-socket CONNECTs that name none
  --admin-listen HOST:PORT     /healthz /readyz /metrics /debug/agents, "off" disables [127.0.0.1:8095]
  --dial-timeout MS            [${SERVER_DEFAULTS.dialTimeoutMs}]
  --max-pending-dials N        [${SERVER_DEFAULTS.maxPendingDials}]
  --max-streams-per-agent N    [${SERVER_DEFAULTS.maxStreamsPerAgent}]
  --window BYTES               per-stream flow-control window [${SERVER_DEFAULTS.windowBytes}]
  --keepalive-interval MS      [${SERVER_DEFAULTS.keepaliveIntervalMs}]
  --keepalive-timeout MS       link declared dead after this silence [${SERVER_DEFAULTS.keepaliveTimeoutMs}]
${LISTENER_LIMITS_HELP}
  --max-header-bytes N         CONNECT request header limit [${SERVER_DEFAULTS.maxHeaderBytes}]
  --drain-timeout MS           on SIGTERM, how long open streams may finish [${SERVER_DEFAULTS.drainTimeoutMs}]
  --shutdown-delay MS          on SIGTERM, answer /readyz 503 this long before refusing new work, so a
                               load balancer's health check takes the replica out first [${SERVER_DEFAULTS.shutdownDelayMs}]
  --agent-rejoin-window MS     after start, an unknown cluster is 503 NO_AGENT (agents reconnecting), then 404 [${SERVER_DEFAULTS.agentRejoinWindowMs}]
  --federation-listen HOST:PORT  embedded federation API server (Kubernetes API, mTLS), "off" disables [off]
  --federation-store URL       sqlite:///path.db | mysql://user:pass@host:3306/db [${SERVER_DEFAULTS.federationStore}]
  --federation-encryption-config FILE  Kubernetes EncryptionConfiguration for Secrets at rest
                               [SQLite: generated <db>.encryption.yaml with a local key; MySQL: none]
  --federation-controller on|off  propagation, status and cluster health (with --federation-listen) [on]
  --controller-lease-duration MS  replicas sharing a store run the controller on one of them, the holder
                               of a lease in the store; a holder silent this long is replaced [${SERVER_DEFAULTS.controllerLeaseDurationMs}]
  --federation-untenanted-placement untenanted|all  federated objects of a namespace without a tenant
                               go only to clusters without a tenant, or to all clusters [untenanted]
  --unreachable-deletion wait|orphan  a federated object deleted while a placed cluster is unreachable:
                               wait for the cluster (status says so), or orphan the object there after
                               --unreachable-deletion-timeout [wait]
  --unreachable-deletion-timeout MS  [${SERVER_DEFAULTS.unreachableDeletionTimeoutMs}]
  --member-request-timeout MS  each controller request to a member cluster [${SERVER_DEFAULTS.memberRequestTimeoutMs}]
  --federation-direct-egress   let the federation dial webhook addresses that are not <host>.<cluster>.tunnel
                               directly from the hub [off: through agents' tunnels only]
  --token-auth-file FILE       bearer tokens for /clusters/<name>/ on the CONNECT listener, one
                               token,user,uid[,"group1,group2"] a line (README "kubectl through the hub")
  OIDC ID tokens for the federation API server and /clusters (with --federation-listen; README "Authentication"):
${OIDC_HELP}
  --topology-webhook-url URL   the cell conversion webhook (fedtunnel-topology-webhook), e.g.
                               https://topology-webhook.fed-system.svc.east.tunnel:8443/convert: every
                               Federated<Kind> also serves types.kubefed.io/v1beta2 [off: v1beta1 only]
  --topology-webhook-ca FILE   PEM CA of the webhook's serving certificate (required with the URL)
  --instance NAME              [host name]; with HA replicas, each replica's identity (unique)
  HA replicas sharing --federation-store (README "HA replicas"):
  --advertise-agent-address HOST:PORT  this replica's own agent listener as agents and peers reach it
                               (port 0: the bound --agent-listen port); turns membership on [off]
  --replica-heartbeat MS       membership heartbeat period [${SERVER_DEFAULTS.replicaHeartbeatMs}]
  --replica-ttl MS             a replica silent this long is gone [3 × heartbeat]
  --log-level LEVEL            ${LOG_LEVELS.join('|')} [info]
  --revoked FILE               revoked certificate serials, one a line (fedtunnel-certs revoke); re-read on SIGHUP
  Agent enrolment and certificate renewal on the agent listener (README "Enrolling an agent"):
  --ca-key FILE                the CA's private key: the hub signs agent certificates [off: no enrolment, no renewal]
  --bootstrap-tokens FILE      bootstrap tokens (fedtunnel-certs token create); re-read on SIGHUP [off: no enrolment]
  --bootstrap-tokens-used FILE the hub's record of used tokens [<bootstrap tokens file>.used]; replicas
                               (--advertise-agent-address) record them in the federation store and
                               only import this file's ids at start
  --agent-cert-ttl DURATION    lifetime of the agent certificates the hub signs, e.g. 30d, 12h [30d]`;

/** The topology webhook flags: both or neither; an https URL, through the tunnel unless direct egress is on. */
function topologyWebhookFlags(url: string | undefined, ca: string | undefined, directEgress: boolean): ServerOptions['topologyWebhook'] {
  if (url === undefined && ca === undefined) return null;
  if (url === undefined || ca === undefined) throw new UsageError('--topology-webhook-url and --topology-webhook-ca go together');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError('--topology-webhook-url: not a URL');
  }
  if (parsed.protocol !== 'https:') throw new UsageError('--topology-webhook-url: an https URL is required');
  if (!directEgress && !parsed.hostname.toLowerCase().endsWith('.tunnel')) {
    throw new UsageError('--topology-webhook-url: the hub reaches webhooks through the tunnel (https://<service>.<cluster>.tunnel:<port>/convert); --federation-direct-egress allows other hosts');
  }
  return { url, caFile: fileFlag('topology-webhook-ca', ca)! };
}

function replicaFlags(address: string | undefined, heartbeat: string | undefined, ttl: string | undefined): ReplicaOptions | null {
  if (address === undefined) {
    if (heartbeat !== undefined || ttl !== undefined) throw new UsageError('--replica-heartbeat and --replica-ttl need --advertise-agent-address');
    return null;
  }
  const advertiseAgentAddress = requiredListenFlag('advertise-agent-address', address, null);
  if (advertiseAgentAddress.host === '0.0.0.0' || advertiseAgentAddress.host === '::') throw new UsageError('--advertise-agent-address: a wildcard address cannot be dialed; give the address agents reach');
  const heartbeatMs = integerFlag('replica-heartbeat', heartbeat, SERVER_DEFAULTS.replicaHeartbeatMs, 50, 10 * 60_000);
  const ttlMs = integerFlag('replica-ttl', ttl, 3 * heartbeatMs, 1, DAY_MS);
  if (ttlMs <= heartbeatMs) throw new UsageError('--replica-ttl must be larger than --replica-heartbeat');
  return { advertiseAgentAddress, heartbeatMs, ttlMs };
}

export function parseServerOptions(argv: string[]): ServerOptions | 'help' {
  const v = parseFlags(argv, {
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    'agent-listen': { type: 'string' },
    'connect-listen': { type: 'string' },
    'connect-uds': { type: 'string' },
    'uds-default-cluster': { type: 'string' },
    'admin-listen': { type: 'string' },
    'dial-timeout': { type: 'string' },
    'max-pending-dials': { type: 'string' },
    'max-streams-per-agent': { type: 'string' },
    window: { type: 'string' },
    'keepalive-interval': { type: 'string' },
    'keepalive-timeout': { type: 'string' },
    ...LISTENER_LIMIT_FLAGS,
    'max-header-bytes': { type: 'string' },
    'drain-timeout': { type: 'string' },
    'shutdown-delay': { type: 'string' },
    'controller-lease-duration': { type: 'string' },
    'agent-rejoin-window': { type: 'string' },
    'federation-listen': { type: 'string' },
    'federation-store': { type: 'string' },
    'federation-encryption-config': { type: 'string' },
    'federation-controller': { type: 'string' },
    'federation-untenanted-placement': { type: 'string' },
    'unreachable-deletion': { type: 'string' },
    'unreachable-deletion-timeout': { type: 'string' },
    'member-request-timeout': { type: 'string' },
    'federation-direct-egress': { type: 'boolean' },
    ...OIDC_FLAGS,
    'topology-webhook-url': { type: 'string' },
    'topology-webhook-ca': { type: 'string' },
    instance: { type: 'string' },
    'log-level': { type: 'string' },
    revoked: { type: 'string' },
    'token-auth-file': { type: 'string' },
    'ca-key': { type: 'string' },
    'bootstrap-tokens': { type: 'string' },
    'bootstrap-tokens-used': { type: 'string' },
    'agent-cert-ttl': { type: 'string' },
    'advertise-agent-address': { type: 'string' },
    'replica-heartbeat': { type: 'string' },
    'replica-ttl': { type: 'string' },
    'agent-front-proxy': { type: 'string', multiple: true },
  });
  if (v.help) return 'help';
  const udsDefaultCluster = v['uds-default-cluster'] ?? null;
  if (udsDefaultCluster !== null && !isDnsLabel(udsDefaultCluster)) throw new UsageError('--uds-default-cluster: not a DNS label');
  if (udsDefaultCluster !== null && !v['connect-uds']) throw new UsageError('--uds-default-cluster needs --connect-uds');
  const d = SERVER_DEFAULTS;
  const options: ServerOptions = {
    caFile: requiredFlag('ca', v.ca),
    certFile: requiredFlag('cert', v.cert),
    keyFile: requiredFlag('key', v.key),
    agentListen: requiredListenFlag('agent-listen', v['agent-listen'], '0.0.0.0:8091'),
    connectListen: listenFlag('connect-listen', v['connect-listen'], '0.0.0.0:8090'),
    connectUds: v['connect-uds'] ?? null,
    udsDefaultCluster,
    adminListen: listenFlag('admin-listen', v['admin-listen'], '127.0.0.1:8095'),
    dialTimeoutMs: integerFlag('dial-timeout', v['dial-timeout'], d.dialTimeoutMs, 1, 10 * 60_000),
    maxPendingDials: integerFlag('max-pending-dials', v['max-pending-dials'], d.maxPendingDials, 1, 1_000_000),
    maxStreamsPerAgent: integerFlag('max-streams-per-agent', v['max-streams-per-agent'], d.maxStreamsPerAgent, 1, 1_000_000),
    windowBytes: integerFlag('window', v.window, d.windowBytes, 64 * 1024, 64 * 1024 * 1024),
    keepaliveIntervalMs: integerFlag('keepalive-interval', v['keepalive-interval'], d.keepaliveIntervalMs, 10, DAY_MS),
    keepaliveTimeoutMs: integerFlag('keepalive-timeout', v['keepalive-timeout'], d.keepaliveTimeoutMs, 10, DAY_MS),
    ...listenerLimitOptions(v),
    maxHeaderBytes: integerFlag('max-header-bytes', v['max-header-bytes'], d.maxHeaderBytes, 1024, 1024 * 1024),
    drainTimeoutMs: integerFlag('drain-timeout', v['drain-timeout'], d.drainTimeoutMs, 0, DAY_MS),
    shutdownDelayMs: integerFlag('shutdown-delay', v['shutdown-delay'], d.shutdownDelayMs, 0, 10 * 60_000),
    agentRejoinWindowMs: integerFlag('agent-rejoin-window', v['agent-rejoin-window'], d.agentRejoinWindowMs, 0, DAY_MS),
    federationListen: listenFlag('federation-listen', v['federation-listen'], null),
    federationStore: v['federation-store'] ?? d.federationStore,
    federationEncryptionConfig: v['federation-encryption-config'] || null,
    federationController: choiceFlag('federation-controller', v['federation-controller'], ['on', 'off'], 'on') === 'on',
    controllerLeaseDurationMs: integerFlag('controller-lease-duration', v['controller-lease-duration'], d.controllerLeaseDurationMs, 300, 10 * 60_000),
    federationUntenantedPlacement: choiceFlag('federation-untenanted-placement', v['federation-untenanted-placement'], UNTENANTED_PLACEMENTS, 'untenanted'),
    unreachableDeletion: choiceFlag('unreachable-deletion', v['unreachable-deletion'], ['wait', 'orphan'], 'wait'),
    unreachableDeletionTimeoutMs: integerFlag('unreachable-deletion-timeout', v['unreachable-deletion-timeout'], d.unreachableDeletionTimeoutMs, 0, 30 * DAY_MS),
    memberRequestTimeoutMs: integerFlag('member-request-timeout', v['member-request-timeout'], d.memberRequestTimeoutMs, 10, 10 * 60_000),
    federationDirectEgress: v['federation-direct-egress'] ?? false,
    oidc: oidcFlagOptions(v),
    topologyWebhook: topologyWebhookFlags(v['topology-webhook-url'], v['topology-webhook-ca'], v['federation-direct-egress'] ?? false),
    instance: v.instance ?? hostname(),
    logLevel: logLevelFlag(v['log-level']),
    revokedFile: fileFlag('revoked', v.revoked),
    tokenAuthFile: fileFlag('token-auth-file', v['token-auth-file']),
    caKeyFile: fileFlag('ca-key', v['ca-key']),
    bootstrapTokensFile: fileFlag('bootstrap-tokens', v['bootstrap-tokens']),
    bootstrapTokensUsedFile: fileFlag('bootstrap-tokens-used', v['bootstrap-tokens-used']),
    agentCertTtlMs: durationFlag('agent-cert-ttl', v['agent-cert-ttl'], d.agentCertTtlMs, 5_000),
    replicas: replicaFlags(v['advertise-agent-address'], v['replica-heartbeat'], v['replica-ttl']),
    agentFrontProxies: frontProxyFlag(v['agent-front-proxy']),
  };
  if (options.bootstrapTokensFile && !options.caKeyFile) throw new UsageError('--bootstrap-tokens needs --ca-key (the hub signs the certificates of enrolled agents)');
  if (options.bootstrapTokensUsedFile && !options.bootstrapTokensFile) throw new UsageError('--bootstrap-tokens-used needs --bootstrap-tokens');
  if (options.bootstrapTokensFile) options.bootstrapTokensUsedFile ??= `${options.bootstrapTokensFile}.used`;
  if (!/^(sqlite:|mysql:\/\/)/.test(options.federationStore)) throw new UsageError('--federation-store: expected sqlite:///path, sqlite::memory: or mysql://…');
  if (options.oidc && !options.federationListen) throw new UsageError('--oidc-issuer-url: only with --federation-listen (it authenticates the federation API server\'s users)');
  if (options.keepaliveTimeoutMs <= options.keepaliveIntervalMs) throw new UsageError('--keepalive-timeout must be larger than --keepalive-interval');
  return options;
}

/** Front-proxy names are certificate CNs; an empty one would match nothing but hides a typo. */
function frontProxyFlag(values: string[] | undefined): string[] {
  for (const name of values ?? []) if (name.trim() === '') throw new UsageError('--agent-front-proxy: expected a certificate CN');
  return values ?? [];
}
