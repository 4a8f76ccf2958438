import { strict as assert } from 'node:assert';
import { resolveConnectTarget, CLUSTER_HOST_SUFFIX, tunnelTarget, mayReach } from '../../proxy-server/targets.js';
import { DialError } from '../../wire/errors.js';
import { Policy, type Binding, type Role } from '../../federation/apiserver/rbac.js';

function basic(credentials: string): string {
  return `Basic ${Buffer.from(credentials).toString('base64')}`;
}

/** Expects DialError BAD_TARGET (HTTP 400) with a message matching `pattern`. */
function badTarget(call: () => unknown, pattern: RegExp): void {
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof DialError, `expected DialError, got ${String(error)}`);
    assert.equal(error.code, 'BAD_TARGET');
    assert.equal(error.httpStatus, 400);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('proxy-server: resolveConnectTarget', function () {
  it('uses the suffix .tunnel', function () {
    assert.equal(CLUSTER_HOST_SUFFIX, '.tunnel');
  });

  describe('cluster from Proxy-Authorization', function () {
    it('takes the Basic user name as the cluster', function () {
      assert.deepEqual(resolveConnectTarget('kubernetes.default.svc:443', basic('prod-eu:'), null), {
        cluster: 'prod-eu',
        address: 'kubernetes.default.svc:443',
      });
      assert.deepEqual(resolveConnectTarget('db:5432', basic('staging:any-password:with:colons'), null), { cluster: 'staging', address: 'db:5432' });
      assert.deepEqual(resolveConnectTarget('db:5432', basic('staging'), null), { cluster: 'staging', address: 'db:5432' }, 'no colon at all');
    });

    it('accepts the scheme in any case and surrounding whitespace', function () {
      const token = Buffer.from('prod:').toString('base64');
      assert.equal(resolveConnectTarget('a:1', `basic ${token}`, null).cluster, 'prod');
      assert.equal(resolveConnectTarget('a:1', `BASIC   ${token}  `, null).cluster, 'prod');
    });

    it('wins over the host suffix and the default cluster', function () {
      assert.deepEqual(resolveConnectTarget('api.other.tunnel:443', basic('prod:'), 'fallback'), { cluster: 'prod', address: 'api.other.tunnel:443' });
    });

    it('handles IPv6 targets', function () {
      assert.deepEqual(resolveConnectTarget('[::1]:443', basic('prod:'), null), { cluster: 'prod', address: '[::1]:443' });
      assert.deepEqual(resolveConnectTarget('[fd00::a:1]:6443', basic('prod:'), null), { cluster: 'prod', address: '[fd00::a:1]:6443' });
    });

    it('refuses other schemes and bad user names', function () {
      badTarget(() => resolveConnectTarget('a:1', 'Bearer abc.def', null), /Proxy-Authorization must be Basic/);
      badTarget(() => resolveConnectTarget('a:1', 'Basic', null), /Proxy-Authorization must be Basic/);
      badTarget(() => resolveConnectTarget('a:1', 'Basic !!!', null), /Proxy-Authorization must be Basic/);
      badTarget(() => resolveConnectTarget('a:1', basic('Prod:'), null), /cluster name \(a DNS label\)/);
      badTarget(() => resolveConnectTarget('a:1', basic(':secret'), null), /cluster name/);
      badTarget(() => resolveConnectTarget('a:1', basic('prod.eu:'), null), /cluster name/);
      badTarget(() => resolveConnectTarget('a:1', basic('x'.repeat(64)), null), /cluster name/);
    });

    it('treats an empty header like no header', function () {
      assert.deepEqual(resolveConnectTarget('a:1', '', 'fallback'), { cluster: 'fallback', address: 'a:1' });
    });
  });

  describe('cluster from the host suffix', function () {
    it('splits <host>.<cluster>.tunnel', function () {
      assert.deepEqual(resolveConnectTarget('api.prod.tunnel:443', undefined, null), { cluster: 'prod', address: 'api:443' });
      assert.deepEqual(resolveConnectTarget('kubernetes.default.svc.prod-eu.tunnel:6443', undefined, null), {
        cluster: 'prod-eu',
        address: 'kubernetes.default.svc:6443',
      });
    });

    it('is case-insensitive', function () {
      assert.deepEqual(resolveConnectTarget('API.Prod.TUNNEL:443', undefined, null), { cluster: 'prod', address: 'api:443' });
    });

    it('wins over the default cluster', function () {
      assert.deepEqual(resolveConnectTarget('db.prod.tunnel:5432', undefined, 'fallback'), { cluster: 'prod', address: 'db:5432' });
    });

    it('refuses a suffix without an inner host', function () {
      badTarget(() => resolveConnectTarget('prod.tunnel:443', undefined, null), /must look like <host>\.<cluster>\.tunnel/);
      badTarget(() => resolveConnectTarget('prod.tunnel:443', undefined, 'fallback'), /must look like/);
    });

    it('does not treat a name that merely ends in "tunnel" as the suffix', function () {
      assert.deepEqual(resolveConnectTarget('api.prodtunnel:443', undefined, 'fallback'), { cluster: 'fallback', address: 'api.prodtunnel:443' });
    });
  });

  describe('default cluster', function () {
    it('applies when nothing else names a cluster', function () {
      assert.deepEqual(resolveConnectTarget('10.0.0.1:443', undefined, 'uds-cluster'), { cluster: 'uds-cluster', address: '10.0.0.1:443' });
      assert.deepEqual(resolveConnectTarget('[::1]:443', undefined, 'uds-cluster'), { cluster: 'uds-cluster', address: '[::1]:443' });
    });

    it('without one, a request that names no cluster is refused with guidance', function () {
      badTarget(() => resolveConnectTarget('kubernetes.default.svc:443', undefined, null), /no cluster named.*https:\/\/<cluster>@proxy:port.*<host>\.<cluster>\.tunnel:<port>/);
    });
  });

  describe('malformed targets', function () {
    for (const authority of ['', 'host', 'host:', ':443', 'host:0', 'host:65536', 'host:https', '::1:443', '[::1]443', '[::1]', '[nope]:443', 'a b:1', '/path', 'http://host:80', 'host:80/x']) {
      it(`refuses ${JSON.stringify(authority)}`, function () {
        badTarget(() => resolveConnectTarget(authority, basic('prod:'), 'fallback'), new RegExp(`CONNECT target must be host:port, got ${escape(JSON.stringify(authority))}`));
      });
    }
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

describe('proxy-server: tunnelTarget', function () {
  it('splits <host>.<cluster>.tunnel:<port>, in any case', function () {
    assert.deepEqual(tunnelTarget('conv.webhooks.svc.east.tunnel:443'), { cluster: 'east', address: 'conv.webhooks.svc:443' });
    assert.deepEqual(tunnelTarget('API.Prod.TUNNEL:6443'), { cluster: 'prod', address: 'api:6443' });
  });

  it('is null for any other address, which the caller may dial directly', function () {
    assert.equal(tunnelTarget('webhook.example.com:443'), null);
    assert.equal(tunnelTarget('api.prodtunnel:443'), null);
    assert.equal(tunnelTarget('10.0.0.1:443'), null);
    assert.equal(tunnelTarget('not an address'), null);
  });

  it('refuses a .tunnel host without an inner host', function () {
    badTarget(() => tunnelTarget('east.tunnel:443'), /must look like <host>\.<cluster>\.tunnel/);
  });
});

describe('proxy-server: mayReach', function () {
  const proxyEast: Role = { name: 'proxy-east', rules: [{ verbs: ['proxy'], apiGroups: ['core.kubefed.io'], resources: ['clusters'], resourceNames: ['east'] }] };
  const proxyAny: Role = { name: 'proxy-any', rules: [{ verbs: ['proxy'], apiGroups: ['core.kubefed.io'], resources: ['clusters'] }] };
  // Rules that come close but do not grant proxy on clusters.core.kubefed.io.
  const nearMisses: Role = {
    name: 'near-misses',
    rules: [
      { verbs: ['get', 'list', 'create'], apiGroups: ['core.kubefed.io'], resources: ['clusters', 'kubefedclusters'] },
      { verbs: ['proxy'], apiGroups: [''], resources: ['clusters', 'services'] },
      { verbs: ['proxy'], apiGroups: ['core.kubefed.io'], resources: ['kubefedclusters'] },
    ],
  };
  const bind = (name: string, role: string, subject: Binding['subjects'][number]): Binding => ({ name, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role }, subjects: [subject] });
  const policy = new Policy(
    [proxyEast, proxyAny, nearMisses],
    [
      bind('pat-east', 'proxy-east', { kind: 'User', name: 'pat' }),
      bind('sre-any', 'proxy-any', { kind: 'Group', name: 'sre' }),
      bind('all-near', 'near-misses', { kind: 'Group', name: 'system:authenticated' }),
      bind('ci-east', 'proxy-east', { kind: 'ServiceAccount', name: 'ci', namespace: 'builds' }),
      // A RoleBinding grants only inside its namespace: never a cluster-scoped request.
      { ...bind('ns-any', 'proxy-any', { kind: 'User', name: 'nina' }), namespace: 'default' },
    ],
  );

  it('allows the clusters a binding names, and no other', function () {
    assert.deepEqual(mayReach(policy, { user: 'pat', groups: [] }, 'east'), { allowed: true, reason: 'RBAC: allowed by ClusterRoleBinding "pat-east" of ClusterRole "proxy-east" to User "pat"' });
    assert.equal(mayReach(policy, { user: 'pat', groups: [] }, 'west').allowed, false);
  });

  it('allows every cluster to a group bound without resourceNames', function () {
    assert.equal(mayReach(policy, { user: 'sam', groups: ['sre'] }, 'east').allowed, true);
    assert.equal(mayReach(policy, { user: 'sam', groups: ['sre'] }, 'west').allowed, true);
  });

  it('refuses what only near-miss rules and namespaced bindings cover', function () {
    assert.deepEqual(mayReach(policy, { user: 'viewer', groups: ['viewers'] }, 'east'), { allowed: false, reason: '' });
    assert.equal(mayReach(policy, { user: 'nina', groups: [] }, 'east').allowed, false);
  });

  it('adds the effective groups of a service account before asking', function () {
    assert.equal(mayReach(policy, { user: 'system:serviceaccount:builds:ci', groups: [] }, 'east').allowed, true);
    const everyone = new Policy([proxyEast], [bind('sas-east', 'proxy-east', { kind: 'Group', name: 'system:serviceaccounts:builds' })]);
    assert.equal(mayReach(everyone, { user: 'system:serviceaccount:builds:deployer', groups: [] }, 'east').allowed, true);
    assert.equal(mayReach(everyone, { user: 'system:serviceaccount:other:deployer', groups: [] }, 'east').allowed, false);
    const authenticated = new Policy([proxyEast], [bind('all-east', 'proxy-east', { kind: 'Group', name: 'system:authenticated' })]);
    assert.equal(mayReach(authenticated, { user: 'anyone', groups: [] }, 'east').allowed, true);
  });

  it('always allows system:masters, with or without a policy', function () {
    assert.equal(mayReach(new Policy([], []), { user: 'root', groups: ['system:masters'] }, 'west').allowed, true);
    assert.equal(mayReach(null, { user: 'root', groups: ['system:masters'] }, 'west').allowed, true);
  });

  it('without a policy (no federation) refuses everyone else', function () {
    assert.deepEqual(mayReach(null, { user: 'pat', groups: ['sre'] }, 'east'), { allowed: false, reason: '' });
  });
});
