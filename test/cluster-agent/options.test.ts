import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAgentOptions, type AgentOptions } from '../../cluster-agent/options.js';
import { DEFAULT_WINDOW } from '../../wire/frames.js';
import { DEFAULT_LISTENER_LIMITS } from '../../common/listener-guard.js';
import { assertUsageError } from '../support/usage.js';

describe('cluster-agent: parseAgentOptions', function () {
  let dir: string;
  let files: { ca: string; cert: string; key: string };
  let required: string[];

  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-options-'));
    files = { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'agent.pem'), key: path.join(dir, 'agent-key.pem') };
    for (const file of Object.values(files)) fs.writeFileSync(file, 'placeholder\n');
    required = ['--server', 'proxy.example.com:8091', '--ca', files.ca, '--cert', files.cert, '--key', files.key];
  });

  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function parse(...extra: string[]): AgentOptions {
    const result = parseAgentOptions([...required, ...extra]);
    assert.notEqual(result, 'help');
    return result as AgentOptions;
  }

  /** parseAgentOptions(argv) must throw a UsageError naming `flag`. */
  function usageError(argv: string[], flag: string | RegExp): void {
    assertUsageError(() => parseAgentOptions(argv), flag);
  }

  it('fills in the defaults', function () {
    const options = parse();
    assert.deepEqual(options.server, { host: 'proxy.example.com', port: 8091 });
    assert.equal(options.serverName, 'proxy.example.com');
    assert.equal(options.carrier, 'tls');
    assert.equal(options.proxy, null);
    assert.equal(options.caFile, files.ca);
    assert.equal(options.certFile, files.cert);
    assert.equal(options.keyFile, files.key);
    assert.equal(options.apiserver, null);
    assert.deepEqual(options.healthListen, { host: '127.0.0.1', port: 8093 });
    assert.deepEqual(options.healthLimits, DEFAULT_LISTENER_LIMITS);
    assert.equal(options.dialTimeoutMs, 10_000);
    assert.equal(options.connectTimeoutMs, 10_000);
    assert.equal(options.drainTimeoutMs, 30_000);
    assert.equal(options.backoffInitialMs, 500);
    assert.equal(options.backoffMaxMs, 10_000);
    assert.equal(options.maxStreams, 10_000);
    assert.equal(options.windowBytes, DEFAULT_WINDOW);
    assert.equal(options.keepaliveIntervalMs, 10_000);
    assert.equal(options.keepaliveTimeoutMs, 30_000);
    assert.equal(options.instance, os.hostname());
    assert.equal(options.logLevel, 'info');
    // Default deny: without --apiserver or --allow nothing is reachable.
    assert.ok(!options.policy.allowsName('kubernetes.default.svc', 443));
  });

  it('returns "help" for --help', function () {
    assert.equal(parseAgentOptions(['--help']), 'help');
  });

  it('accepts every flag', function () {
    const options = parse(
      '--server-name', 'tunnel.internal',
      '--carrier', 'ws',
      '--proxy', 'http://user:pass@egress:3128',
      '--apiserver', '10.96.0.1:443',
      '--allow', '*.svc.cluster.local:*',
      '--allow', '10.0.0.0/8:5432',
      '--health-listen', 'off',
      '--header-timeout', '500',
      '--idle-timeout', '600',
      '--max-unauthenticated', '7',
      '--max-unauthenticated-per-ip', '3',
      '--dial-timeout', '2000',
      '--connect-timeout', '3000',
      '--drain-timeout', '0',
      '--backoff-initial', '100',
      '--backoff-max', '100',
      '--max-streams', '5',
      '--window', '65536',
      '--keepalive-interval', '10',
      '--keepalive-timeout', '11',
      '--instance', 'agent-7',
      '--log-level', 'debug',
    );
    assert.equal(options.serverName, 'tunnel.internal');
    assert.equal(options.carrier, 'ws');
    assert.equal(options.proxy?.href, 'http://user:pass@egress:3128/');
    assert.deepEqual(options.apiserver, { host: '10.96.0.1', port: 443 });
    assert.equal(options.healthListen, null);
    assert.deepEqual(options.healthLimits, { ...DEFAULT_LISTENER_LIMITS, headerTimeoutMs: 500, idleTimeoutMs: 600, maxUnauthenticated: 7, maxUnauthenticatedPerAddress: 3 });
    assert.equal(options.dialTimeoutMs, 2000);
    assert.equal(options.connectTimeoutMs, 3000);
    assert.equal(options.drainTimeoutMs, 0);
    assert.equal(options.backoffInitialMs, 100);
    assert.equal(options.backoffMaxMs, 100);
    assert.equal(options.maxStreams, 5);
    assert.equal(options.windowBytes, 65536);
    assert.equal(options.keepaliveIntervalMs, 10);
    assert.equal(options.keepaliveTimeoutMs, 11);
    assert.equal(options.instance, 'agent-7');
    assert.equal(options.logLevel, 'debug');
    assert.ok(options.policy.allowsName('10.96.0.1', 443), '--apiserver is always allowed');
    assert.ok(!options.policy.allowsName('10.96.0.1', 80));
    assert.ok(options.policy.allowsName('db.ns.svc.cluster.local', 5432));
    assert.ok(options.policy.allowsName('10.1.2.3', 5432));
    assert.ok(!options.policy.allowsName('10.1.2.3', 22));
  });

  it('--cert-dir mode: files in the directory, a pinned CA fingerprint, renewal at 2/3 by default', function () {
    const fingerprint = `sha256:${'AB:'.repeat(31)}AB`;
    const options = parseAgentOptions(['--server', 'hub:8091', '--cert-dir', '/var/lib/agent', '--ca-fingerprint', fingerprint, '--bootstrap-token-file', '/run/token']) as AgentOptions;
    assert.equal(options.caFile, '/var/lib/agent/ca.crt');
    assert.equal(options.certFile, '/var/lib/agent/agent.crt');
    assert.equal(options.keyFile, '/var/lib/agent/agent.key');
    assert.deepEqual(options.enrolment, { certDir: '/var/lib/agent', caFingerprint: `sha256:${'ab'.repeat(32)}`, tokenFile: '/run/token', renewBefore: { fraction: 1 / 3 } });
    const withRenew = (value: string) => (parseAgentOptions(['--server', 'hub:8091', '--cert-dir', 'd', '--ca-fingerprint', fingerprint, '--renew-before', value]) as AgentOptions).enrolment!.renewBefore;
    assert.deepEqual(withRenew('20%'), { fraction: 0.2 });
    assert.deepEqual(withRenew('5d'), { ms: 5 * 86_400_000 });
    usageError(['--server', 'hub:8091', '--cert-dir', 'd'], '--ca-fingerprint');
    usageError(['--server', 'hub:8091', '--cert-dir', 'd', '--ca-fingerprint', 'sha256:abcd'], '--ca-fingerprint');
    usageError(['--server', 'hub:8091', '--cert-dir', 'd', '--ca-fingerprint', fingerprint, '--renew-before', 'soon'], '--renew-before');
    usageError([...required, '--cert-dir', 'd', '--ca-fingerprint', fingerprint], /--ca and --cert-dir exclude each other/);
    usageError([...required, '--bootstrap-token-file', 't'], /--bootstrap-token-file needs --cert-dir/);
  });

  it('allows an IPv6 --apiserver', function () {
    const options = parse('--apiserver', '[fd00::1]:6443');
    assert.deepEqual(options.apiserver, { host: 'fd00::1', port: 6443 });
    assert.ok(options.policy.allowsName('fd00::1', 6443));
  });

  it('allows an IPv6 --server', function () {
    const options = parseAgentOptions(['--server', '[::1]:8091', '--ca', files.ca, '--cert', files.cert, '--key', files.key]) as AgentOptions;
    assert.deepEqual(options.server, { host: '::1', port: 8091 });
    assert.equal(options.serverName, '::1');
  });

  describe('usage errors', function () {
    it('requires --server, --ca, --cert and --key', function () {
      usageError(['--ca', files.ca, '--cert', files.cert, '--key', files.key], '--server');
      usageError(['--server', 'p:1', '--cert', files.cert, '--key', files.key], '--ca');
      usageError(['--server', 'p:1', '--ca', files.ca, '--key', files.key], '--cert');
      usageError(['--server', 'p:1', '--ca', files.ca, '--cert', files.cert], '--key');
    });

    it('requires the --ca, --cert and --key files to exist', function () {
      const missing = path.join(dir, 'missing.pem');
      usageError(['--server', 'p:1', '--ca', missing, '--cert', files.cert, '--key', files.key], /--ca: no such file/);
      usageError(['--server', 'p:1', '--ca', files.ca, '--cert', missing, '--key', files.key], /--cert: no such file/);
      usageError(['--server', 'p:1', '--ca', files.ca, '--cert', files.cert, '--key', missing], /--key: no such file/);
    });

    it('refuses a bad --server', function () {
      for (const value of ['proxy', 'proxy:', 'proxy:http', 'proxy:65536', 'proxy:0', 'pro xy:1', '::1:8091', '[::1]8091']) {
        usageError(['--server', value, '--ca', files.ca, '--cert', files.cert, '--key', files.key], '--server');
      }
    });

    it('fuzz regression: refuses --server off (a TypeError before) and --apiserver off', function () {
      usageError(['--server', 'off', '--ca', files.ca, '--cert', files.cert, '--key', files.key], '--server');
      usageError([...required, '--apiserver', 'off'], '--apiserver');
    });

    it('refuses bad numbers', function () {
      for (const [flag, value] of [
        ['--dial-timeout', 'abc'],
        ['--dial-timeout', '0'],
        ['--dial-timeout', '600001'],
        ['--dial-timeout', '1.5'],
        ['--dial-timeout', '1e3'],
        ['--dial-timeout', '-5'],
        ['--dial-timeout', ''],
        ['--connect-timeout', '0'],
        ['--drain-timeout', '86400001'],
        ['--backoff-initial', '0'],
        ['--backoff-max', 'x'],
        ['--max-streams', '0'],
        ['--max-streams', '1000001'],
        ['--window', '65535'],
        ['--window', '67108865'],
        ['--keepalive-interval', '9'],
        ['--keepalive-timeout', 'soon'],
      ] as const) {
        usageError([...required, `${flag}=${value}`], flag);
      }
    });

    it('refuses --keepalive-timeout not above --keepalive-interval', function () {
      usageError([...required, '--keepalive-interval', '1000', '--keepalive-timeout', '1000'], '--keepalive-timeout');
      usageError([...required, '--keepalive-interval', '40000'], '--keepalive-timeout');
    });

    it('refuses --backoff-max below --backoff-initial', function () {
      usageError([...required, '--backoff-initial', '1000', '--backoff-max', '999'], '--backoff-max');
    });

    it('refuses a bad --allow rule', function () {
      for (const rule of ['example.com', '*.:443', '10.0.0.0/40:443', 'host:0']) {
        usageError([...required, '--allow', rule], '--allow');
      }
    });

    it('refuses a bad --proxy', function () {
      usageError([...required, '--proxy', 'not a url'], '--proxy');
      usageError([...required, '--proxy', 'https://egress:3128'], '--proxy');
      usageError([...required, '--proxy', 'socks5://egress:1080'], '--proxy');
    });

    it('takes --carrier http2', function () {
      assert.equal(parse('--carrier', 'http2').carrier, 'http2');
    });

    it('refuses a bad --carrier, --apiserver, --health-listen or --log-level', function () {
      usageError([...required, '--carrier', 'quic'], '--carrier');
      usageError([...required, '--apiserver', 'kube'], '--apiserver');
      usageError([...required, '--apiserver', 'kube:0'], '--apiserver');
      usageError([...required, '--health-listen', 'nowhere'], '--health-listen');
      usageError([...required, '--log-level', 'loud'], '--log-level');
    });

    it('refuses unknown flags and positional arguments', function () {
      usageError([...required, '--bogus'], '--bogus');
      // The health listener has no TLS, so no handshake deadline.
      usageError([...required, '--handshake-timeout', '500'], '--handshake-timeout');
      usageError([...required, '--window'], '--window');
      usageError([...required, 'extra'], /extra/);
    });
  });
});
