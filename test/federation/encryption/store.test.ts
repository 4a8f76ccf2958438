// EncryptedStore over a real SQLite store with a real KMS v2 plugin (gRPC on a Unix socket):
// values at rest are ciphertext, every read path (get, list, write results, watch events and
// prevKv) gives plaintext, an unreachable plugin is ENCRYPTION_FAILED for Secrets only, and a
// plugin key rotation plus the rotate pass moves every value to the new key.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as pause } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { parseEncryptionConfig } from '../../../federation/encryption/config.js';
import { EncryptedStore } from '../../../federation/encryption/encrypted-store.js';
import { parseEnvelope, kmsPrefix } from '../../../federation/encryption/envelope.js';
import { EncryptionMetrics } from '../../../federation/encryption/metrics.js';
import { rotateEncryptedObjects } from '../../../federation/encryption/rotate.js';
import { buildTransformers } from '../../../federation/encryption/transformer.js';
import { openStore } from '../../../federation/store/open.js';
import { StoreError, type Event } from '../../../federation/store/types.js';
import { createLogger } from '../../../common/log.js';
import { TestKmsPlugin } from '../../support/kms-plugin.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { scratchDir } from '../../support/paths.js';

const SECRET = '/registry/core/secrets/default/db';
const CONFIGMAP = '/registry/core/configmaps/default/c';

describe('encryption: EncryptedStore with a KMS v2 plugin', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let plugin: TestKmsPlugin;
  let store: EncryptedStore;
  let registry: Registry;

  beforeEach(async function () {
    baseline = await resourceBaseline();
    // Unix socket paths are limited to ~107 bytes: keep the name short.
    plugin = new TestKmsPlugin(path.join(scratchDir('kms'), `${randomBytes(3).toString('hex')}.sock`));
    await plugin.start();
    const config = parseEncryptionConfig(
      `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - kms: {apiVersion: v2, name: testkms, endpoint: "${plugin.endpoint}", timeout: 2s}\n      - identity: {}\n`,
    );
    registry = new Registry();
    const transformers = await buildTransformers(config, { log: createLogger('test', 'silent'), metrics: new EncryptionMetrics(registry) });
    store = new EncryptedStore(await openStore('sqlite::memory:'), transformers);
  });

  afterEach(async function () {
    await store.close();
    await plugin.stop();
    await assertNoLeakedResources(baseline);
  });

  it('stores ciphertext and reads plaintext on every path', async function () {
    const events: Event[] = [];
    const watch = store.watch('/registry/core/', 0, (e) => events.push(e), (e) => assert.fail(e.message));
    const created = await store.create(SECRET, Buffer.from('{"data":"s3cr3t-one"}'));
    assert.equal(created.value.toString(), '{"data":"s3cr3t-one"}');
    await store.create(CONFIGMAP, Buffer.from('{"data":"plain"}'));
    const updated = await store.update(SECRET, Buffer.from('{"data":"s3cr3t-two"}'), created.modRevision);
    const raw = await store.inner.get(SECRET);
    assert.ok(raw!.value.toString('latin1').startsWith(kmsPrefix('testkms')));
    assert.ok(!raw!.value.includes(Buffer.from('s3cr3t')));
    assert.equal(parseEnvelope(kmsPrefix('testkms'), raw!.value).header.keyId, plugin.currentKeyId);
    assert.equal((await store.inner.get(CONFIGMAP))!.value.toString(), '{"data":"plain"}');
    assert.equal((await store.get(SECRET))!.value.toString(), '{"data":"s3cr3t-two"}');
    assert.equal((await store.get(SECRET, { revision: created.modRevision }))!.value.toString(), '{"data":"s3cr3t-one"}');
    const list = await store.list('/registry/core/');
    assert.deepEqual(list.items.map((kv) => kv.value.toString()), ['{"data":"plain"}', '{"data":"s3cr3t-two"}']);
    const deleted = await store.delete(SECRET, updated.modRevision);
    assert.equal(deleted.value.toString(), '{"data":"s3cr3t-two"}');
    for (let i = 0; i < 100 && events.length < 4; i++) await pause(10);
    watch.cancel();
    assert.deepEqual(
      events.map((e) => [e.type, e.kv.key, e.kv.value.toString(), e.prevKv?.value.toString()]),
      [
        ['PUT', SECRET, '{"data":"s3cr3t-one"}', undefined],
        ['PUT', CONFIGMAP, '{"data":"plain"}', undefined],
        ['PUT', SECRET, '{"data":"s3cr3t-two"}', '{"data":"s3cr3t-one"}'],
        ['DELETE', SECRET, '', '{"data":"s3cr3t-two"}'],
      ],
    );
    // Reads are served from the DEK cache: one Encrypt per write, no Decrypt at all here.
    assert.equal(plugin.calls.Encrypt, 2);
    assert.equal(plugin.calls.Decrypt, 0);
    const metrics = await registry.metrics();
    assert.match(metrics, /fedtunnel_encryption_operations_total\{provider="testkms",operation="encrypt",result="ok"\} 2/);
    assert.match(metrics, /fedtunnel_encryption_kms_call_duration_seconds_count\{provider="testkms",method="Encrypt",result="OK"\} 2/);
  });

  it('an unreachable plugin fails Secrets with ENCRYPTION_FAILED, other keys keep working, and it recovers', async function () {
    const kv = await store.create(SECRET, Buffer.from('{"data":"s3cr3t"}'));
    await plugin.stop();
    const failed = (err: unknown) => {
      assert.ok(err instanceof StoreError, String(err));
      assert.equal(err.code, 'ENCRYPTION_FAILED');
      assert.match(err.message, /KMS provider "testkms" Encrypt failed: UNAVAILABLE/);
      return true;
    };
    await assert.rejects(store.update(SECRET, Buffer.from('{"data":"x"}'), kv.modRevision), failed);
    await assert.rejects(store.create('/registry/core/secrets/default/other', Buffer.from('{}')), failed);
    await store.create(CONFIGMAP, Buffer.from('{}'));
    assert.equal((await store.get(CONFIGMAP))!.value.toString(), '{}');
    await plugin.start();
    // The channel reconnects with backoff: retry for a while.
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      try {
        await store.update(SECRET, Buffer.from('{"data":"back"}'), kv.modRevision);
        ok = true;
      } catch {
        await pause(100);
      }
    }
    assert.ok(ok, 'writes work again once the plugin is back');
  });

  it('an uncached value with the plugin down ends a watch with ENCRYPTION_FAILED', async function () {
    await store.create(SECRET, Buffer.from('{"data":"s3cr3t"}'));
    // A second store over the same database has an empty DEK cache, like a restarted server.
    const transformers = await buildTransformers(
      parseEncryptionConfig(`apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - kms: {apiVersion: v2, name: testkms, endpoint: "${plugin.endpoint}", timeout: 500ms}\n`),
    );
    const cold = new EncryptedStore(store.inner, transformers);
    try {
      assert.equal((await cold.get(SECRET))!.value.toString(), '{"data":"s3cr3t"}');
      assert.equal(plugin.calls.Decrypt, 1);
      await store.update(SECRET, Buffer.from('{"data":"s3cr3t-2"}'), (await store.get(SECRET))!.modRevision);
      await plugin.stop();
      await assert.rejects(cold.get(SECRET), (err: unknown) => err instanceof StoreError && err.code === 'ENCRYPTION_FAILED' && /Decrypt failed/.test(err.message));
      const error = await new Promise<StoreError>((resolve) => cold.watch('/registry/core/secrets/', 0, () => undefined, resolve));
      assert.equal(error.code, 'ENCRYPTION_FAILED');
    } finally {
      await transformers.close();
    }
  });

  it('plugin key rotation: old values decrypt, the rotate pass moves everything to the new key', async function () {
    for (let i = 0; i < 3; i++) await store.create(`${SECRET}${i}`, Buffer.from(`{"n":${i}}`));
    // A legacy plaintext value written before encryption was enabled.
    await store.inner.create(`${SECRET}-legacy`, Buffer.from('{"legacy":true}'));
    const oldKey = plugin.currentKeyId;
    const newKey = plugin.rotate();
    const result = await rotateEncryptedObjects(store);
    assert.deepEqual(result, { rewritten: 4, skipped: 0 });
    plugin.forget(oldKey);
    const page = await store.inner.list('/registry/core/secrets/');
    for (const kv of page.items) assert.equal(parseEnvelope(kmsPrefix('testkms'), kv.value).header.keyId, newKey, kv.key);
    const items = (await store.list('/registry/core/secrets/')).items.map((kv) => kv.value.toString());
    assert.deepEqual(items, ['{"legacy":true}', '{"n":0}', '{"n":1}', '{"n":2}']);
  });
});
