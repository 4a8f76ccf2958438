import { strict as assert } from 'node:assert';
import { extraHeaderName, identityHeaders, outboundHeaders, sanitizedHeaders } from '../../../proxy-server/kube-proxy/headers.js';

describe('kube-proxy: outbound headers', function () {
  const caller = { user: 'alice', groups: ['ops', 'fedtunnel:tenant:team-a'] };

  it('drops every identity header in any case and count, hop-by-hop ones and those Connection names', function () {
    const raw = [
      'Host', 'hub:8090',
      'Accept', 'application/json',
      'Authorization', 'Bearer other-users-token',
      'authorization', 'Basic eDp5',
      'Proxy-Authorization', 'Basic eDp5',
      'Impersonate-User', 'admin',
      'IMPERSONATE-USER', 'root',
      'impersonate-group', 'system:masters',
      'Impersonate-Group', 'a, b',
      'Impersonate-Uid', '1',
      'Impersonate-Extra-Scopes', 'x',
      'X-Remote-User', 'admin',
      'x-remote-group', 'system:masters',
      'Connection', 'keep-alive, X-Custom, Impersonate-User, Authorization',
      'Connection', 'Accept-Language',
      'Accept-Language', 'en',
      'X-Custom', '1',
      'Keep-Alive', 'timeout=5',
      'Transfer-Encoding', 'chunked',
      'TE', 'trailers',
      'Upgrade', 'websocket',
      'User-Agent', 'kubectl/v1.32.0',
      'Content-Type', 'application/json',
    ];
    assert.deepEqual(sanitizedHeaders(raw), { accept: 'application/json', 'user-agent': 'kubectl/v1.32.0', 'content-type': 'application/json' });
  });

  it('keeps repeated harmless headers as separate lines', function () {
    assert.deepEqual(sanitizedHeaders(['Accept', 'a', 'accept', 'b']), { accept: ['a', 'b'] });
  });

  it('sets the hub\'s credential and the caller after the stripping: Connection cannot remove them (CVE-2021-31999)', function () {
    const raw = ['Connection', 'Impersonate-User, Authorization, Impersonate-Group', 'Impersonate-User', 'admin', 'Authorization', 'Bearer stolen'];
    const out = outboundHeaders(raw, caller, { token: 'hub-token' });
    assert.deepEqual(out, {
      authorization: 'Bearer hub-token',
      'impersonate-user': 'alice',
      'impersonate-group': ['ops', 'fedtunnel:tenant:team-a'],
    });
  });

  it('without a token (client certificate in TLS) sends no Authorization at all', function () {
    const out = outboundHeaders(['Authorization', 'Bearer x'], { user: 'bob', groups: [] }, {});
    assert.deepEqual(out, { 'impersonate-user': 'bob' });
  });

  it('upgrades keep Upgrade and get Connection: Upgrade back after stripping', function () {
    const raw = ['Connection', 'Upgrade, Impersonate-User', 'Upgrade', 'SPDY/3.1', 'X-Stream-Protocol-Version', 'v4.channel.k8s.io', 'X-Stream-Protocol-Version', 'channel.k8s.io'];
    assert.deepEqual(sanitizedHeaders(raw, { upgrade: true }), { connection: 'Upgrade', upgrade: 'SPDY/3.1', 'x-stream-protocol-version': ['v4.channel.k8s.io', 'channel.k8s.io'] });
  });

  it('writes one Impersonate-Group line per group, the uid, and extras under lower-case %-encoded keys', function () {
    assert.deepEqual(identityHeaders({ user: 'u', groups: ['a,b', 'c'], uid: '42', extra: { 'Scopes/Read': ['x', 'y'] } }), {
      'impersonate-user': 'u',
      'impersonate-group': ['a,b', 'c'],
      'impersonate-uid': '42',
      'impersonate-extra-scopes%2Fread': ['x', 'y'],
    });
    assert.equal(extraHeaderName('acme.io/Team'), 'impersonate-extra-acme.io%2Fteam');
  });
});
