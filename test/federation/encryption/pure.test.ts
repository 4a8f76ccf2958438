// Pure parts of encryption at rest: the envelope format, the configuration parser, and the
// per-resource transformers with local keys (no I/O beyond key bytes in memory).
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { DEFAULT_ENCRYPTED_RESOURCES, defaultLocalKeyConfig, parseDuration, parseEncryptionConfig, resourceOfKey, ruleFor } from '../../../federation/encryption/config.js';
import { kmsPrefix, localKeyPrefix, newDataKey, openEnvelope, parseEnvelope, prefixOf, sealEnvelope } from '../../../federation/encryption/envelope.js';
import { EncryptionError, type EncryptionErrorCode } from '../../../federation/encryption/errors.js';
import { LocalKeyProvider, parseKeyFile } from '../../../federation/encryption/local-key.js';
import { DekCache, ResourceTransformer } from '../../../federation/encryption/transformer.js';
import { encryptionConfigFile } from '../../../federation/encryption/setup.js';
import { pino } from 'pino';
import type { Logger } from '../../../common/log.js';

function rejectsWith(code: EncryptionErrorCode, fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof EncryptionError && err.code === code);
}

async function rejectsAsync(code: EncryptionErrorCode, p: Promise<unknown>, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof EncryptionError, String(err));
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const KEY = '/registry/core/secrets/default/s1';
const HEADER = { keyId: 'kid-1', wrappedDek: Buffer.from('wrapped'), annotations: { 'a.example/x': Buffer.from([1, 2]) } };

describe('encryption: envelope', function () {
  it('round-trips and carries the header', function () {
    const dek = newDataKey();
    const prefix = kmsPrefix('p1');
    const stored = sealEnvelope(prefix, HEADER, dek, KEY, Buffer.from('{"data":{"password":"hunter2"}}'));
    assert.ok(stored.toString('latin1').startsWith('k8s:enc:kms:v2:p1:'));
    assert.ok(!stored.includes(Buffer.from('hunter2')));
    assert.equal(prefixOf(stored), prefix);
    const parsed = parseEnvelope(prefix, stored);
    assert.equal(parsed.header.keyId, 'kid-1');
    assert.deepEqual(parsed.header.wrappedDek, HEADER.wrappedDek);
    assert.deepEqual(parsed.header.annotations['a.example/x'], Buffer.from([1, 2]));
    assert.equal(openEnvelope(parsed, dek, KEY).toString(), '{"data":{"password":"hunter2"}}');
  });

  it('a value copied to another key fails authentication', function () {
    const dek = newDataKey();
    const stored = sealEnvelope(kmsPrefix('p1'), HEADER, dek, KEY, Buffer.from('x'));
    rejectsWith('DECRYPT_FAILED', () => openEnvelope(parseEnvelope(kmsPrefix('p1'), stored), dek, '/registry/core/secrets/default/s2'));
  });

  it('any flipped byte is a typed error, never plaintext', function () {
    const dek = newDataKey();
    const prefix = localKeyPrefix('k');
    const stored = sealEnvelope(prefix, HEADER, dek, KEY, Buffer.from('secret value'));
    for (let i = prefix.length; i < stored.length; i++) {
      const bad = Buffer.from(stored);
      bad[i]! ^= 0x01;
      assert.throws(
        () => openEnvelope(parseEnvelope(prefix, bad), dek, KEY),
        (err: unknown) => err instanceof EncryptionError && (err.code === 'DECRYPT_FAILED' || err.code === 'MALFORMED'),
        `byte ${i}`,
      );
    }
    for (const n of [prefix.length, prefix.length + 3, prefix.length + 30]) rejectsWith('MALFORMED', () => parseEnvelope(prefix, stored.subarray(0, n)));
    rejectsWith('DECRYPT_FAILED', () => openEnvelope(parseEnvelope(prefix, stored.subarray(0, stored.length - 5)), dek, KEY));
  });

  it('a wrong data key fails authentication', function () {
    const stored = sealEnvelope(kmsPrefix('p1'), HEADER, newDataKey(), KEY, Buffer.from('x'));
    rejectsWith('DECRYPT_FAILED', () => openEnvelope(parseEnvelope(kmsPrefix('p1'), stored), newDataKey(), KEY));
  });

  it('plaintext JSON has no prefix', function () {
    assert.equal(prefixOf(Buffer.from('{"kind":"Secret"}')), null);
    assert.equal(prefixOf(Buffer.from('k8s:enc:')), null);
  });
});

describe('encryption: EncryptionConfiguration', function () {
  const base = (providers: string, resources = '["secrets", "federatedsecrets.types.kubefed.io"]') =>
    `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: ${resources}\n    providers:\n${providers}`;

  it('parses kms v2, localKey and identity', function () {
    const config = parseEncryptionConfig(
      base('      - kms:\n          apiVersion: v2\n          name: vault\n          endpoint: unix:///run/kms.sock\n          timeout: 1500ms\n      - localKey:\n          name: old\n          path: /etc/k.key\n      - identity: {}\n'),
    );
    assert.deepEqual(config.rules[0]!.providers, [
      { type: 'kms', name: 'vault', endpoint: 'unix:///run/kms.sock', timeoutMs: 1500 },
      { type: 'localKey', name: 'old', path: '/etc/k.key' },
      { type: 'identity' },
    ]);
    assert.equal(parseEncryptionConfig(base('      - kms: {apiVersion: v2, name: a, endpoint: "unix:///a.sock"}\n')).rules[0]!.providers[0]!.type, 'kms');
  });

  it('rejects what Kubernetes rejects, with the field named', function () {
    const bad: Array<[string, RegExp]> = [
      [base('      - kms: {apiVersion: v1, name: a, endpoint: "unix:///a.sock"}\n'), /apiVersion: only "v2"/],
      [base('      - kms: {apiVersion: v2, name: "a:b", endpoint: "unix:///a.sock"}\n'), /name: .*no ':'/],
      [base('      - kms: {apiVersion: v2, name: a, endpoint: "tcp://h:1"}\n'), /endpoint: expected unix/],
      [base('      - kms: {apiVersion: v2, name: a, endpoint: "unix:///a.sock", timeout: soon}\n'), /timeout/],
      [base('      - aescbc: {keys: []}\n'), /not supported/],
      [base('      - identity: {}\n        kms: {}\n'), /exactly one provider/],
      [base('      - identity: {}\n', '[]'), /at least one resource/],
      [base('      - localKey: {name: a, path: relative.key}\n'), /absolute file path/],
      [base('      - localKey: {name: a, path: /a.key}\n      - localKey: {name: a, path: /b.key}\n'), /used for two different providers/],
      [base('      - identity: {}\n', '[secrets, secrets]'), /listed twice/],
      ['kind: Other\n', /kind must be EncryptionConfiguration/],
      ['{', /not valid YAML/],
    ];
    for (const [text, message] of bad) {
      assert.throws(() => parseEncryptionConfig(text), (err: unknown) => err instanceof EncryptionError && err.code === 'INVALID_CONFIG' && message.test(err.message), text);
    }
  });

  it('maps store keys to rules, exact names before wildcards', function () {
    const config = parseEncryptionConfig(
      `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: ["*.types.kubefed.io"]\n    providers: [{identity: {}}]\n  - resources: [secrets, federatedsecrets.types.kubefed.io]\n    providers: [{localKey: {name: k, path: /k}}]\n`,
    );
    assert.deepEqual(resourceOfKey('/registry/core/secrets/ns/n'), { group: '', plural: 'secrets' });
    assert.equal(resourceOfKey('/other'), null);
    assert.equal(ruleFor(config, 'secrets', '')!.providers[0]!.type, 'localKey');
    assert.equal(ruleFor(config, 'federatedsecrets', 'types.kubefed.io')!.providers[0]!.type, 'localKey');
    assert.equal(ruleFor(config, 'federatedconfigmaps', 'types.kubefed.io')!.providers[0]!.type, 'identity');
    assert.equal(ruleFor(config, 'configmaps', ''), null);
  });

  it('the generated default encrypts secrets and federatedsecrets with the local key', function () {
    const config = parseEncryptionConfig(defaultLocalKeyConfig('/var/lib/x/federation.db.key'));
    assert.deepEqual(config.rules[0]!.resources, DEFAULT_ENCRYPTED_RESOURCES);
    assert.deepEqual(config.rules[0]!.providers, [{ type: 'localKey', name: 'local1', path: '/var/lib/x/federation.db.key' }, { type: 'identity' }]);
  });

  it('parses Go durations', function () {
    assert.equal(parseDuration('3s'), 3000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.throws(() => parseDuration('3'));
  });
});

describe('encryption: transformers with local keys', function () {
  const k1 = new LocalKeyProvider('k1', randomBytes(32), '/k1.key');
  const k2 = new LocalKeyProvider('k2', randomBytes(32), '/k2.key');

  it('encrypts with the first provider; after rotation old values still decrypt', async function () {
    const before = new ResourceTransformer('secrets', [{ type: 'envelope', kek: k1 }, { type: 'identity' }], new DekCache());
    const old = await before.toStorage(KEY, Buffer.from('v1'));
    assert.equal(prefixOf(old), localKeyPrefix('k1'));
    const after = new ResourceTransformer('secrets', [{ type: 'envelope', kek: k2 }, { type: 'envelope', kek: k1 }], new DekCache());
    assert.equal((await after.fromStorage(KEY, old)).toString(), 'v1');
    const fresh = await after.toStorage(KEY, Buffer.from('v2'));
    assert.equal(prefixOf(fresh), localKeyPrefix('k2'));
    // k1 removed: the old value is now an error naming the missing provider.
    const only2 = new ResourceTransformer('secrets', [{ type: 'envelope', kek: k2 }], new DekCache());
    await rejectsAsync('UNKNOWN_PROVIDER', only2.fromStorage(KEY, old), /k8s:enc:localkey:v1:k1/);
    assert.equal((await only2.fromStorage(KEY, fresh)).toString(), 'v2');
  });

  it('legacy plaintext passes only with identity listed', async function () {
    const plain = Buffer.from('{"kind":"Secret"}');
    const withIdentity = new ResourceTransformer('secrets', [{ type: 'envelope', kek: k1 }, { type: 'identity' }], new DekCache());
    assert.deepEqual(await withIdentity.fromStorage(KEY, plain), plain);
    const without = new ResourceTransformer('secrets', [{ type: 'envelope', kek: k1 }], new DekCache());
    await rejectsAsync('UNKNOWN_PROVIDER', without.fromStorage(KEY, plain), /no identity provider/);
  });

  it('a replaced key file under the same name is WRONG_KEY, naming both key ids', async function () {
    const stored = await new ResourceTransformer('secrets', [{ type: 'envelope', kek: k1 }], new DekCache()).toStorage(KEY, Buffer.from('v'));
    const impostor = new LocalKeyProvider('k1', randomBytes(32), '/k1.key');
    const t = new ResourceTransformer('secrets', [{ type: 'envelope', kek: impostor }], new DekCache());
    await rejectsAsync('WRONG_KEY', t.fromStorage(KEY, stored), new RegExp(`${k1.keyId}.*${impostor.keyId}`));
  });

  it('key files: 32 raw bytes or base64', function () {
    const key = randomBytes(32);
    assert.deepEqual(parseKeyFile(key, '/k'), key);
    assert.deepEqual(parseKeyFile(Buffer.from(`${key.toString('base64')}\n`), '/k'), key);
    rejectsWith('INVALID_CONFIG', () => parseKeyFile(Buffer.from('short'), '/k'));
  });

  it('the DEK cache is bounded and least-recently-used', function () {
    const cache = new DekCache(2);
    const h = (id: string) => ({ keyId: id, wrappedDek: Buffer.from(id), annotations: {} });
    cache.set('p', h('a'), Buffer.from('A'));
    cache.set('p', h('b'), Buffer.from('B'));
    cache.get('p', h('a'));
    cache.set('p', h('c'), Buffer.from('C'));
    assert.equal(cache.size, 2);
    assert.ok(cache.get('p', h('a')));
    assert.equal(cache.get('p', h('b')), undefined);
  });
});

describe('encryption: default configuration by store', function () {
  function capture(): { log: Logger; lines: Array<{ msg: string; level: number }> } {
    const lines: Array<{ msg: string; level: number }> = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) }) as unknown as Logger;
    return { log, lines };
  }

  it('MySQL without a configuration warns that Secrets are not encrypted; memory stays silent', function () {
    const { log, lines } = capture();
    assert.equal(encryptionConfigFile('mysql://root@db:3306/x', null, log), null);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 40);
    assert.match(lines[0]!.msg, /without encryption at rest/);
    assert.equal(encryptionConfigFile('sqlite::memory:', null, log), null);
    assert.equal(lines.length, 1);
  });

  it('a given configuration is used as it is', function () {
    const { log } = capture();
    assert.equal(encryptionConfigFile('mysql://root@db:3306/x', '/etc/enc.yaml', log), '/etc/enc.yaml');
    assert.equal(encryptionConfigFile('sqlite:///var/x.db', '/etc/enc.yaml', log), '/etc/enc.yaml');
  });
});
