// Metrics of encryption at rest, on the registry of the process (proxy-server: its /metrics).
import { Counter, Histogram, Registry } from 'prom-client';

export class EncryptionMetrics {
  readonly operations: Counter<'provider' | 'operation' | 'result'>;
  readonly kmsDuration: Histogram<'provider' | 'method' | 'result'>;

  constructor(registry: Registry = new Registry()) {
    const registers = [registry];
    this.operations = new Counter({
      name: 'fedtunnel_encryption_operations_total',
      help: 'Values encrypted or decrypted at rest, by provider (identity: plaintext), operation and result (ok or an error code)',
      labelNames: ['provider', 'operation', 'result'],
      registers,
    });
    this.kmsDuration = new Histogram({
      name: 'fedtunnel_encryption_kms_call_duration_seconds',
      help: 'KMS v2 plugin calls (Status, Encrypt, Decrypt) by provider, method and gRPC status',
      labelNames: ['provider', 'method', 'result'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 3, 10],
      registers,
    });
  }

  operation(provider: string, operation: 'encrypt' | 'decrypt', result: string): void {
    this.operations.inc({ provider, operation, result });
  }

  kmsCall(provider: string, method: string, result: string, seconds: number): void {
    this.kmsDuration.observe({ provider, method, result }, seconds);
  }
}
