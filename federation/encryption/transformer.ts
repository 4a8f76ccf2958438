// Per-resource value transformers: the first provider of a rule encrypts every write; any provider
// of the rule decrypts, picked by the stored prefix. Values without a prefix are legacy plaintext
// (written before encryption was enabled) and pass through only if the rule lists identity.
import type { Logger } from '../../common/log.js';
import { resourceOfKey, ruleFor, type EncryptionConfig, type ProviderConfig } from './config.js';
import { DEK_BYTES, newDataKey, openEnvelope, parseEnvelope, prefixOf, sealEnvelope, type EnvelopeHeader } from './envelope.js';
import { EncryptionError } from './errors.js';
import { KmsV2Provider } from './kms-v2.js';
import { loadLocalKeyProvider, type KekProvider } from './local-key.js';
import type { EncryptionMetrics } from './metrics.js';

export type Provider = { type: 'identity' } | { type: 'envelope'; kek: KekProvider };

/** Unwrapped data keys by wrapped key: reads of the same version don't call the KMS again. */
export class DekCache {
  private readonly map = new Map<string, Buffer>();

  constructor(private readonly max = 4096) {}

  private static id(prefix: string, h: EnvelopeHeader): string {
    return `${prefix}${h.keyId}\0${h.wrappedDek.toString('base64')}`;
  }

  get(prefix: string, h: EnvelopeHeader): Buffer | undefined {
    const id = DekCache.id(prefix, h);
    const dek = this.map.get(id);
    if (dek) {
      // Re-insert: Map keeps insertion order, so the oldest entry is the least recently used.
      this.map.delete(id);
      this.map.set(id, dek);
    }
    return dek;
  }

  set(prefix: string, h: EnvelopeHeader, dek: Buffer): void {
    const id = DekCache.id(prefix, h);
    this.map.delete(id);
    this.map.set(id, dek);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }

  get size(): number {
    return this.map.size;
  }
}

function errorCode(err: unknown): string {
  return err instanceof EncryptionError ? err.code : 'ERROR';
}

export class ResourceTransformer {
  constructor(
    readonly resource: string,
    readonly providers: Provider[],
    private readonly cache: DekCache,
    private readonly metrics?: EncryptionMetrics,
  ) {}

  /** The prefix new writes get (null: the first provider is identity, values stay plaintext). */
  get writePrefix(): string | null {
    const first = this.providers[0]!;
    return first.type === 'identity' ? null : first.kek.prefix;
  }

  async toStorage(key: string, plaintext: Buffer): Promise<Buffer> {
    const first = this.providers[0]!;
    if (first.type === 'identity') return plaintext;
    const { kek } = first;
    try {
      const dek = newDataKey();
      const header = await kek.wrap(dek);
      this.cache.set(kek.prefix, header, dek);
      const stored = sealEnvelope(kek.prefix, header, dek, key, plaintext);
      this.metrics?.operation(kek.name, 'encrypt', 'ok');
      return stored;
    } catch (err) {
      this.metrics?.operation(kek.name, 'encrypt', errorCode(err));
      throw err;
    }
  }

  async fromStorage(key: string, stored: Buffer): Promise<Buffer> {
    const prefix = prefixOf(stored);
    if (prefix === null) {
      if (this.providers.some((p) => p.type === 'identity')) {
        this.metrics?.operation('identity', 'decrypt', 'ok');
        return stored;
      }
      this.metrics?.operation('identity', 'decrypt', 'UNKNOWN_PROVIDER');
      throw new EncryptionError('UNKNOWN_PROVIDER', `${key} is stored unencrypted but the encryption configuration of ${this.resource} has no identity provider`);
    }
    const provider = this.providers.find((p): p is Extract<Provider, { type: 'envelope' }> => p.type === 'envelope' && p.kek.prefix === prefix);
    if (!provider) {
      this.metrics?.operation('unknown', 'decrypt', 'UNKNOWN_PROVIDER');
      throw new EncryptionError('UNKNOWN_PROVIDER', `${key} was encrypted by "${prefix.replace(/:$/, '')}", which the encryption configuration of ${this.resource} does not list`);
    }
    const { kek } = provider;
    try {
      const parsed = parseEnvelope(prefix, stored);
      let dek = this.cache.get(prefix, parsed.header);
      if (!dek) {
        dek = await kek.unwrap(parsed.header);
        if (dek.length !== DEK_BYTES) throw new EncryptionError('DECRYPT_FAILED', `provider "${kek.name}" returned a data key of ${dek.length} bytes`);
        this.cache.set(prefix, parsed.header, dek);
      }
      const plaintext = openEnvelope(parsed, dek, key);
      this.metrics?.operation(kek.name, 'decrypt', 'ok');
      return plaintext;
    } catch (err) {
      this.metrics?.operation(kek.name, 'decrypt', errorCode(err));
      throw err;
    }
  }
}

/** Every rule of a configuration with its providers (one instance per provider name). */
export class Transformers {
  private readonly byResource = new Map<string, ResourceTransformer | null>();
  private readonly cache = new DekCache();

  constructor(
    private readonly config: EncryptionConfig,
    private readonly providers: Map<string, KekProvider>,
    private readonly metrics?: EncryptionMetrics,
  ) {}

  /** The transformer of the resource a store key belongs to, or null if it is not encrypted. */
  forKey(key: string): ResourceTransformer | null {
    const r = resourceOfKey(key);
    if (!r) return null;
    const id = r.group === '' ? r.plural : `${r.plural}.${r.group}`;
    let t = this.byResource.get(id);
    if (t === undefined) {
      const rule = ruleFor(this.config, r.plural, r.group);
      const providers = rule?.providers.map((p): Provider => (p.type === 'identity' ? p : { type: 'envelope', kek: this.providers.get(p.name)! }));
      // A rule of only identity providers changes nothing: treat the resource as not encrypted.
      t = providers && providers.some((p) => p.type !== 'identity') ? new ResourceTransformer(id, providers, this.cache, this.metrics) : null;
      this.byResource.set(id, t);
    }
    return t;
  }

  kekProviders(): KekProvider[] {
    return [...this.providers.values()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.providers.values()].map((p) => p.close()));
  }
}

/** Opens every provider of the configuration (local keys are read now; KMS plugins are asked for Status). */
export async function buildTransformers(config: EncryptionConfig, opts: { log?: Logger; metrics?: EncryptionMetrics } = {}): Promise<Transformers> {
  const providers = new Map<string, KekProvider>();
  const configs = new Map<string, Exclude<ProviderConfig, { type: 'identity' }>>();
  for (const rule of config.rules) for (const p of rule.providers) if (p.type !== 'identity') configs.set(p.name, p);
  try {
    for (const [name, p] of configs) {
      if (p.type === 'localKey') providers.set(name, loadLocalKeyProvider(name, p.path, opts.log));
      else providers.set(name, new KmsV2Provider(name, p.endpoint, p.timeoutMs, opts.metrics));
    }
  } catch (err) {
    await Promise.all([...providers.values()].map((p) => p.close()));
    throw err;
  }
  if (opts.log) {
    for (const p of providers.values()) if (p instanceof KmsV2Provider) await p.checkStatus(opts.log);
  }
  return new Transformers(config, providers, opts.metrics);
}
