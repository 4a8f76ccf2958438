// A Store that encrypts the values of configured resources on the way in and decrypts them on the
// way out (get, list, the value returned by writes, watch events and their prevKv). Keys, revisions
// and every other resource pass through unchanged. Any failure to transform is a StoreError
// 'ENCRYPTION_FAILED' with a message that says why — the caller never sees ciphertext instead of
// a value, nor another object's plaintext (values are bound to their key).
import { StoreError, type Event, type KeyValue, type ListResult, type Store, type Watch } from '../store/types.js';
import { EncryptionError } from './errors.js';
import type { Transformers } from './transformer.js';

function failed(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const message = err instanceof EncryptionError ? err.message : `encryption failed: ${(err as Error)?.message ?? String(err)}`;
  return new StoreError('ENCRYPTION_FAILED', message);
}

export class EncryptedStore implements Store {
  constructor(
    readonly inner: Store,
    readonly transformers: Transformers,
  ) {}

  private async encrypt(key: string, value: Buffer): Promise<Buffer> {
    const t = this.transformers.forKey(key);
    if (!t) return value;
    try {
      return await t.toStorage(key, value);
    } catch (err) {
      throw failed(err);
    }
  }

  private async decryptKv(kv: KeyValue): Promise<KeyValue> {
    const t = this.transformers.forKey(kv.key);
    // Tombstones carry an empty value: nothing to decrypt.
    if (!t || kv.value.length === 0) return kv;
    try {
      return { ...kv, value: await t.fromStorage(kv.key, kv.value) };
    } catch (err) {
      throw failed(err);
    }
  }

  private needsDecrypt(e: Event): boolean {
    return this.transformers.forKey(e.kv.key) !== null;
  }

  currentRevision(): Promise<number> {
    return this.inner.currentRevision();
  }

  async get(key: string, opts?: { revision?: number }): Promise<KeyValue | null> {
    const kv = await this.inner.get(key, opts);
    return kv ? this.decryptKv(kv) : null;
  }

  async list(prefix: string, opts?: { revision?: number; limit?: number; startKey?: string }): Promise<ListResult> {
    const result = await this.inner.list(prefix, opts);
    return { ...result, items: await Promise.all(result.items.map((kv) => this.decryptKv(kv))) };
  }

  async create(key: string, value: Buffer): Promise<KeyValue> {
    const kv = await this.inner.create(key, await this.encrypt(key, value));
    return { ...kv, value };
  }

  async update(key: string, value: Buffer, expectedModRevision: number): Promise<KeyValue> {
    const kv = await this.inner.update(key, await this.encrypt(key, value), expectedModRevision);
    return { ...kv, value };
  }

  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.decryptKv(await this.inner.delete(key, expectedModRevision));
  }

  watch(prefix: string, fromRevision: number, onEvent: (e: Event) => void, onError: (e: StoreError) => void): Watch {
    let ended = false;
    // Decryption may wait for the KMS: events are chained so they still arrive in revision order.
    // While nothing is pending, events that need no decryption are delivered at once.
    let pending = 0;
    let chain: Promise<void> = Promise.resolve();
    const end = (err: StoreError): void => {
      if (ended) return;
      ended = true;
      inner.cancel();
      onError(err);
    };
    const inner = this.inner.watch(
      prefix,
      fromRevision,
      (e) => {
        if (ended) return;
        if (pending === 0 && !this.needsDecrypt(e)) return onEvent(e);
        pending++;
        const decrypting = Promise.all([this.decryptKv(e.kv), e.prevKv ? this.decryptKv(e.prevKv) : undefined]);
        // Handled below in order; this only keeps an early rejection from being reported as unhandled.
        decrypting.catch(() => undefined);
        chain = chain.then(async () => {
          try {
            if (ended) return;
            let kv: KeyValue;
            let prevKv: KeyValue | undefined;
            try {
              [kv, prevKv] = await decrypting;
            } catch (err) {
              return end(failed(err));
            }
            if (ended) return;
            // Events are shared by all watchers of the inner store: build a new one, never mutate.
            onEvent({ ...e, kv, ...(prevKv ? { prevKv } : {}) });
          } finally {
            pending--;
          }
        });
        // A throwing consumer must not leave a rejected chain behind (an unhandled rejection
        // would end the process): it ends this watch instead.
        chain = chain.catch((err: unknown) => end(failed(err)));
      },
      (err) => {
        // Let events already being decrypted arrive first, as the inner store delivered them first.
        chain = chain.then(() => end(err));
      },
    );
    return {
      cancel() {
        ended = true;
        inner.cancel();
      },
    };
  }

  compact(revision: number): Promise<void> {
    return this.inner.compact(revision);
  }

  async close(): Promise<void> {
    try {
      await this.inner.close();
    } finally {
      await this.transformers.close();
    }
  }
}
