import { strict as assert } from 'node:assert';
import type { PeerCertificate } from 'node:tls';
import {
  agentIdentityFromPeer,
  agentUri,
  parseSubjectAltNames,
  userIdentityFromPeer,
} from '../../certs/identity.js';
import { InvalidNameError, isDnsLabel } from '../../certs/names.js';

/** Only the fields the identity parsers read, shaped the way node:tls delivers them. */
function peer(fields: { subject?: Record<string, string | string[]>; subjectaltname?: string }): PeerCertificate {
  return fields as unknown as PeerCertificate;
}

describe('certs: names', function () {
  it('accepts RFC 1123 labels only', function () {
    for (const name of ['a', 'prod-eu-1', '0abc', 'a'.repeat(63)]) assert.ok(isDnsLabel(name), name);
    for (const name of ['', 'A', '-a', 'a-', 'a_b', 'a.b', 'a:b', 'a'.repeat(64)]) assert.ok(!isDnsLabel(name), name);
  });
});

describe('certs: identity encoding', function () {
  it('builds agent URIs and refuses invalid names', function () {
    assert.equal(agentUri('acme', 'prod'), 'urn:fedtunnel:agent:acme:prod');
    assert.throws(() => agentUri('acme', 'Prod'), InvalidNameError);
    assert.throws(() => agentUri('a:b', 'prod'), (error: unknown) => (error as InvalidNameError).code === 'INVALID_NAME');
  });

  it('parses plain and JSON-quoted SAN entries', function () {
    assert.deepEqual(parseSubjectAltNames('DNS:a, URI:"urn:x,y", IP Address:127.0.0.1, URI:"q\\"uote"'), [
      { type: 'DNS', value: 'a' },
      { type: 'URI', value: 'urn:x,y' },
      { type: 'IP Address', value: '127.0.0.1' },
      { type: 'URI', value: 'q"uote' },
    ]);
    assert.equal(parseSubjectAltNames('URI:"unterminated'), null);
    assert.equal(parseSubjectAltNames('no-type'), null);
  });

  it('finds the agent among other SANs, quoted or not', function () {
    const expected = { cluster: 'c1', tenant: 't1' };
    assert.deepEqual(agentIdentityFromPeer(peer({ subjectaltname: 'DNS:a, URI:urn:fedtunnel:agent:t1:c1' })), expected);
    assert.deepEqual(agentIdentityFromPeer(peer({ subjectaltname: 'URI:"urn:fedtunnel:agent:t1:c1", URI:"https://x/a,b"' })), expected);
  });

  it('refuses ambiguous or malformed agent URIs', function () {
    for (const subjectaltname of [
      'URI:urn:fedtunnel:agent:t1:c1, URI:urn:fedtunnel:agent:t2:c2',
      'URI:urn:fedtunnel:agent:t1:c1, URI:urn:fedtunnel:agent:t1:c1',
      'URI:urn:fedtunnel:agent:t1',
      'URI:urn:fedtunnel:agent:t1:c1:extra',
      'URI:urn:fedtunnel:agent:T1:c1',
      'URI:urn:fedtunnel:agent::c1',
      'DNS:urn:fedtunnel:agent:t1:c1',
      'URI:"urn:fedtunnel:agent:t1:c1',
    ]) {
      assert.equal(agentIdentityFromPeer(peer({ subjectaltname })), null, subjectaltname);
    }
    assert.equal(agentIdentityFromPeer(peer({})), null, 'no certificate at all');
  });

  it('reads users with zero, one or many groups', function () {
    assert.deepEqual(userIdentityFromPeer(peer({ subject: { CN: 'alice' } })), { user: 'alice', groups: [] });
    assert.deepEqual(userIdentityFromPeer(peer({ subject: { CN: 'alice', O: 'dev' } })), { user: 'alice', groups: ['dev'] });
    assert.deepEqual(userIdentityFromPeer(peer({ subject: { CN: 'alice', O: ['dev', 'ops'] } })), {
      user: 'alice',
      groups: ['dev', 'ops'],
    });
  });

  it('does not treat agent certificates or subjects without a single CN as users', function () {
    assert.equal(userIdentityFromPeer(peer({ subject: { O: 'dev' } })), null);
    assert.equal(userIdentityFromPeer(peer({ subject: { CN: ['a', 'b'] } })), null);
    assert.equal(userIdentityFromPeer(peer({})), null);
    assert.equal(
      userIdentityFromPeer(peer({ subject: { CN: 'system:cluster-agent:c1' }, subjectaltname: 'URI:urn:fedtunnel:agent:t1:c1' })),
      null,
    );
    // Even a malformed agent URI disqualifies the certificate as a user.
    assert.equal(userIdentityFromPeer(peer({ subject: { CN: 'x' }, subjectaltname: 'URI:URN:FEDTUNNEL:AGENT:bogus' })), null);
  });
});
