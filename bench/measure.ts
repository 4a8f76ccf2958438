// Destination servers and the three measurements (throughput, keep-alive latency,
// dial latency) that every path is put through.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { ClosedEarly } from '../common/request-failures.js';
import type { DestinationPorts } from './scenario.js';

export type Connect = () => Promise<Duplex>;

export interface MeasurementSizes {
  throughputBytes: number;
  latencyRequests: number;
  dialCount: number;
  /** Download size of stream B in the head-of-line test (alone, then beside a stalled stream). */
  holBytes: number;
  /** Concurrent idle streams whose server-side memory is measured. */
  idleStreams: number;
  /** Writes and watch samples of the store section (its list is always 10 000 objects). */
  storeWrites: number;
  storeWatchSamples: number;
  /** Idle agent links whose server-side memory is measured. */
  idleAgents: number;
  /** Federated objects × member clusters of the federation section, and its update/drift samples. */
  federation: { objects: number; members: number; updates: number; drifts: number };
  /** GETs per path (latency; twice as many for requests/s), idle watches through /clusters, bytes per port-forward run. */
  kubeproxy: { requests: number; watches: number; portForwardBytes: number };
}

const MiB = 1024 * 1024;

export const FULL_SIZES: MeasurementSizes = {
  throughputBytes: 512 * MiB,
  latencyRequests: 2000,
  dialCount: 300,
  holBytes: 256 * MiB,
  idleStreams: 10_000,
  idleAgents: 1_000,
  storeWrites: 5000,
  storeWatchSamples: 500,
  federation: { objects: 1000, members: 10, updates: 100, drifts: 30 },
  kubeproxy: { requests: 2000, watches: 1000, portForwardBytes: 256 * MiB },
};
export const QUICK_SIZES: MeasurementSizes = {
  throughputBytes: 64 * MiB,
  latencyRequests: 200,
  dialCount: 100,
  holBytes: 64 * MiB,
  idleStreams: 1_000,
  idleAgents: 100,
  storeWrites: 1000,
  storeWatchSamples: 100,
  federation: { objects: 100, members: 3, updates: 20, drifts: 10 },
  kubeproxy: { requests: 300, watches: 200, portForwardBytes: 32 * MiB },
};

export const LOOPBACK = '127.0.0.1';
const MEASUREMENT_DEADLINE_MS = 120_000;
const LATENCY_WARMUP_REQUESTS = 100;
/** A `DOWNLOAD <n>` line is far shorter; anything longer is not a benchmark client. */
const MAX_SINK_REQUEST_LINE = 64;

// Random rather than constant so that no layer on a path can win by compressing.
const DOWNLOAD_CHUNK = randomBytes(64 * 1024);
const HTTP_BODY = Buffer.alloc(100, 'a');
const GET_REQUEST = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';

export interface DestinationServers extends DestinationPorts {
  /** Bytes the sink has handed to the kernel on its connections that are still open. */
  sinkBytesSent(): number;
  close(): Promise<void>;
}

export async function startDestinationServers(): Promise<DestinationServers> {
  const sinkSockets = new Set<net.Socket>();
  const sink = net.createServer((socket) => {
    sinkSockets.add(socket);
    socket.once('close', () => sinkSockets.delete(socket));
    serveDownload(socket);
  });
  const httpServer = http.createServer((request, response) => {
    const status = request.method === 'GET' && request.url === '/' ? 200 : 404;
    response.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': HTTP_BODY.length });
    response.end(HTTP_BODY);
  });
  const sinkPort = await listenOnLoopback(sink);
  const httpPort = await listenOnLoopback(httpServer);
  return {
    sinkPort,
    httpPort,
    sinkBytesSent() {
      let sent = 0;
      // bytesWritten counts what write() accepted, including bytes still queued in the socket.
      for (const socket of sinkSockets) sent += socket.bytesWritten - socket.writableLength;
      return sent;
    },
    async close() {
      for (const socket of sinkSockets) socket.destroy();
      httpServer.closeAllConnections();
      await Promise.all([closeServer(sink), closeServer(httpServer)]);
    },
  };
}

function serveDownload(socket: net.Socket): void {
  // A client that has what it measured may reset the connection; that is not a sink failure.
  socket.on('error', () => {});
  let requestLine = '';
  const onData = (chunk: Buffer) => {
    requestLine += chunk.toString('latin1');
    const newline = requestLine.indexOf('\n');
    if (newline < 0) {
      if (requestLine.length > MAX_SINK_REQUEST_LINE) socket.destroy();
      return;
    }
    socket.off('data', onData);
    socket.resume(); // keep discarding input so the client can never block on a full window
    const match = /^DOWNLOAD (\d+)$/.exec(requestLine.slice(0, newline).trim());
    if (match) streamBytes(socket, Number(match[1]));
    else socket.destroy();
  };
  socket.on('data', onData);
}

/** Writes `total` bytes of the pre-allocated chunk, pausing whenever the socket buffer is full. */
function streamBytes(socket: net.Socket, total: number): void {
  let remaining = total;
  const writeUntilFull = () => {
    while (remaining > 0) {
      const chunk = remaining >= DOWNLOAD_CHUNK.length ? DOWNLOAD_CHUNK : DOWNLOAD_CHUNK.subarray(0, remaining);
      remaining -= chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', writeUntilFull);
        return;
      }
    }
    socket.end();
  };
  writeUntilFull();
}

/** Median MB/s (1 MB = 1e6 bytes) from request to last byte, over `runs` fresh connections. */
export async function measureThroughput(connect: Connect, bytes = FULL_SIZES.throughputBytes, runs = 3): Promise<number> {
  if (!(bytes > 0)) throw new Error('throughput needs a positive byte count');
  return withDeadline('throughput', async (deadline) => {
    const rates: number[] = [];
    for (let run = 0; run < runs; run++) {
      const stream = deadline.track(await connect());
      try {
        const requestedAt = process.hrtime.bigint();
        const download = receiveDownload(stream, bytes);
        stream.write(`DOWNLOAD ${bytes}\n`);
        const lastByteAt = await download;
        rates.push(bytes / 1e6 / (Number(lastByteAt - requestedAt) / 1e9));
      } finally {
        stream.destroy();
      }
    }
    return percentile(rates, 0.5);
  });
}

/** Resolves with the arrival time of the last byte once the stream has ended with exactly `expected` bytes. */
function receiveDownload(stream: Duplex, expected: number): Promise<bigint> {
  return new Promise((resolve, reject) => {
    let received = 0;
    let lastByteAt = 0n;
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= expected && lastByteAt === 0n) lastByteAt = process.hrtime.bigint();
    });
    stream.once('end', () => {
      if (received === expected) resolve(lastByteAt);
      else reject(new Error(`download expected ${expected} bytes, received ${received}`));
    });
    stream.once('error', reject);
    stream.once('close', () => reject(new Error(`connection closed after ${received} of ${expected} bytes`)));
  });
}

export interface LatencyPercentiles {
  p50: number;
  p99: number;
}

/** Sequential `GET /` round trips over one keep-alive connection; the first 100 warm up and are not counted. */
export async function measureLatency(connect: Connect, requests = FULL_SIZES.latencyRequests): Promise<LatencyPercentiles> {
  // Small smoke runs still keep half their requests as samples.
  const warmup = Math.min(LATENCY_WARMUP_REQUESTS, Math.floor(requests / 2));
  return withDeadline('latency', async (deadline) => {
    const stream = deadline.track(await connect());
    const responses = new HttpResponseReader(stream);
    const samplesMs: number[] = [];
    try {
      for (let request = 0; request < requests; request++) {
        const sentAt = process.hrtime.bigint();
        stream.write(GET_REQUEST);
        await responses.next();
        if (request >= warmup) samplesMs.push(elapsedMs(sentAt));
      }
    } finally {
      stream.destroy();
    }
    return { p50: percentile(samplesMs, 0.5), p99: percentile(samplesMs, 0.99) };
  });
}

/** connect() plus one `GET /` round trip on a fresh connection, `count` times. */
export async function measureDial(connect: Connect, count = FULL_SIZES.dialCount): Promise<LatencyPercentiles> {
  return withDeadline('dial', async (deadline) => {
    const samplesMs: number[] = [];
    for (let dial = 0; dial < count; dial++) {
      const startedAt = process.hrtime.bigint();
      await getOnce(deadline.track(await connect()));
      samplesMs.push(elapsedMs(startedAt));
    }
    return { p50: percentile(samplesMs, 0.5), p99: percentile(samplesMs, 0.99) };
  });
}

/** One `GET /` on a fresh stream and its complete 200 response; the stream is destroyed after. */
export async function getOnce(stream: Duplex): Promise<void> {
  try {
    const responses = new HttpResponseReader(stream);
    stream.write(GET_REQUEST);
    await responses.next();
  } finally {
    stream.destroy();
  }
}

/** Consumes complete HTTP/1.1 responses (Content-Length framed) from a stream, one per next(). */
class HttpResponseReader {
  private buffered: Buffer = Buffer.alloc(0);
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(stream: Duplex) {
    stream.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.notify();
    });
    stream.on('error', (err: Error) => this.fail(err));
    stream.on('end', () => this.fail(new ClosedEarly('connection ended while waiting for an HTTP response')));
    stream.on('close', () => this.fail(new ClosedEarly('connection closed while waiting for an HTTP response')));
  }

  async next(): Promise<void> {
    for (;;) {
      const length = completeResponseLength(this.buffered);
      if (length !== undefined) {
        this.buffered = this.buffered.subarray(length);
        return;
      }
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** Byte length of the first response in `buffered` if it is complete, otherwise undefined. */
function completeResponseLength(buffered: Buffer): number | undefined {
  const headerEnd = buffered.indexOf('\r\n\r\n');
  if (headerEnd < 0) return undefined;
  const head = buffered.toString('latin1', 0, headerEnd);
  if (!head.startsWith('HTTP/1.1 200 ')) throw new Error(`unexpected response: ${head.split('\r\n')[0]}`);
  const contentLength = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (!contentLength) throw new Error('response without Content-Length');
  const total = headerEnd + 4 + Number(contentLength[1]);
  return buffered.length >= total ? total : undefined;
}

/**
 * Destroys every stream of a measurement once it runs past the deadline, so that the
 * abandoned work stops at its next await instead of generating traffic in the background.
 */
class Deadline {
  private readonly open = new Set<Duplex>();
  private expired = false;

  track(stream: Duplex): Duplex {
    if (this.expired) {
      stream.destroy();
      throw new Error('measurement deadline passed');
    }
    this.open.add(stream);
    stream.once('close', () => this.open.delete(stream));
    return stream;
  }

  expire(): void {
    this.expired = true;
    for (const stream of this.open) stream.destroy();
  }
}

async function withDeadline<T>(what: string, work: (deadline: Deadline) => Promise<T>): Promise<T> {
  const deadline = new Deadline();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      deadline.expire();
      reject(new Error(`${what} measurement did not finish within ${MEASUREMENT_DEADLINE_MS / 1000} s`));
    }, MEASUREMENT_DEADLINE_MS);
  });
  const working = work(deadline);
  working.catch(() => {}); // after a timeout the abandoned work's own error is of no interest
  try {
    return await Promise.race([working, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Nearest-rank percentile, `fraction` in (0, 1]. */
function percentile(values: number[], fraction: number): number {
  if (values.length === 0) throw new Error('no samples');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)];
}

function elapsedMs(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

export function connectTcp(target: { host: string; port: number }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function listenOnLoopback(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
