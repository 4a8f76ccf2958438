// A real KMS v2 plugin for tests: a gRPC server on a Unix socket implementing
// v2.KeyManagementService (Status, Encrypt, Decrypt) with AES-256-GCM keys held in memory.
// rotate() adds a key and makes it current (old ones still decrypt); stop()/start() make the
// endpoint unreachable and back, on the same socket path.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { kmsV2Service } from '../../federation/encryption/kms-v2.js';

type Callback = (err: Partial<grpc.StatusObject> | null, res?: unknown) => void;

export class TestKmsPlugin {
  private server: grpc.Server | null = null;
  private readonly keys = new Map<string, Buffer>();
  currentKeyId = '';
  readonly calls = { Status: 0, Encrypt: 0, Decrypt: 0 };

  constructor(readonly socketPath: string) {
    this.rotate();
  }

  get endpoint(): string {
    return `unix://${this.socketPath}`;
  }

  /** A new key becomes current (Status and Encrypt report it); returns its id. */
  rotate(): string {
    this.currentKeyId = `test-key-${this.keys.size + 1}-${randomBytes(3).toString('hex')}`;
    this.keys.set(this.currentKeyId, randomBytes(32));
    return this.currentKeyId;
  }

  /** Forgets a key: values wrapped by it no longer decrypt. */
  forget(keyId: string): void {
    this.keys.delete(keyId);
  }

  async start(): Promise<void> {
    fs.rmSync(this.socketPath, { force: true });
    const server = new grpc.Server();
    server.addService(kmsV2Service(), {
      Status: (_call: unknown, cb: Callback) => {
        this.calls.Status++;
        cb(null, { version: 'v2', healthz: 'ok', key_id: this.currentKeyId });
      },
      Encrypt: (call: { request: { plaintext: Buffer; uid: string } }, cb: Callback) => {
        this.calls.Encrypt++;
        const key = this.keys.get(this.currentKeyId)!;
        const nonce = randomBytes(12);
        const c = createCipheriv('aes-256-gcm', key, nonce);
        const ciphertext = Buffer.concat([nonce, c.update(call.request.plaintext), c.final(), c.getAuthTag()]);
        cb(null, { ciphertext, key_id: this.currentKeyId, annotations: { 'kms.fedtunnel.test/v': Buffer.from('1') } });
      },
      Decrypt: (call: { request: { ciphertext: Buffer; key_id: string; annotations: Record<string, Buffer> } }, cb: Callback) => {
        this.calls.Decrypt++;
        const key = this.keys.get(call.request.key_id);
        if (!key) return cb({ code: grpc.status.NOT_FOUND, details: `unknown key id ${call.request.key_id}` });
        if (call.request.annotations['kms.fedtunnel.test/v']?.toString() !== '1') return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'annotations lost' });
        try {
          const w = call.request.ciphertext;
          const d = createDecipheriv('aes-256-gcm', key, w.subarray(0, 12));
          d.setAuthTag(w.subarray(w.length - 16));
          cb(null, { plaintext: Buffer.concat([d.update(w.subarray(12, w.length - 16)), d.final()]) });
        } catch {
          cb({ code: grpc.status.INVALID_ARGUMENT, details: 'ciphertext failed authentication' });
        }
      },
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(this.endpoint, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.forceShutdown();
    fs.rmSync(this.socketPath, { force: true });
  }
}
