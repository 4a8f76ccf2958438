// Flags of fedtunnel-topology-webhook: defaults, every flag, and usage errors naming the flag.
import { strict as assert } from 'node:assert';
import { DEFAULT_LISTENER_LIMITS } from '../../../common/listener-guard.js';
import { DEFAULT_MAX_REVIEW_BYTES, parseTopologyWebhookOptions, type TopologyWebhookOptions } from '../../../federation/topology-webhook/options.js';
import { assertUsageError } from '../../support/usage.js';

const REQUIRED = ['--cert', 'webhook.crt', '--key', 'webhook.key'];
const parse = (...extra: string[]): TopologyWebhookOptions => parseTopologyWebhookOptions([...REQUIRED, ...extra]) as TopologyWebhookOptions;

describe('topology webhook: options', function () {
  it('fills in the defaults', function () {
    assert.deepEqual(parse(), {
      listen: { host: '0.0.0.0', port: 8443 },
      certFile: 'webhook.crt',
      keyFile: 'webhook.key',
      maxReviewBytes: DEFAULT_MAX_REVIEW_BYTES,
      ...DEFAULT_LISTENER_LIMITS,
      logLevel: 'info',
    });
  });

  it('accepts every flag', function () {
    const o = parse('--listen', '127.0.0.1:0', '--max-review-bytes', '4096', '--handshake-timeout', '100', '--log-level', 'debug');
    assert.deepEqual(o.listen, { host: '127.0.0.1', port: 0 });
    assert.equal(o.maxReviewBytes, 4096);
    assert.equal(o.handshakeTimeoutMs, 100);
    assert.equal(o.logLevel, 'debug');
    assert.equal(parseTopologyWebhookOptions(['--help']), 'help');
  });

  it('refuses a missing certificate or key, a bad listen address and a tiny body limit', function () {
    assertUsageError(() => parseTopologyWebhookOptions(['--key', 'k']), '--cert');
    assertUsageError(() => parseTopologyWebhookOptions(['--cert', 'c']), '--key');
    assertUsageError(() => parse('--listen', 'nowhere'), '--listen');
    assertUsageError(() => parse('--max-review-bytes', '10'), '--max-review-bytes');
    assertUsageError(() => parse('--color'), /color/);
  });
});
