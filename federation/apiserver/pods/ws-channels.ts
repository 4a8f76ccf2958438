// The Kubernetes channel protocol over WebSocket (v4.channel.k8s.io, v5.channel.k8s.io) as exec
// and attach speak it: every binary message starts with its channel byte — 0 stdin, 1 stdout,
// 2 stderr, 3 status (a metav1.Status as JSON), 4 resize. v5 adds the close signal: the message
// [255, channel] says the client closed that stream (stdin EOF).
import { PassThrough, Writable } from 'node:stream';
import type WebSocket from 'ws';
import type { ExecStatus, SessionIo } from './exec.js';

export const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;
export const WS_EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

export type ChannelMessage = { kind: 'data'; channel: number; data: Buffer } | { kind: 'close'; channel: number } | { kind: 'invalid'; why: string };

/** Decodes one binary message (pure). `v5`: the close signal exists. */
export function decodeChannelMessage(message: Buffer, v5: boolean): ChannelMessage {
  if (message.length === 0) return { kind: 'invalid', why: 'empty message' };
  const channel = message[0]!;
  if (channel === CHANNEL.close && v5) {
    if (message.length !== 2) return { kind: 'invalid', why: `close signal of ${message.length} bytes` };
    return { kind: 'close', channel: message[1]! };
  }
  return { kind: 'data', channel, data: message.subarray(1) };
}

export function encodeChannelMessage(channel: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.of(channel), data]);
}

class ChannelWriter extends Writable {
  constructor(
    private readonly ws: WebSocket,
    private readonly channel: number,
  ) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) return done(new Error('websocket closed'));
    // The send callback fires once the frame is handed to the socket: backpressure for the producer.
    this.ws.send(encodeChannelMessage(this.channel, chunk), { binary: true }, (err) => done(err ?? null));
  }
}

/** The SessionIo of an exec/attach WebSocket. */
export function webSocketSessionIo(ws: WebSocket, protocol: string, want: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }): SessionIo {
  const v5 = protocol === 'v5.channel.k8s.io';
  const stdin = want.stdin ? new PassThrough() : null;
  const resize = want.tty ? new PassThrough() : null;
  const stdout = want.stdout ? new ChannelWriter(ws, CHANNEL.stdout) : null;
  const stderr = want.stderr && !want.tty ? new ChannelWriter(ws, CHANNEL.stderr) : null;
  // A write after the client left fails; the session ends through `closed`, not through these errors.
  stdout?.on('error', () => {});
  stderr?.on('error', () => {});
  let finished = false;
  const closed = new Promise<void>((resolve) => {
    ws.once('close', () => {
      stdin?.end();
      resize?.end();
      if (!finished) resolve();
    });
  });
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    if (!isBinary) return;
    const m = decodeChannelMessage(raw, v5);
    if (m.kind === 'close') {
      if (m.channel === CHANNEL.stdin) stdin?.end();
      if (m.channel === CHANNEL.resize) resize?.end();
      return;
    }
    if (m.kind !== 'data') return;
    if (m.channel === CHANNEL.stdin && stdin && !stdin.writableEnded) {
      if (!stdin.write(m.data)) {
        ws.pause();
        stdin.once('drain', () => ws.resume());
      }
    } else if (m.channel === CHANNEL.resize && resize && !resize.writableEnded) {
      resize.write(m.data);
    }
  });
  ws.on('error', () => {});
  return {
    stdin,
    stdout,
    stderr,
    resize,
    closed,
    finish(status: ExecStatus): void {
      finished = true;
      if (ws.readyState !== ws.OPEN) return;
      ws.send(encodeChannelMessage(CHANNEL.error, Buffer.from(JSON.stringify(status))), { binary: true });
      ws.close(1000);
    },
  };
}
