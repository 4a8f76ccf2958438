// Every flag of cluster-agent, validated in one place (exit 2 with a message on misuse).
import fs from 'node:fs';
import path from 'node:path';
import { parseDuration } from '../common/duration.js';
import { parseFingerprint, type RenewBefore } from '../certs/enrolment.js';
import { hostname } from 'node:os';
import type { LevelWithSilent } from 'pino';
import type { HostPort } from '../common/address.js';
import { DEFAULT_WINDOW } from '../wire/frames.js';
import { LOG_LEVELS } from '../common/log.js';
import { DAY_MS, UsageError, integerFlag, listenFlag, logLevelFlag, parseFlags, requiredFlag, requiredListenFlag } from '../common/flags.js';
import { DestinationPolicy, PolicyRuleError } from './policy.js';
import { CARRIER_KINDS, type CarrierKind } from './connector.js';
import { DEFAULT_LISTENER_LIMITS, type ListenerLimits } from '../common/listener-guard.js';
import { LISTENER_LIMIT_FLAGS, listenerLimitOptions } from '../common/listener-flags.js';

/** --cert-dir mode: the agent enrols with a bootstrap token and renews its certificate itself. */
export interface EnrolmentOptions {
  certDir: string;
  /** sha256:<hex> of the hub's CA certificate (certs/enrolment.ts certificateFingerprint). */
  caFingerprint: string;
  /** Needed only while the directory holds no valid certificate. */
  tokenFile: string | null;
  renewBefore: RenewBefore;
}

export interface AgentOptions {
  server: HostPort;
  serverName: string;
  carrier: CarrierKind;
  proxy: URL | null;
  /** With --cert-dir: ca.crt, agent.crt and agent.key in it. */
  caFile: string;
  certFile: string;
  keyFile: string;
  enrolment: EnrolmentOptions | null;
  /** The cluster's API server: always an allowed destination. */
  apiserver: HostPort | null;
  policy: DestinationPolicy;
  healthListen: HostPort | null;
  /** Header, idle and unauthenticated-connection limits of the health listener (no TLS there). */
  healthLimits: ListenerLimits;
  dialTimeoutMs: number;
  connectTimeoutMs: number;
  drainTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  maxStreams: number;
  windowBytes: number;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  instance: string;
  logLevel: LevelWithSilent;
}

export const AGENT_HELP = `usage: cluster-agent --server HOST:PORT --ca FILE --cert FILE --key FILE [options]
       cluster-agent --server HOST:PORT --ca-fingerprint sha256:HEX --cert-dir DIR [--bootstrap-token-file FILE] [options]
  --server HOST:PORT         proxy-server agent listener (required)
  --cert-dir DIR             enrolled mode: key, certificate and CA live here (0600); without a valid
                             certificate the agent enrols with the bootstrap token, and it renews
                             its certificate itself (README "Enrolling an agent")
  --ca-fingerprint sha256:HEX  the hub's CA (printed by fedtunnel-certs token create); required with --cert-dir
  --bootstrap-token-file FILE  the single-use bootstrap token (fedtunnel-certs token create)
  --renew-before D|N%        renew this long before expiry, or with N % of the validity left
                             [a third of the validity: at 2/3 of its life]
  --server-name NAME         name expected in the server certificate [host of --server]
  --carrier tls|ws|http2     raw TLS; WebSocket over TLS for HTTPS-only egress; or one HTTP/2
                             stream for egress that passes only HTTP/2 (gRPC-style) [tls]
  --proxy URL                http://[user:pass@]host:port CONNECT proxy on the way out
  --apiserver HOST:PORT      the cluster's API server; always allowed
  --allow RULE               extra allowed destination (repeatable): host:port, host:*,
                             *.suffix:port, CIDR:port. Everything else is denied.
  --health-listen HOST:PORT  /healthz /readyz, "off" disables [127.0.0.1:8093]
  --header-timeout MS        health listener: request head deadline (408 when partial) [${DEFAULT_LISTENER_LIMITS.headerTimeoutMs}]
  --idle-timeout MS          health listener: idle keep-alive connections closed [${DEFAULT_LISTENER_LIMITS.idleTimeoutMs}]
  --max-unauthenticated N    health listener: connections before a complete request head [${DEFAULT_LISTENER_LIMITS.maxUnauthenticated}]
  --max-unauthenticated-per-ip N  the same, per source address [${DEFAULT_LISTENER_LIMITS.maxUnauthenticatedPerAddress}]
  --dial-timeout MS          most time for one destination dial [10000]
  --connect-timeout MS       most time to establish the carrier [10000]
  --drain-timeout MS         on SIGTERM, how long open streams may finish [30000]
  --backoff-initial MS       first reconnect delay [500]
  --backoff-max MS           reconnect delay cap [10000]
  --max-streams N            [10000]
  --window BYTES             per-stream receive window [${DEFAULT_WINDOW}]
  --keepalive-interval MS    [10000]
  --keepalive-timeout MS     [30000]
  --instance NAME            [host name]
  --log-level LEVEL          ${LOG_LEVELS.join('|')} [info]`;

export function parseAgentOptions(argv: string[]): AgentOptions | 'help' {
  const v = parseFlags(argv, {
    server: { type: 'string' },
    'server-name': { type: 'string' },
    carrier: { type: 'string' },
    proxy: { type: 'string' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    apiserver: { type: 'string' },
    allow: { type: 'string', multiple: true },
    'health-listen': { type: 'string' },
    // The health listener has no TLS: every listener limit but the handshake deadline.
    'header-timeout': LISTENER_LIMIT_FLAGS['header-timeout'],
    'idle-timeout': LISTENER_LIMIT_FLAGS['idle-timeout'],
    'max-unauthenticated': LISTENER_LIMIT_FLAGS['max-unauthenticated'],
    'max-unauthenticated-per-ip': LISTENER_LIMIT_FLAGS['max-unauthenticated-per-ip'],
    'dial-timeout': { type: 'string' },
    'connect-timeout': { type: 'string' },
    'drain-timeout': { type: 'string' },
    'backoff-initial': { type: 'string' },
    'backoff-max': { type: 'string' },
    'max-streams': { type: 'string' },
    window: { type: 'string' },
    'keepalive-interval': { type: 'string' },
    'keepalive-timeout': { type: 'string' },
    instance: { type: 'string' },
    'log-level': { type: 'string' },
    'cert-dir': { type: 'string' },
    'ca-fingerprint': { type: 'string' },
    'bootstrap-token-file': { type: 'string' },
    'renew-before': { type: 'string' },
  });
  if (v.help) return 'help';
  const server = requiredListenFlag('server', requiredFlag('server', v.server), null);
  if (server.port === 0) throw new UsageError('--server: port must not be 0');
  const carrier = (v.carrier ?? 'tls') as CarrierKind;
  if (!CARRIER_KINDS.includes(carrier)) throw new UsageError(`--carrier: expected ${CARRIER_KINDS.join(', ')}`);
  let proxy: URL | null = null;
  if (v.proxy !== undefined) {
    try {
      proxy = new URL(v.proxy);
    } catch {
      throw new UsageError(`--proxy: not a URL: ${JSON.stringify(v.proxy)}`);
    }
    if (proxy.protocol !== 'http:') throw new UsageError('--proxy: only http:// CONNECT proxies are supported');
  }
  const apiserver = v.apiserver === undefined ? null : requiredListenFlag('apiserver', v.apiserver, null);
  if (apiserver?.port === 0) throw new UsageError('--apiserver: port must not be 0');
  const rules = [...(apiserver ? [`${apiserver.host.includes(':') ? `[${apiserver.host}]` : apiserver.host}:${apiserver.port}`] : []), ...(v.allow ?? [])];
  let policy: DestinationPolicy;
  try {
    policy = new DestinationPolicy(rules);
  } catch (error) {
    if (error instanceof PolicyRuleError) throw new UsageError(`--allow: ${error.message}`);
    throw error;
  }
  const enrolment = enrolmentFlags(v);
  const options: AgentOptions = {
    server,
    serverName: v['server-name'] ?? server.host,
    carrier,
    proxy,
    ...(enrolment
      ? { caFile: path.join(enrolment.certDir, 'ca.crt'), certFile: path.join(enrolment.certDir, 'agent.crt'), keyFile: path.join(enrolment.certDir, 'agent.key') }
      : { caFile: requiredFlag('ca', v.ca), certFile: requiredFlag('cert', v.cert), keyFile: requiredFlag('key', v.key) }),
    enrolment,
    apiserver,
    policy,
    healthListen: listenFlag('health-listen', v['health-listen'], '127.0.0.1:8093'),
    healthLimits: listenerLimitOptions(v),
    dialTimeoutMs: integerFlag('dial-timeout', v['dial-timeout'], 10_000, 1, 10 * 60_000),
    connectTimeoutMs: integerFlag('connect-timeout', v['connect-timeout'], 10_000, 1, 10 * 60_000),
    drainTimeoutMs: integerFlag('drain-timeout', v['drain-timeout'], 30_000, 0, DAY_MS),
    backoffInitialMs: integerFlag('backoff-initial', v['backoff-initial'], 500, 1, 10 * 60_000),
    backoffMaxMs: integerFlag('backoff-max', v['backoff-max'], 10_000, 1, 60 * 60_000),
    maxStreams: integerFlag('max-streams', v['max-streams'], 10_000, 1, 1_000_000),
    windowBytes: integerFlag('window', v.window, DEFAULT_WINDOW, 64 * 1024, 64 * 1024 * 1024),
    keepaliveIntervalMs: integerFlag('keepalive-interval', v['keepalive-interval'], 10_000, 10, DAY_MS),
    keepaliveTimeoutMs: integerFlag('keepalive-timeout', v['keepalive-timeout'], 30_000, 10, DAY_MS),
    instance: v.instance ?? hostname(),
    logLevel: logLevelFlag(v['log-level']),
  };
  if (options.backoffMaxMs < options.backoffInitialMs) throw new UsageError('--backoff-max must be at least --backoff-initial');
  if (options.keepaliveTimeoutMs <= options.keepaliveIntervalMs) throw new UsageError('--keepalive-timeout must be larger than --keepalive-interval');
  if (!enrolment) {
    for (const [flag, file] of [['ca', options.caFile], ['cert', options.certFile], ['key', options.keyFile]] as const) {
      if (!fs.existsSync(file)) throw new UsageError(`--${flag}: no such file ${file}`);
    }
  }
  return options;
}

function enrolmentFlags(v: Record<string, string | boolean | string[] | undefined>): EnrolmentOptions | null {
  const certDir = v['cert-dir'] as string | undefined;
  const dependent = ['ca-fingerprint', 'bootstrap-token-file', 'renew-before'].filter((flag) => v[flag] !== undefined);
  if (certDir === undefined) {
    if (dependent.length > 0) throw new UsageError(`--${dependent[0]} needs --cert-dir`);
    return null;
  }
  if (certDir === '') throw new UsageError('--cert-dir: expected a directory');
  const conflicting = ['ca', 'cert', 'key'].find((flag) => v[flag] !== undefined);
  if (conflicting) throw new UsageError(`--${conflicting} and --cert-dir exclude each other (the agent keeps its own files in --cert-dir)`);
  const fingerprint = parseFingerprint(requiredFlag('ca-fingerprint', v['ca-fingerprint'] as string | undefined));
  if (!fingerprint) throw new UsageError('--ca-fingerprint: expected sha256:<64 hex digits> (fedtunnel-certs token create prints it)');
  const tokenFile = (v['bootstrap-token-file'] as string | undefined) ?? null;
  if (tokenFile === '') throw new UsageError('--bootstrap-token-file: expected a file name');
  return { certDir, caFingerprint: fingerprint, tokenFile, renewBefore: renewBeforeFlag(v['renew-before'] as string | undefined) };
}

/** "33%" (of the validity left) or a duration ("10d", "90s"). */
export function renewBeforeFlag(value: string | undefined): RenewBefore {
  if (value === undefined) return { fraction: 1 / 3 };
  const percent = /^(\d{1,2})%$/.exec(value);
  if (percent) {
    const n = Number(percent[1]);
    if (n < 1) throw new UsageError('--renew-before: between 1% and 99%');
    return { fraction: n / 100 };
  }
  try {
    return { ms: parseDuration(value) };
  } catch (error) {
    throw new UsageError(`--renew-before: expected N% or a duration: ${(error as Error).message}`);
  }
}
