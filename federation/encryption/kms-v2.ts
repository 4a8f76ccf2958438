// Client of the Kubernetes KMS v2 plugin API (k8s.io/kms/apis/v2/api.proto) over a Unix-socket
// gRPC endpoint. The proto is inlined as a protobufjs JSON descriptor so nothing has to be copied
// next to the compiled JavaScript. Every call has a deadline (the config's timeout); a failure is
// KMS_UNAVAILABLE naming the provider and the gRPC status, never the payload.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from '../../common/log.js';
import { kmsPrefix, type EnvelopeHeader } from './envelope.js';
import { EncryptionError } from './errors.js';
import type { KekProvider } from './local-key.js';
import type { EncryptionMetrics } from './metrics.js';

/** package v2; service KeyManagementService { Status, Decrypt, Encrypt } — field numbers as upstream. */
export const KMS_V2_DESCRIPTOR = {
  nested: {
    v2: {
      nested: {
        KeyManagementService: {
          methods: {
            Status: { requestType: 'StatusRequest', responseType: 'StatusResponse' },
            Decrypt: { requestType: 'DecryptRequest', responseType: 'DecryptResponse' },
            Encrypt: { requestType: 'EncryptRequest', responseType: 'EncryptResponse' },
          },
        },
        StatusRequest: { fields: {} },
        StatusResponse: { fields: { version: { type: 'string', id: 1 }, healthz: { type: 'string', id: 2 }, key_id: { type: 'string', id: 3 } } },
        DecryptRequest: {
          fields: { ciphertext: { type: 'bytes', id: 1 }, uid: { type: 'string', id: 2 }, key_id: { type: 'string', id: 3 }, annotations: { keyType: 'string', type: 'bytes', id: 4 } },
        },
        DecryptResponse: { fields: { plaintext: { type: 'bytes', id: 1 } } },
        EncryptRequest: { fields: { plaintext: { type: 'bytes', id: 1 }, uid: { type: 'string', id: 2 } } },
        EncryptResponse: { fields: { ciphertext: { type: 'bytes', id: 1 }, key_id: { type: 'string', id: 2 }, annotations: { keyType: 'string', type: 'bytes', id: 3 } } },
      },
    },
  },
};

export interface KmsStatus {
  version: string;
  healthz: string;
  key_id: string;
}
interface EncryptResponse {
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}

/** The service definition, for clients and for plugins (tests implement one with it). */
export function kmsV2Client(): grpc.ServiceClientConstructor {
  const definition = protoLoader.fromJSON(KMS_V2_DESCRIPTOR as unknown as Parameters<typeof protoLoader.fromJSON>[0], { keepCase: true, defaults: true, longs: String });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { v2: { KeyManagementService: grpc.ServiceClientConstructor } };
  return pkg.v2.KeyManagementService;
}

export function kmsV2Service(): grpc.ServiceDefinition {
  return kmsV2Client().service;
}

type Unary = (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

export class KmsV2Provider implements KekProvider {
  readonly prefix: string;
  readonly kind = 'kms';
  private readonly client: grpc.Client & Record<string, Unary>;

  constructor(
    readonly name: string,
    readonly endpoint: string,
    private readonly timeoutMs: number,
    private readonly metrics?: EncryptionMetrics,
  ) {
    this.prefix = kmsPrefix(name);
    const Client = kmsV2Client();
    // grpc-js resolves unix:///path.sock itself; the channel reconnects when the plugin comes back.
    this.client = new Client(endpoint, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, Unary>;
  }

  private call<T>(method: 'Status' | 'Encrypt' | 'Decrypt', request: unknown): Promise<T> {
    const started = process.hrtime.bigint();
    return new Promise<T>((resolve, reject) => {
      this.client[method]!(request, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.metrics?.kmsCall(this.name, method, err ? grpc.status[err.code] ?? 'ERROR' : 'OK', seconds);
        if (err) {
          const code = grpc.status[err.code] ?? String(err.code);
          reject(new EncryptionError('KMS_UNAVAILABLE', `KMS provider "${this.name}" ${method} failed: ${code}: ${err.details || 'no details'}`));
        } else resolve(res as T);
      });
    });
  }

  status(): Promise<KmsStatus> {
    return this.call<KmsStatus>('Status', {});
  }

  // One Encrypt per write (a fresh data key each time): simple and what the spec asks for; the
  // cost is a KMS round trip per Secret write, which is rare next to reads (cached DEKs).
  async wrap(dek: Buffer): Promise<EnvelopeHeader> {
    const res = await this.call<EncryptResponse>('Encrypt', { plaintext: dek, uid: randomUUID() });
    if (!res.key_id) throw new EncryptionError('KMS_UNAVAILABLE', `KMS provider "${this.name}" Encrypt returned no key_id`);
    if (!res.ciphertext || res.ciphertext.length === 0 || res.ciphertext.length > 1024) {
      throw new EncryptionError('KMS_UNAVAILABLE', `KMS provider "${this.name}" Encrypt returned a ciphertext of ${res.ciphertext?.length ?? 0} bytes (expected 1–1024)`);
    }
    return { keyId: res.key_id, wrappedDek: Buffer.from(res.ciphertext), annotations: res.annotations ?? {} };
  }

  async unwrap(header: EnvelopeHeader): Promise<Buffer> {
    const res = await this.call<{ plaintext: Buffer }>('Decrypt', { ciphertext: header.wrappedDek, uid: randomUUID(), key_id: header.keyId, annotations: header.annotations });
    return Buffer.from(res.plaintext);
  }

  /** Logs the plugin's Status once (start-up); an unreachable plugin is a warning, not a failure. */
  async checkStatus(log: Logger): Promise<void> {
    try {
      const s = await this.status();
      if (s.healthz !== 'ok') log.warn({ provider: this.name, healthz: s.healthz }, 'KMS plugin reports unhealthy');
      else log.info({ provider: this.name, version: s.version, keyId: s.key_id }, 'KMS plugin ready');
    } catch (err) {
      log.warn({ provider: this.name, err: (err as Error).message }, 'KMS plugin not reachable; Secrets cannot be read or written until it is');
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
