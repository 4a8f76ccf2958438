import { strict as assert } from 'node:assert';
import { DestinationPolicy, PolicyRuleError } from '../../cluster-agent/policy.js';

describe('cluster-agent: DestinationPolicy', function () {
  it('denies everything without rules', function () {
    const policy = new DestinationPolicy([]);
    for (const [host, port] of [
      ['kubernetes.default.svc', 443],
      ['10.0.0.1', 443],
      ['::1', 22],
      ['localhost', 80],
    ] as const) {
      assert.equal(policy.allowsName(host, port), false, `${host}:${port}`);
      assert.equal(policy.allowsAddress(host, port), false, `${host}:${port}`);
    }
    assert.equal(policy.hasAddressRulesFor(443), false);
  });

  describe('name rules', function () {
    it('host:port allows exactly that host and port', function () {
      const policy = new DestinationPolicy(['kubernetes.default.svc:443']);
      assert.ok(policy.allowsName('kubernetes.default.svc', 443));
      assert.ok(!policy.allowsName('kubernetes.default.svc', 444));
      assert.ok(!policy.allowsName('kubernetes.default', 443));
      assert.ok(!policy.allowsName('x.kubernetes.default.svc', 443), 'no implicit subdomains');
      assert.ok(!policy.allowsName('kubernetes.default.svc.evil.com', 443));
      assert.ok(!policy.allowsName('kubernetes-default.svc', 443));
      assert.ok(!policy.hasAddressRulesFor(443), 'name rules are not address rules');
    });

    it('host:* allows every port of the host', function () {
      const policy = new DestinationPolicy(['db:*']);
      for (const port of [1, 5432, 65535]) assert.ok(policy.allowsName('db', port), String(port));
      assert.ok(!policy.allowsName('db2', 5432));
    });

    it('*.suffix allows names under the suffix, not the suffix itself', function () {
      const policy = new DestinationPolicy(['*.svc.cluster.local:443']);
      assert.ok(policy.allowsName('api.default.svc.cluster.local', 443));
      assert.ok(policy.allowsName('a.svc.cluster.local', 443));
      assert.ok(!policy.allowsName('svc.cluster.local', 443), 'the suffix itself is not covered');
      assert.ok(!policy.allowsName('evilsvc.cluster.local', 443), 'the match is on a label boundary');
      assert.ok(!policy.allowsName('a.svc.cluster.local.evil.com', 443));
      assert.ok(!policy.allowsName('api.default.svc.cluster.local', 80), 'port still applies');
      const anyPort = new DestinationPolicy(['*.example.com:*']);
      assert.ok(anyPort.allowsName('www.example.com', 8443));
    });

    it('matches case-insensitively, in rules and in hosts', function () {
      const policy = new DestinationPolicy(['API.Example.COM:443', '*.Internal.Example:*']);
      assert.ok(policy.allowsName('api.example.com', 443));
      assert.ok(policy.allowsName('API.EXAMPLE.COM', 443));
      assert.ok(policy.allowsName('Db.INTERNAL.example', 5432));
    });

    it('ignores one trailing dot on the requested host', function () {
      const policy = new DestinationPolicy(['api.example.com:443', '*.corp:*']);
      assert.ok(policy.allowsName('api.example.com.', 443));
      assert.ok(policy.allowsName('git.corp.', 22));
      assert.ok(!policy.allowsName('corp.', 22));
    });

    it('IP literal rules allow exactly that address', function () {
      const policy = new DestinationPolicy(['10.0.0.1:443', '[fd00::1]:*', '[::1]:8080']);
      assert.ok(policy.allowsName('10.0.0.1', 443));
      assert.ok(!policy.allowsName('10.0.0.2', 443));
      assert.ok(!policy.allowsName('10.0.0.1', 80));
      assert.ok(policy.allowsName('fd00::1', 1234));
      assert.ok(policy.allowsName('FD00::1', 1234), 'IPv6 literals compare case-insensitively');
      assert.ok(policy.allowsName('::1', 8080));
      assert.ok(!policy.allowsName('::2', 8080));
      assert.ok(!policy.allowsName('10.0.0.1.nip.io', 443), 'a name that embeds the address is a different host');
    });
  });

  describe('CIDR rules', function () {
    it('IPv4 blocks with a port', function () {
      const policy = new DestinationPolicy(['10.0.0.0/8:443']);
      assert.ok(policy.allowsAddress('10.1.2.3', 443));
      assert.ok(policy.allowsAddress('10.255.255.255', 443));
      assert.ok(!policy.allowsAddress('11.0.0.1', 443));
      assert.ok(!policy.allowsAddress('10.1.2.3', 80));
      assert.ok(!policy.allowsAddress('not-an-ip', 443));
      // An IP literal given as the host is checked against the blocks directly.
      assert.ok(policy.allowsName('10.9.9.9', 443));
      assert.ok(!policy.allowsName('192.168.0.1', 443));
      assert.ok(policy.hasAddressRulesFor(443));
      assert.ok(!policy.hasAddressRulesFor(80));
    });

    it('IPv4 blocks with any port, and host-sized blocks', function () {
      const policy = new DestinationPolicy(['192.168.1.0/24:*', '172.16.5.4/32:22']);
      assert.ok(policy.allowsAddress('192.168.1.77', 1));
      assert.ok(policy.allowsAddress('192.168.1.77', 65535));
      assert.ok(!policy.allowsAddress('192.168.2.1', 80));
      assert.ok(policy.allowsAddress('172.16.5.4', 22));
      assert.ok(!policy.allowsAddress('172.16.5.5', 22));
      assert.ok(policy.hasAddressRulesFor(9999));
    });

    it('IPv6 blocks, bracketed, with a port or *', function () {
      const policy = new DestinationPolicy(['[fd00::/8]:*', '[2001:db8::/32]:443']);
      assert.ok(policy.allowsAddress('fd12:3456::1', 80));
      assert.ok(policy.allowsAddress('2001:db8:1::5', 443));
      assert.ok(!policy.allowsAddress('2001:db8:1::5', 80));
      assert.ok(!policy.allowsAddress('2001:db9::1', 443));
      assert.ok(!policy.allowsAddress('fe80::1', 80));
      assert.ok(!policy.allowsAddress('10.0.0.1', 80), 'IPv4 is not in an IPv6 block');
      assert.ok(policy.allowsName('fd00::abcd', 1));
    });

    it('0.0.0.0/0 allows every IPv4 address', function () {
      const policy = new DestinationPolicy(['0.0.0.0/0:443']);
      assert.ok(policy.allowsAddress('1.2.3.4', 443));
      assert.ok(policy.allowsAddress('255.255.255.255', 443));
      assert.ok(!policy.allowsAddress('::1', 443));
    });
  });

  describe('invalid rules', function () {
    const bad = [
      'example.com', // no port
      ':443',
      'example.com:',
      'example.com:0',
      'example.com:65536',
      'example.com:http',
      'example.com:-1',
      'example.com:44 3',
      'exa_mple.com:443',
      '-example.com:443',
      'example-.com:443',
      'example..com:443',
      '*:443',
      '*.:443',
      '*.example.com.:443',
      'a.*.example.com:443',
      '*example.com:443',
      '10.0.0.0/33:443',
      '10.0.0.0/:443',
      '10.0.0.0/8/8:443',
      '10.0.0.0/x:443',
      '300.0.0.0/8:443',
      'example.com/8:443',
      '[fd00::/129]:*',
      '[fd00::/8:*',
      'http://example.com:443',
    ];
    for (const rule of bad) {
      it(`refuses ${JSON.stringify(rule)}`, function () {
        assert.throws(() => new DestinationPolicy([rule]), (error: unknown) => error instanceof PolicyRuleError && error.message.includes(JSON.stringify(rule)));
      });
    }

    it('refuses the whole list when one rule is bad', function () {
      assert.throws(() => new DestinationPolicy(['ok.example:443', 'bad rule:443']), PolicyRuleError);
    });

    it('keeps the rules it was built from', function () {
      const rules = ['a.example:443', '10.0.0.0/8:*'];
      assert.deepEqual(new DestinationPolicy(rules).rules, rules);
    });
  });
});
