// `fedctl kubeconfig` against a real hub: three joined members (east and west of tenant retail,
// north of payments), RBAC on the federation API server granting `proxy` on clusters to some users
// and groups. Each user gets contexts for exactly the clusters they may reach (RBAC, then the
// tenant rule), the file is 0600 and loads with real kubectl, the credential forms land as
// expected, and a user who may reach nothing gets exit 1 and no file.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { join, runCommand, startFederation, type Federation, type KubectlResult } from '../support/federation-harness.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { FEDCTL_BIN } from '../support/paths.js';

const REACH_RBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reach-east}
rules:
- apiGroups: [core.kubefed.io]
  resources: [clusters]
  resourceNames: [east]
  verbs: [proxy]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reach-all}
rules:
- apiGroups: [core.kubefed.io]
  resources: [clusters]
  verbs: [proxy]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: dana-reach-east}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reach-east}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: dana}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ops-reach-all}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reach-all}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: ops}]
`;

describe('fedctl kubeconfig (hub + east, west of retail and north of payments)', function () {
  this.timeout(180_000);
  let fed: Federation;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let hub: string;

  const fedctl = (...args: string[]): Promise<KubectlResult> =>
    runCommand(process.execPath, [FEDCTL_BIN, 'kubeconfig', '--kubeconfig', fed.kubeconfig, '--context', 'federation', '--hub', hub, '--ca', fed.pki.ca.cert, ...args]);
  const contexts = async (file: string): Promise<string[]> => {
    const r = await runCommand('kubectl', ['config', 'get-contexts', '--kubeconfig', file, '-o', 'name']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean);
  };
  const out = (name: string): string => path.join(fed.dir, name);

  before(async function () {
    baseline = await resourceBaseline();
    fed = await startFederation({ members: ['east', 'west', 'north'], isolation: 'loopback', tenants: { east: 'retail', west: 'retail', north: 'payments' }, users: [{ user: 'dana', groups: [] }] });
    for (const [name, tenant] of [['east', 'retail'], ['west', 'retail'], ['north', 'payments']] as const) await join(fed, name, [`fedtunnel.io/tenant=${tenant}`]);
    hub = `https://127.0.0.1:${fed.hub.ports.connectPort}`;
    const applied = await fed.kubectl('federation', ['apply', '-f', '-'], REACH_RBAC);
    assert.equal(applied.code, 0, applied.stderr);
    // In force once the watch-fed RBAC cache has the bindings: the same SubjectAccessReview fedctl asks, answered yes.
    for (const [user, groups] of [['dana', []], ['someone', ['ops']]] as const) {
      const sar = JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user, groups, resourceAttributes: { verb: 'proxy', group: 'core.kubefed.io', resource: 'clusters', name: 'east' } } });
      const deadline = Date.now() + 10_000;
      for (;;) {
        const r = await fed.kubectl('federation', ['create', '-f', '-', '-o', 'jsonpath={.status.allowed}'], sar);
        if (r.stdout.trim() === 'true') break;
        if (Date.now() > deadline) throw new Error(`RBAC not in force for ${user}: ${r.stdout} ${r.stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });

  after(async function () {
    await fed?.stop();
    await assertNoLeakedResources(baseline);
  });

  it('dana (proxy on east only, client certificate): one context, file 0600, certificate and CA embedded, server /clusters/east', async function () {
    const file = out('dana.kubeconfig');
    const dana = fed.pki.users.dana!;
    const r = await fedctl('--user', 'dana', '--client-certificate', dana.cert, '--client-key', dana.key, '-o', file);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /written to .*dana\.kubeconfig: contexts: east \(current: east\); skipped 2: north, west/);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(await contexts(file), ['east']);
    const config = parse(fs.readFileSync(file, 'utf8'));
    assert.equal(config['current-context'], 'east');
    assert.equal(config.clusters[0].cluster.server, `${hub}/clusters/east`);
    assert.equal(config.clusters[0].cluster['certificate-authority-data'], fs.readFileSync(fed.pki.ca.cert).toString('base64'));
    assert.equal(config.users[0].user['client-certificate-data'], fs.readFileSync(dana.cert).toString('base64'));
    const server = await runCommand('kubectl', ['config', 'view', '--kubeconfig', file, '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}']);
    assert.equal(server.stdout, `${hub}/clusters/east`);
  });

  it('erin in group ops (proxy on all clusters, token on stdout): every cluster, sorted, the first current', async function () {
    const r = await fedctl('--user', 'erin', '--group', 'ops', '--token', 'erin-token');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /contexts: east, north, west \(current: east\)/);
    const file = out('erin.kubeconfig');
    fs.writeFileSync(file, r.stdout, { mode: 0o600 });
    assert.deepEqual(await contexts(file), ['east', 'north', 'west']);
    const config = parse(r.stdout);
    assert.deepEqual(config.users, [{ name: 'erin', user: { token: 'erin-token' } }]);
    assert.equal(config['current-context'], 'east');
  });

  it('frank in ops and fedtunnel:tenant:retail (OIDC): only the retail clusters, with a kubelogin exec stanza', async function () {
    const file = out('frank.kubeconfig');
    const r = await fedctl('--user', 'frank', '--group', 'ops', '--group', 'fedtunnel:tenant:retail', '--oidc-issuer-url', 'https://issuer.example', '--oidc-client-id', 'fedtunnel', '--oidc-extra-scope', 'groups', '-o', file);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await contexts(file), ['east', 'west']);
    const exec = parse(fs.readFileSync(file, 'utf8')).users[0].user.exec;
    assert.deepEqual(exec.args, ['oidc-login', 'get-token', '--oidc-issuer-url=https://issuer.example', '--oidc-client-id=fedtunnel', '--oidc-extra-scope=groups']);
  });

  it('gina (no RBAC), and hal (ops, but bound to tenant billing, which has no cluster): exit 1 with the reasons, no file written', async function () {
    const tokenFile = out('gina.token');
    fs.writeFileSync(tokenFile, 'gina-token\n', { mode: 0o600 });
    const file = out('gina.kubeconfig');
    const r = await fedctl('--user', 'gina', '--token-file', tokenFile, '-o', file);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /user gina may reach none of the 3 clusters/);
    assert.match(r.stderr, /cluster east: no RBAC proxy on clusters\.core\.kubefed\.io for user gina/);
    assert.equal(fs.existsSync(file), false);
    const tenantOnly = await fedctl('--user', 'hal', '--group', 'fedtunnel:tenant:billing', '--group', 'ops', '--token', 't');
    assert.equal(tenantOnly.code, 1);
    assert.match(tenantOnly.stderr, /cluster north belongs to tenant payments; the user is bound to billing/);
  });

  it('a certificate of another user is refused (exit 1); usage errors exit 2', async function () {
    const dana = fed.pki.users.dana!;
    const wrong = await fedctl('--user', 'erin', '--client-certificate', dana.cert, '--client-key', dana.key);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /its user \(CN\) is "dana", not --user "erin"/);
    const usage = await fedctl('--user', 'erin', '--token', 't', '--token-file', 'f');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /one credential only/);
  });
});
