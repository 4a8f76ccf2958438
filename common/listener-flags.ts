// The listener-limit flags every binary with a listener takes (README "Listener limits"), parsed
// in one place so their names, bounds and help text can't drift between binaries.
import { integerFlag } from './flags.js';
import { DEFAULT_LISTENER_LIMITS, type ListenerLimits } from './listener-guard.js';

const d = DEFAULT_LISTENER_LIMITS;

export const LISTENER_LIMIT_FLAGS = {
  'handshake-timeout': { type: 'string' },
  'header-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'max-unauthenticated': { type: 'string' },
  'max-unauthenticated-per-ip': { type: 'string' },
} as const;

export const LISTENER_LIMITS_HELP = `  --handshake-timeout MS       TLS handshake deadline from TCP accept [${d.handshakeTimeoutMs}]
  --header-timeout MS          request head deadline after the handshake (408 when partial) [${d.headerTimeoutMs}]
  --idle-timeout MS            idle keep-alive HTTP connections are closed (not watches, tunnels) [${d.idleTimeoutMs}]
  --max-unauthenticated N      connections per listener not yet past handshake + request head [${d.maxUnauthenticated}]
  --max-unauthenticated-per-ip N  the same, per source address (not on Unix sockets) [${d.maxUnauthenticatedPerAddress}]`;

type LimitValues = { [K in keyof typeof LISTENER_LIMIT_FLAGS]?: string | boolean | (string | boolean)[] };

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

export function listenerLimitOptions(v: LimitValues): ListenerLimits {
  return {
    handshakeTimeoutMs: integerFlag('handshake-timeout', text(v['handshake-timeout']), d.handshakeTimeoutMs, 10, 10 * 60_000),
    // Node's own requestTimeout (300 s) bounds the request head too: stay below it.
    headerTimeoutMs: integerFlag('header-timeout', text(v['header-timeout']), d.headerTimeoutMs, 10, 5 * 60_000),
    idleTimeoutMs: integerFlag('idle-timeout', text(v['idle-timeout']), d.idleTimeoutMs, 10, 24 * 60 * 60_000),
    maxUnauthenticated: integerFlag('max-unauthenticated', text(v['max-unauthenticated']), d.maxUnauthenticated, 1, 1_000_000),
    maxUnauthenticatedPerAddress: integerFlag('max-unauthenticated-per-ip', text(v['max-unauthenticated-per-ip']), d.maxUnauthenticatedPerAddress, 1, 1_000_000),
  };
}
