// Hostile clients for listener tests, and the legitimate client that must keep working meanwhile.
// Each attack resolves with how long the listener let the bad socket(s) live and what they were
// answered; nothing here sleeps to synchronise — every wait is for a socket event.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

/** Where a listener is and how a client reaches it. */
export interface Endpoint {
  name: string;
  port?: number;
  path?: string;
  /** TLS listeners: client options (certificate, ALPN); absent for plain HTTP and Unix sockets. */
  tls?: tls.ConnectionOptions;
  /** What a legitimate client sends, and the status it expects (null: a raw carrier, handshake only). */
  request: string | null;
  expect: number | null;
}

/** The address attackers use; legitimate clients come from another one, so per-address caps tell them apart. */
export const ATTACKER_ADDRESS = '127.0.0.1';
export const CLIENT_ADDRESS = '127.0.0.2';

export interface BadSocketResult {
  /** ms from the moment the attack began on a socket until the server closed it. */
  lifetimeMs: number;
  /** The first line the server answered, if any. */
  answer: string;
}

function tcp(endpoint: Endpoint, localAddress: string): net.Socket {
  const socket = endpoint.path ? net.connect(endpoint.path) : net.connect({ host: '127.0.0.1', port: endpoint.port!, localAddress });
  socket.on('error', () => undefined);
  return socket;
}

async function opened(endpoint: Endpoint, localAddress: string): Promise<net.Socket> {
  if (endpoint.tls) {
    // localAddress goes to the underlying net.connect (missing from tls' typings).
    const socket = tls.connect({ host: '127.0.0.1', port: endpoint.port!, localAddress, servername: 'localhost', ...endpoint.tls } as tls.ConnectionOptions);
    socket.on('error', () => undefined);
    await once(socket, 'secureConnect');
    return socket;
  }
  const socket = tcp(endpoint, localAddress);
  await once(socket, 'connect');
  return socket;
}

/**
 * Resolves when the server closes the socket (with the time since `start` and the first answer
 * line). `drip` runs every 100 ms for `dripForMs`: stopping short of the server's deadline keeps a
 * write from racing its answer (on a Unix socket, a write after the server closed fails with EPIPE
 * and the client discards the answer it has not read yet).
 */
function lifetime(socket: net.Socket, start: number, drip?: () => void, dripForMs = Infinity): Promise<BadSocketResult> {
  let answer = '';
  socket.on('data', (chunk: Buffer) => {
    if (answer.length < 200) answer += chunk.toString('latin1');
  });
  const timer = drip
    ? setInterval(() => {
        if (Date.now() - start < dripForMs) drip();
      }, 100)
    : undefined;
  return new Promise((resolve) => {
    socket.once('close', () => {
      if (timer) clearInterval(timer);
      resolve({ lifetimeMs: Date.now() - start, answer: answer.split('\r\n', 1)[0] ?? '' });
    });
  });
}

/** TCP connect, a TLS record header announcing a ClientHello, then one byte every 100 ms (for `dripForMs`). */
export async function slowHandshake(endpoint: Endpoint, dripForMs: number): Promise<BadSocketResult> {
  const socket = tcp(endpoint, ATTACKER_ADDRESS);
  await once(socket, 'connect');
  const start = Date.now();
  socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
  return lifetime(socket, start, () => socket.write(Buffer.from([0x01])), dripForMs);
}

/**
 * After the handshake, a request line and headers that never end (one byte every 100 ms for
 * `dripForMs`). On a raw tunnel carrier (no HTTP) the client sends nothing: the server waits for its HELLO.
 */
export async function slowHeaders(endpoint: Endpoint, dripForMs: number): Promise<BadSocketResult> {
  const socket = await opened(endpoint, ATTACKER_ADDRESS);
  const start = Date.now();
  if (endpoint.request === null) return lifetime(socket, start);
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  return lifetime(socket, start, () => socket.write('a'), dripForMs);
}

/** A request head of 64 KiB. */
export async function oversizedHeaders(endpoint: Endpoint): Promise<BadSocketResult> {
  const socket = await opened(endpoint, ATTACKER_ADDRESS);
  const start = Date.now();
  const result = lifetime(socket, start);
  socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fill: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
  return result;
}

/** 4 KiB of random bytes on a fresh TCP connection (before any TLS), and the socket kept open. */
export async function randomInput(endpoint: Endpoint): Promise<BadSocketResult> {
  const socket = tcp(endpoint, ATTACKER_ADDRESS);
  await once(socket, 'connect');
  const start = Date.now();
  const result = lifetime(socket, start);
  socket.write(randomBytes(4096));
  return result;
}

export interface FloodResult {
  sockets: number;
  /** Closed sooner than `deadlineMs` after connecting: refused by a cap (held sockets live until their deadline). */
  refusedAtOnce: number;
  /** Of those, how many never connected (the kernel refused them, e.g. a full Unix-socket backlog). */
  neverConnected: number;
  /** The longest any flood socket lived. */
  lifetimeMs: number;
}

/** `count` TCP connections at once that send nothing. */
export async function flood(endpoint: Endpoint, count: number, deadlineMs: number): Promise<FloodResult> {
  const sockets = Array.from({ length: count }, () => tcp(endpoint, ATTACKER_ADDRESS));
  const start = Date.now();
  const outcomes = await Promise.all(
    sockets.map((socket) => {
      let connected = false;
      socket.once('connect', () => (connected = true));
      return new Promise<{ ms: number; connected: boolean }>((resolve) => socket.once('close', () => resolve({ ms: Date.now() - start, connected })));
    }),
  );
  const refused = outcomes.filter((o) => o.ms < deadlineMs);
  return { sockets: count, refusedAtOnce: refused.length, neverConnected: refused.filter((o) => !o.connected).length, lifetimeMs: Math.max(...outcomes.map((o) => o.ms)) };
}

/** One legitimate exchange: connect (TLS with a valid certificate), request, status. Resolves with its latency. */
export async function legitimate(endpoint: Endpoint): Promise<number> {
  const start = Date.now();
  const socket = await opened(endpoint, CLIENT_ADDRESS);
  try {
    if (endpoint.request === null) return Date.now() - start;
    socket.write(endpoint.request);
    let head = '';
    while (!head.includes('\r\n')) {
      const [chunk] = (await Promise.race([once(socket, 'data'), once(socket, 'close').then(() => [Buffer.alloc(0)])])) as [Buffer];
      if (chunk.length === 0) throw new Error(`${endpoint.name}: closed before an answer`);
      head += chunk.toString('latin1');
    }
    const status = Number(head.split(' ')[1]);
    if (status !== endpoint.expect) throw new Error(`${endpoint.name}: answered ${head.split('\r\n')[0]}`);
    return Date.now() - start;
  } finally {
    socket.destroy();
  }
}

export interface LegitimateStats {
  tried: number;
  succeeded: number;
  p99Ms: number;
  errors: string[];
}

/** Runs legitimate exchanges one after another until stop() is called. */
export function legitimateLoop(endpoint: Endpoint): { stop(): Promise<LegitimateStats> } {
  const latencies: number[] = [];
  const errors: string[] = [];
  let tried = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      tried++;
      try {
        latencies.push(await legitimate(endpoint));
      } catch (error) {
        errors.push((error as Error).message);
      }
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const sorted = [...latencies].sort((a, b) => a - b);
      const p99Ms = sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
      return { tried, succeeded: latencies.length, p99Ms, errors };
    },
  };
}
