// Flags: --encryption-provider-config (apiserver) and the fedtunnel-encryption command line.
import { strict as assert } from 'node:assert';
import { parseApiServerOptions, type ApiServerOptions } from '../../../federation/apiserver/options.js';
import { parseEncryptionCommand } from '../../../federation/encryption/options.js';
import { assertUsageError } from '../../support/usage.js';

describe('encryption: flags', function () {
  const REQUIRED = ['--ca', 'ca.pem', '--cert', 's.pem', '--key', 's.key'];

  it('apiserver --encryption-provider-config (default: none given)', function () {
    assert.equal((parseApiServerOptions(REQUIRED) as ApiServerOptions).encryptionProviderConfig, null);
    assert.equal((parseApiServerOptions([...REQUIRED, '--encryption-provider-config', '/etc/enc.yaml']) as ApiServerOptions).encryptionProviderConfig, '/etc/enc.yaml');
  });

  it('fedtunnel-encryption rotate', function () {
    assert.deepEqual(parseEncryptionCommand(['rotate', '--store', 'sqlite:///var/x.db']), {
      command: 'rotate',
      store: 'sqlite:///var/x.db',
      encryptionConfig: null,
      mysqlTablePrefix: null,
      logLevel: 'info',
    });
    assert.equal(parseEncryptionCommand(['--help']), 'help');
    assert.equal(parseEncryptionCommand(['rotate', '--help']), 'help');
    assertUsageError(() => parseEncryptionCommand([]), /rotate/);
    assertUsageError(() => parseEncryptionCommand(['rewrap', '--store', 'sqlite:///x']), /rotate/);
    assertUsageError(() => parseEncryptionCommand(['rotate']), '--store');
    assertUsageError(() => parseEncryptionCommand(['rotate', '--store', 'sqlite::memory:']), '--store');
    assertUsageError(() => parseEncryptionCommand(['rotate', '--store', 'mysql://root@db/x']), '--encryption-provider-config');
  });
});
