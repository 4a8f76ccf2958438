// The federation API server's command line (options.ts).
import { strict as assert } from 'node:assert';
import { parseApiServerOptions, type ApiServerOptions } from '../../../federation/apiserver/options.js';
import { DEFAULT_LISTENER_LIMITS } from '../../../common/listener-guard.js';
import { assertUsageError } from '../../support/usage.js';

const REQUIRED = ['--ca', 'ca.pem', '--cert', 's.pem', '--key', 's.key'];

function parse(...extra: string[]): ApiServerOptions {
  const result = parseApiServerOptions([...REQUIRED, ...extra]);
  assert.notEqual(result, 'help');
  return result as ApiServerOptions;
}

describe('apiserver: listener limit flags', function () {
  it('defaults to the listener defaults', function () {
    const options = parse();
    assert.deepEqual(
      {
        handshakeTimeoutMs: options.handshakeTimeoutMs,
        headerTimeoutMs: options.headerTimeoutMs,
        idleTimeoutMs: options.idleTimeoutMs,
        maxUnauthenticated: options.maxUnauthenticated,
        maxUnauthenticatedPerAddress: options.maxUnauthenticatedPerAddress,
      },
      DEFAULT_LISTENER_LIMITS,
    );
    assert.deepEqual(DEFAULT_LISTENER_LIMITS, { handshakeTimeoutMs: 10_000, headerTimeoutMs: 10_000, idleTimeoutMs: 60_000, maxUnauthenticated: 1000, maxUnauthenticatedPerAddress: 100 });
  });

  it('takes every limit', function () {
    const options = parse('--handshake-timeout', '500', '--header-timeout', '600', '--idle-timeout', '700', '--max-unauthenticated', '80', '--max-unauthenticated-per-ip', '9');
    assert.equal(options.handshakeTimeoutMs, 500);
    assert.equal(options.headerTimeoutMs, 600);
    assert.equal(options.idleTimeoutMs, 700);
    assert.equal(options.maxUnauthenticated, 80);
    assert.equal(options.maxUnauthenticatedPerAddress, 9);
  });

  it('refuses bad values, naming the flag', function () {
    for (const [flag, value] of [
      ['--handshake-timeout', '9'],
      ['--header-timeout', 'soon'],
      ['--header-timeout', '300001'],
      ['--idle-timeout', '0'],
      ['--max-unauthenticated', '0'],
      ['--max-unauthenticated-per-ip', '-1'],
    ] as const) {
      assertUsageError(() => parseApiServerOptions([...REQUIRED, `${flag}=${value}`]), flag);
    }
  });
});

describe('apiserver: parseApiServerOptions', function () {
  it('listens on 127.0.0.1:6443 by default', function () {
    const options = parseApiServerOptions(REQUIRED);
    assert.ok(options !== 'help');
    assert.deepEqual(options.listen, { host: '127.0.0.1', port: 6443 });
  });

  it('fuzz regression: refuses --listen off (the options held a null listener before)', function () {
    assertUsageError(() => parseApiServerOptions([...REQUIRED, '--listen', 'off']), '--listen');
  });
});

describe('apiserver: --enable-pod-exec', function () {
  it('is off by default and only taken with --member', function () {
    assert.equal(parse('--member').enablePodExec, false);
    assert.equal(parse('--member', '--enable-pod-exec').enablePodExec, true);
    assertUsageError(() => parseApiServerOptions([...REQUIRED, '--enable-pod-exec']), '--enable-pod-exec');
  });
});

describe('apiserver: --log-identities', function () {
  it('is off by default; the flag turns it on, with or without --member', function () {
    assert.equal(parse().logIdentities, false);
    assert.equal(parse('--log-identities').logIdentities, true);
    assert.equal(parse('--member', '--log-identities').logIdentities, true);
  });
});
