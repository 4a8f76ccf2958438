// Unit tests of the user kubeconfig (pure): the YAML for each credential form, the tenant rule,
// the hub URL, and `fedctl kubeconfig`'s flags.
import { strict as assert } from 'node:assert';
import { parse } from 'yaml';
import { UsageError } from '../../../common/flags.js';
import { parseFedctlOptions } from '../../../federation/admin/options.js';
import { buildUserKubeconfig, normalizeHubUrl, tenantExclusion } from '../../../federation/admin/user-kubeconfig.js';

const CA = Buffer.from('-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n');
const base = { user: 'dana', hub: 'https://hub.example:8443', ca: CA, clusters: ['east', 'west'] };

describe('fedctl kubeconfig: the kubeconfig builder', function () {
  it('one cluster and context per cluster, server /clusters/<name>, the CA embedded, current context the first', function () {
    const config = parse(buildUserKubeconfig({ ...base, credential: { kind: 'token', token: 'tok-1' } }));
    assert.equal(config.apiVersion, 'v1');
    assert.equal(config.kind, 'Config');
    assert.deepEqual(config.clusters, [
      { name: 'east', cluster: { server: 'https://hub.example:8443/clusters/east', 'certificate-authority-data': CA.toString('base64') } },
      { name: 'west', cluster: { server: 'https://hub.example:8443/clusters/west', 'certificate-authority-data': CA.toString('base64') } },
    ]);
    assert.deepEqual(config.contexts, [
      { name: 'east', context: { cluster: 'east', user: 'dana' } },
      { name: 'west', context: { cluster: 'west', user: 'dana' } },
    ]);
    assert.deepEqual(config.users, [{ name: 'dana', user: { token: 'tok-1' } }]);
    assert.equal(config['current-context'], 'east');
  });

  it('a certificate is embedded as data; OIDC is an exec stanza for kubelogin with the extra scopes', function () {
    const cert = parse(buildUserKubeconfig({ ...base, credential: { kind: 'certificate', cert: Buffer.from('CERT'), key: Buffer.from('KEY') } }));
    assert.deepEqual(cert.users[0].user, { 'client-certificate-data': Buffer.from('CERT').toString('base64'), 'client-key-data': Buffer.from('KEY').toString('base64') });
    const oidc = parse(buildUserKubeconfig({ ...base, credential: { kind: 'oidc', issuerUrl: 'https://issuer.example/realms/a', clientId: 'fedtunnel', extraScopes: ['email', 'groups'] } }));
    assert.deepEqual(oidc.users[0].user.exec, {
      apiVersion: 'client.authentication.k8s.io/v1beta1',
      command: 'kubectl',
      args: ['oidc-login', 'get-token', '--oidc-issuer-url=https://issuer.example/realms/a', '--oidc-client-id=fedtunnel', '--oidc-extra-scope=email', '--oidc-extra-scope=groups'],
      interactiveMode: 'IfAvailable',
    });
  });

  it('no clusters is an error (the CLI reports it and exits 1)', function () {
    assert.throws(() => buildUserKubeconfig({ ...base, clusters: [], credential: { kind: 'token', token: 't' } }), /at least one cluster/);
  });

  it('tenant rule: a tenant-bound user reaches only clusters labelled with one of their tenants; others and system:masters are not bound', function () {
    const east = { name: 'east', labels: { 'fedtunnel.io/tenant': 'blue' } };
    const bare = { name: 'bare', labels: {} };
    assert.equal(tenantExclusion(['system:authenticated'], east), null);
    assert.equal(tenantExclusion(['fedtunnel:tenant:blue'], east), null);
    assert.equal(tenantExclusion(['fedtunnel:tenant:red', 'fedtunnel:tenant:blue'], east), null);
    assert.match(tenantExclusion(['fedtunnel:tenant:red'], east)!, /east belongs to tenant blue; the user is bound to red/);
    assert.match(tenantExclusion(['fedtunnel:tenant:red'], bare)!, /bare has no tenant/);
    assert.equal(tenantExclusion(['fedtunnel:tenant:'], bare), null, 'an empty tenant binds nobody');
    assert.equal(tenantExclusion(['system:masters', 'fedtunnel:tenant:red'], east), null);
  });

  it('the hub URL: https with a host, no path, query or credentials', function () {
    assert.equal(normalizeHubUrl('https://hub.example:8443'), 'https://hub.example:8443');
    assert.equal(normalizeHubUrl('https://hub.example:8443/'), 'https://hub.example:8443');
    assert.equal(normalizeHubUrl('https://[::1]:8443'), 'https://[::1]:8443');
    for (const bad of ['http://hub:8443', 'https://hub:8443/clusters', 'https://u:p@hub', 'https://hub?x=1', 'hub:8443', '']) assert.equal(normalizeHubUrl(bad), null, bad);
  });
});

describe('fedctl kubeconfig: command line', function () {
  const req = ['kubeconfig', '--user', 'dana', '--hub', 'https://hub:8443/', '--ca', 'ca.crt'];

  it('parses each credential form, groups and -o', function () {
    assert.deepEqual(parseFedctlOptions([...req, '--group', 'ops', '--group', 'dev', '--token', 't', '-o', 'out.yaml']), {
      command: 'kubeconfig', user: 'dana', groups: ['ops', 'dev'], hub: 'https://hub:8443', caFile: 'ca.crt', output: 'out.yaml', credential: { kind: 'token', token: 't' },
      kubeconfig: null, context: null, namespace: 'kube-federation-system',
    });
    const pick = (...extra: string[]) => (parseFedctlOptions([...req, ...extra]) as { credential: unknown }).credential;
    assert.deepEqual(pick('--client-certificate', 'c', '--client-key', 'k'), { kind: 'certificate', certFile: 'c', keyFile: 'k' });
    assert.deepEqual(pick('--token-file', 'f'), { kind: 'token-file', tokenFile: 'f' });
    assert.deepEqual(pick('--oidc-issuer-url', 'https://i', '--oidc-client-id', 'id', '--oidc-extra-scope', 'email'), { kind: 'oidc', issuerUrl: 'https://i', clientId: 'id', extraScopes: ['email'] });
  });

  for (const [argv, message] of [
    [['kubeconfig', '--hub', 'https://h', '--ca', 'c', '--token', 't'], /--user is required/],
    [['kubeconfig', '--user', 'u', '--ca', 'c', '--token', 't'], /--hub is required/],
    [['kubeconfig', '--user', 'u', '--hub', 'http://h', '--ca', 'c', '--token', 't'], /expected https/],
    [['kubeconfig', '--user', 'u', '--hub', 'https://h', '--token', 't'], /--ca is required/],
    [[...req], /a credential is required/],
    [[...req, '--token', 't', '--token-file', 'f'], /one credential only, got --token and --token-file/],
    [[...req, '--token', 't', '--oidc-issuer-url', 'https://i', '--oidc-client-id', 'x'], /one credential only/],
    [[...req, '--client-certificate', 'c'], /go together/],
    [[...req, '--oidc-client-id', 'x'], /go together/],
    [[...req, '--oidc-issuer-url', 'http://i', '--oidc-client-id', 'x'], /must be https/],
    [[...req, '--token', 'a b'], /whitespace/],
    [[...req, '--token', 't', '--label', 'a=b'], /--label does not apply to kubeconfig/],
    [[...req, 'extra', '--token', 't'], /unexpected argument "extra"/],
    [['join', 'east', '--api-endpoint', 'https://x', '--token', 't'], /--token does not apply to join/],
  ] as Array<[string[], RegExp]>) {
    it(`refuses ${argv.join(' ')}`, function () {
      assert.throws(() => parseFedctlOptions(argv), (err: unknown) => err instanceof UsageError && message.test(err.message));
    });
  }
});
