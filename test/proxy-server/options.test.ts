import { strict as assert } from 'node:assert';
import os from 'node:os';
import { parseServerOptions, SERVER_DEFAULTS, type ServerOptions } from '../../proxy-server/options.js';
import { assertUsageError } from '../support/usage.js';

const REQUIRED = ['--ca', 'ca.pem', '--cert', 'server.pem', '--key', 'server-key.pem'];

function parse(...extra: string[]): ServerOptions {
  const result = parseServerOptions([...REQUIRED, ...extra]);
  assert.notEqual(result, 'help');
  return result as ServerOptions;
}

/** parseServerOptions(argv) must throw a UsageError naming `flag`. */
function usageError(argv: string[], flag: string | RegExp): void {
  assertUsageError(() => parseServerOptions(argv), flag);
}

describe('proxy-server: parseServerOptions', function () {
  it('fills in the defaults', function () {
    const options = parse();
    assert.deepEqual(options, {
      caFile: 'ca.pem',
      certFile: 'server.pem',
      keyFile: 'server-key.pem',
      agentListen: { host: '0.0.0.0', port: 8091 },
      connectListen: { host: '0.0.0.0', port: 8090 },
      connectUds: null,
      udsDefaultCluster: null,
      adminListen: { host: '127.0.0.1', port: 8095 },
      dialTimeoutMs: SERVER_DEFAULTS.dialTimeoutMs,
      maxPendingDials: SERVER_DEFAULTS.maxPendingDials,
      maxStreamsPerAgent: SERVER_DEFAULTS.maxStreamsPerAgent,
      windowBytes: SERVER_DEFAULTS.windowBytes,
      keepaliveIntervalMs: SERVER_DEFAULTS.keepaliveIntervalMs,
      keepaliveTimeoutMs: SERVER_DEFAULTS.keepaliveTimeoutMs,
      handshakeTimeoutMs: SERVER_DEFAULTS.handshakeTimeoutMs,
      headerTimeoutMs: 10_000,
      idleTimeoutMs: 60_000,
      maxUnauthenticated: 1000,
      maxUnauthenticatedPerAddress: 100,
      maxHeaderBytes: SERVER_DEFAULTS.maxHeaderBytes,
      drainTimeoutMs: SERVER_DEFAULTS.drainTimeoutMs,
      agentRejoinWindowMs: SERVER_DEFAULTS.agentRejoinWindowMs,
      federationListen: null,
      federationStore: SERVER_DEFAULTS.federationStore,
      federationEncryptionConfig: null,
      federationController: true,
      federationUntenantedPlacement: 'untenanted',
      unreachableDeletion: 'wait',
      unreachableDeletionTimeoutMs: SERVER_DEFAULTS.unreachableDeletionTimeoutMs,
      memberRequestTimeoutMs: SERVER_DEFAULTS.memberRequestTimeoutMs,
      federationDirectEgress: false,
      oidc: null,
      topologyWebhook: null,
      instance: os.hostname(),
      logLevel: 'info',
      revokedFile: null,
      tokenAuthFile: null,
      caKeyFile: null,
      bootstrapTokensFile: null,
      bootstrapTokensUsedFile: null,
      agentCertTtlMs: 30 * 86_400_000,
      replicas: null,
      agentFrontProxies: [],
      shutdownDelayMs: SERVER_DEFAULTS.shutdownDelayMs,
      controllerLeaseDurationMs: SERVER_DEFAULTS.controllerLeaseDurationMs,
    });
  });

  it('takes the HTTP/2 front proxies trusted to forward agent certificates (--agent-front-proxy, repeatable)', function () {
    assert.deepEqual(parse('--agent-front-proxy', 'edge-a', '--agent-front-proxy', 'edge-b').agentFrontProxies, ['edge-a', 'edge-b']);
    usageError([...REQUIRED, '--agent-front-proxy', ' '], '--agent-front-proxy');
  });

  it('takes the HA replica flags: an advertised address turns membership on, TTL defaults to 3 heartbeats', function () {
    assert.deepEqual(parse('--advertise-agent-address', 'hub-0.hub:8091').replicas, {
      advertiseAgentAddress: { host: 'hub-0.hub', port: 8091 },
      heartbeatMs: SERVER_DEFAULTS.replicaHeartbeatMs,
      ttlMs: 3 * SERVER_DEFAULTS.replicaHeartbeatMs,
    });
    assert.deepEqual(parse('--advertise-agent-address', '127.0.0.1:0', '--replica-heartbeat', '100', '--replica-ttl', '450').replicas, {
      advertiseAgentAddress: { host: '127.0.0.1', port: 0 },
      heartbeatMs: 100,
      ttlMs: 450,
    });
    usageError([...REQUIRED, '--replica-heartbeat', '100'], 'advertise-agent-address');
    usageError([...REQUIRED, '--advertise-agent-address', '0.0.0.0:8091'], 'advertise-agent-address');
    usageError([...REQUIRED, '--advertise-agent-address', 'nope'], 'advertise-agent-address');
    usageError([...REQUIRED, '--advertise-agent-address', 'a:1', '--replica-heartbeat', '100', '--replica-ttl', '100'], 'replica-ttl');
  });

  it('takes a token file for /clusters (--token-auth-file)', function () {
    assert.equal(parse('--token-auth-file', '/etc/fedtunnel/tokens.csv').tokenAuthFile, '/etc/fedtunnel/tokens.csv');
    usageError([...REQUIRED, '--token-auth-file', ''], '--token-auth-file');
  });

  it('takes the enrolment flags: --bootstrap-tokens needs --ca-key, the ledger defaults beside the tokens', function () {
    const options = parse('--ca-key', '/pki/ca.key', '--bootstrap-tokens', '/pki/tokens.txt', '--agent-cert-ttl', '12h');
    assert.equal(options.caKeyFile, '/pki/ca.key');
    assert.equal(options.bootstrapTokensUsedFile, '/pki/tokens.txt.used');
    assert.equal(options.agentCertTtlMs, 12 * 3_600_000);
    assert.equal(parse('--ca-key', 'k', '--bootstrap-tokens', 't', '--bootstrap-tokens-used', '/var/used').bootstrapTokensUsedFile, '/var/used');
    usageError([...REQUIRED, '--bootstrap-tokens', 't'], '--ca-key');
    usageError([...REQUIRED, '--ca-key', 'k', '--bootstrap-tokens-used', 'u'], '--bootstrap-tokens');
    usageError([...REQUIRED, '--agent-cert-ttl', '30'], '--agent-cert-ttl');
    usageError([...REQUIRED, '--agent-cert-ttl', '1s'], '--agent-cert-ttl');
  });

  it('takes a revocation list file', function () {
    assert.equal(parse('--revoked', '/etc/fedtunnel/revoked.txt').revokedFile, '/etc/fedtunnel/revoked.txt');
    usageError([...REQUIRED, '--revoked', ''], '--revoked');
  });

  it('enables the embedded federation API server and checks its store URL', function () {
    const options = parse('--federation-listen', '127.0.0.1:6443', '--federation-store', 'mysql://fed@db:3306/fed');
    assert.deepEqual(options.federationListen, { host: '127.0.0.1', port: 6443 });
    assert.equal(options.federationStore, 'mysql://fed@db:3306/fed');
    usageError([...REQUIRED, '--federation-store', 'postgres://x'], '--federation-store');
  });

  it('takes an EncryptionConfiguration for the federation store', function () {
    assert.equal(parse('--federation-encryption-config', '/etc/fedtunnel/encryption.yaml').federationEncryptionConfig, '/etc/fedtunnel/encryption.yaml');
  });

  it('configures the federation controller and its unreachable-cluster deletion policy', function () {
    const options = parse('--federation-controller', 'off', '--unreachable-deletion', 'orphan', '--unreachable-deletion-timeout', '1000', '--member-request-timeout', '2500');
    assert.equal(options.federationController, false);
    assert.equal(options.unreachableDeletion, 'orphan');
    assert.equal(options.unreachableDeletionTimeoutMs, 1000);
    assert.equal(options.memberRequestTimeoutMs, 2500);
    usageError([...REQUIRED, '--federation-controller', 'maybe'], '--federation-controller');
    usageError([...REQUIRED, '--unreachable-deletion', 'delete'], '--unreachable-deletion');
  });

  it('takes the topology webhook through the tunnel, other hosts only with direct egress', function () {
    const url = 'https://topology-webhook.fed-system.svc.east.tunnel:8443/convert';
    assert.deepEqual(parse('--topology-webhook-url', url, '--topology-webhook-ca', 'webhook-ca.pem').topologyWebhook, { url, caFile: 'webhook-ca.pem' });
    assert.equal(parse('--federation-direct-egress').federationDirectEgress, true);
    const direct = parse('--federation-direct-egress', '--topology-webhook-url', 'https://10.0.0.1:8443/convert', '--topology-webhook-ca', 'ca.pem');
    assert.equal(direct.topologyWebhook?.url, 'https://10.0.0.1:8443/convert');
    usageError([...REQUIRED, '--topology-webhook-url', 'https://10.0.0.1:8443/convert', '--topology-webhook-ca', 'ca.pem'], /--topology-webhook-url: the hub reaches webhooks through the tunnel/);
    usageError([...REQUIRED, '--topology-webhook-url', url], /go together/);
    usageError([...REQUIRED, '--topology-webhook-ca', 'ca.pem'], /go together/);
    usageError([...REQUIRED, '--topology-webhook-url', 'http://x.east.tunnel:80/convert', '--topology-webhook-ca', 'ca.pem'], /https URL is required/);
  });

  it('takes where objects of namespaces without a tenant are placed', function () {
    assert.equal(parse('--federation-untenanted-placement', 'all').federationUntenantedPlacement, 'all');
    assert.equal(parse('--federation-untenanted-placement', 'untenanted').federationUntenantedPlacement, 'untenanted');
    usageError([...REQUIRED, '--federation-untenanted-placement', 'some'], '--federation-untenanted-placement');
  });

  it('returns "help" for --help', function () {
    assert.equal(parseServerOptions(['--help']), 'help');
  });

  it('accepts every flag', function () {
    const options = parse(
      '--agent-listen', '[::]:0',
      '--connect-listen', 'off',
      '--connect-uds', '/run/fedtunnel/connect.sock',
      '--uds-default-cluster', 'prod-eu',
      '--admin-listen', '127.0.0.1:0',
      '--dial-timeout', '1',
      '--max-pending-dials', '1000000',
      '--max-streams-per-agent', '1',
      '--window', String(64 * 1024 * 1024),
      '--keepalive-interval', '100',
      '--keepalive-timeout', '101',
      '--handshake-timeout', '10',
      '--header-timeout', '20',
      '--idle-timeout', '30',
      '--max-unauthenticated', '40',
      '--max-unauthenticated-per-ip', '5',
      '--max-header-bytes', '1024',
      '--drain-timeout', '0',
      '--instance', 'proxy-1',
      '--log-level', 'silent',
    );
    assert.deepEqual(options.agentListen, { host: '::', port: 0 });
    assert.equal(options.connectListen, null);
    assert.equal(options.connectUds, '/run/fedtunnel/connect.sock');
    assert.equal(options.udsDefaultCluster, 'prod-eu');
    assert.deepEqual(options.adminListen, { host: '127.0.0.1', port: 0 });
    assert.equal(options.dialTimeoutMs, 1);
    assert.equal(options.maxPendingDials, 1_000_000);
    assert.equal(options.maxStreamsPerAgent, 1);
    assert.equal(options.windowBytes, 64 * 1024 * 1024);
    assert.equal(options.keepaliveIntervalMs, 100);
    assert.equal(options.keepaliveTimeoutMs, 101);
    assert.equal(options.handshakeTimeoutMs, 10);
    assert.equal(options.headerTimeoutMs, 20);
    assert.equal(options.idleTimeoutMs, 30);
    assert.equal(options.maxUnauthenticated, 40);
    assert.equal(options.maxUnauthenticatedPerAddress, 5);
    assert.equal(options.maxHeaderBytes, 1024);
    assert.equal(options.drainTimeoutMs, 0);
    assert.equal(options.instance, 'proxy-1');
    assert.equal(options.logLevel, 'silent');
  });

  it('turns listeners off with "off"', function () {
    const options = parse('--connect-listen', 'off', '--admin-listen', 'off');
    assert.equal(options.connectListen, null);
    assert.equal(options.adminListen, null);
  });

  describe('usage errors', function () {
    it('requires --ca, --cert and --key', function () {
      usageError(['--cert', 'c', '--key', 'k'], '--ca');
      usageError(['--ca', 'a', '--key', 'k'], '--cert');
      usageError(['--ca', 'a', '--cert', 'c'], '--key');
      usageError(['--ca', '', '--cert', 'c', '--key', 'k'], '--ca');
    });

    it('refuses a bad host:port', function () {
      for (const flag of ['--agent-listen', '--connect-listen', '--admin-listen']) {
        for (const value of ['8090', 'localhost', 'localhost:', ':8090', 'localhost:99999', 'local host:1', '::1:8090', '[::1]', '[zz::1]:80']) {
          usageError([...REQUIRED, flag, value], flag);
        }
      }
    });

    it('fuzz regression: refuses --agent-listen off (the options held a null listener before)', function () {
      usageError([...REQUIRED, '--agent-listen', 'off'], '--agent-listen');
    });

    it('refuses non-numeric and out-of-range numbers', function () {
      for (const [flag, value] of [
        ['--dial-timeout', 'ten'],
        ['--dial-timeout', '0'],
        ['--dial-timeout', '600001'],
        ['--dial-timeout', '-1'],
        ['--dial-timeout', '0x10'],
        ['--max-pending-dials', '0'],
        ['--max-pending-dials', '1000001'],
        ['--max-streams-per-agent', '0'],
        ['--window', '65535'],
        ['--window', '67108865'],
        ['--window', '4MiB'],
        ['--keepalive-interval', '9'],
        ['--keepalive-timeout', '86400001'],
        ['--handshake-timeout', '9'],
        ['--header-timeout', '300001'],
        ['--idle-timeout', '9'],
        ['--max-unauthenticated', '0'],
        ['--max-unauthenticated-per-ip', 'many'],
        ['--max-header-bytes', '1023'],
        ['--max-header-bytes', '1048577'],
        ['--drain-timeout', '1.5'],
      ] as const) {
        usageError([...REQUIRED, `${flag}=${value}`], flag);
      }
    });

    it('refuses --keepalive-timeout not above --keepalive-interval', function () {
      usageError([...REQUIRED, '--keepalive-interval', '5000', '--keepalive-timeout', '5000'], '--keepalive-timeout');
      usageError([...REQUIRED, '--keepalive-interval', '5000', '--keepalive-timeout', '4999'], '--keepalive-timeout');
      usageError([...REQUIRED, '--keepalive-interval', '60000'], '--keepalive-timeout');
    });

    it('refuses a bad --uds-default-cluster, or one without --connect-uds', function () {
      usageError([...REQUIRED, '--uds-default-cluster', 'prod'], '--connect-uds');
      for (const name of ['Prod', 'prod_eu', '-prod', 'a'.repeat(64), 'prod.eu']) {
        usageError([...REQUIRED, '--connect-uds', '/tmp/x.sock', '--uds-default-cluster', name], '--uds-default-cluster');
      }
    });

    it('refuses a bad --log-level', function () {
      usageError([...REQUIRED, '--log-level', 'verbose'], '--log-level');
    });

    it('refuses unknown flags, missing values and positional arguments', function () {
      usageError([...REQUIRED, '--bogus'], '--bogus');
      usageError([...REQUIRED, '--allow', 'x:1'], '--allow');
      usageError([...REQUIRED, '--dial-timeout'], '--dial-timeout');
      usageError([...REQUIRED, 'serve'], /serve/);
    });
  });
});
