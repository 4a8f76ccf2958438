// Key rotation: rewrites every stored object of the encrypted resources, so it is encrypted by the
// current first provider of its rule. Run after putting the new key first in the configuration;
// afterwards the old provider can be removed. Each rewrite is a compare-and-swap of the value just
// read, so it is safe while API servers are serving: a concurrent write wins, and that writer
// encrypts with its own (new) configuration.
import type { Logger } from '../../common/log.js';
import { StoreError } from '../store/types.js';
import type { EncryptedStore } from './encrypted-store.js';

export interface RotationResult {
  /** Objects rewritten under the current provider. */
  rewritten: number;
  /** Objects deleted or rewritten by someone else meanwhile. */
  skipped: number;
}

export async function rotateEncryptedObjects(store: EncryptedStore, log?: Logger): Promise<RotationResult> {
  const result: RotationResult = { rewritten: 0, skipped: 0 };
  let startKey: string | undefined;
  for (;;) {
    // Keys come from the raw store: covered keys are found without decrypting anything else.
    const page = await store.inner.list('/registry/', { limit: 500, ...(startKey ? { startKey } : {}) });
    for (const raw of page.items) {
      if (!store.transformers.forKey(raw.key)) continue;
      const current = await store.get(raw.key);
      if (!current) {
        result.skipped++;
        continue;
      }
      try {
        await store.update(raw.key, current.value, current.modRevision);
        result.rewritten++;
      } catch (err) {
        if (err instanceof StoreError && (err.code === 'CONFLICT' || err.code === 'NOT_FOUND')) result.skipped++;
        else throw err;
      }
    }
    if (!page.more) break;
    startKey = page.continueKey;
    log?.info({ rewritten: result.rewritten }, 'rotation in progress');
  }
  return result;
}
