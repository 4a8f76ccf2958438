// Dials a destination inside the cluster on behalf of a stream, applying the allowlist, and
// reports failures as DialError codes the server maps to HTTP statuses.
import net from 'node:net';
import dns from 'node:dns/promises';
import { DialError } from '../wire/errors.js';
import { SocketFrameReader } from '../wire/frame-reader.js';
import type { DestinationPolicy } from './policy.js';

export function dialErrorFromSocketError(error: NodeJS.ErrnoException, target: string): DialError {
  switch (error.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
    case 'EAI_NODATA':
      return new DialError('NAME_NOT_RESOLVED', `cannot resolve ${target}: ${error.code}`);
    case 'ECONNREFUSED':
      return new DialError('CONNECTION_REFUSED', `connection to ${target} refused`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new DialError('HOST_UNREACHABLE', `${target} unreachable: ${error.code}`);
    case 'ETIMEDOUT':
      return new DialError('DIAL_TIMEOUT', `connection to ${target} timed out`);
    default:
      return new DialError('DIAL_FAILED', `connection to ${target} failed: ${error.code ?? error.message}`);
  }
}

async function resolveAllowedAddress(host: string, port: number, policy: DestinationPolicy, signal: AbortSignal): Promise<string> {
  let addresses: { address: string }[];
  try {
    addresses = await dns.lookup(host, { all: true });
  } catch (error) {
    throw dialErrorFromSocketError(error as NodeJS.ErrnoException, `${host}:${port}`);
  }
  if (signal.aborted) throw new DialError('CANCELLED', 'dial cancelled');
  const allowed = addresses.find((a) => policy.allowsAddress(a.address, port));
  if (!allowed) throw new DialError('POLICY_DENIED', `${host}:${port} resolves to no address the agent's allowlist permits`);
  return allowed.address;
}

export interface Destination {
  socket: net.Socket;
  /** Reads the socket into DATA frames; pass it to splice(). */
  reader: SocketFrameReader;
}

export async function dialDestination(host: string, port: number, policy: DestinationPolicy, timeoutMs: number, signal: AbortSignal): Promise<Destination> {
  const target = `${host}:${port}`;
  let connectHost = host;
  if (!policy.allowsName(host, port)) {
    if (net.isIP(host) !== 0 || !policy.hasAddressRulesFor(port)) throw new DialError('POLICY_DENIED', `${target} is not in the agent's destination allowlist`);
    connectHost = await resolveAllowedAddress(host, port, policy, signal);
  }
  return new Promise<Destination>((resolve, reject) => {
    const reader = new SocketFrameReader();
    const socket = net.connect({ host: connectHost, port, allowHalfOpen: true, noDelay: true, onread: reader.onread });
    const fail = (error: DialError): void => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onError = (error: NodeJS.ErrnoException): void => fail(dialErrorFromSocketError(error, target));
    const onAbort = (): void => fail(new DialError('CANCELLED', 'dial cancelled'));
    const timer = setTimeout(() => fail(new DialError('DIAL_TIMEOUT', `connection to ${target} not established within ${timeoutMs} ms`)), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      cleanup();
      resolve({ socket, reader });
    });
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
  });
}
