import { strict as assert } from 'node:assert';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { classifyFailure, ClosedEarly, ConnectRefused, isCleanFailure, RequestTimeout, UnexpectedStatus } from '../../common/request-failures.js';

/** The error a real client gets from a server that resets the connection instead of answering. */
async function realResetError(): Promise<Error> {
  const server = net.createServer((socket) => socket.resetAndDestroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const { port } = server.address() as net.AddressInfo;
    return await new Promise<Error>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, agent: false }, () => resolve(new Error('answered')));
      req.on('error', resolve);
    });
  } finally {
    server.close();
  }
}

describe('common: classifyFailure', function () {
  it('takes a dial refusal with a documented code and its status as refused, anything else answered to CONNECT as unexpected', function () {
    assert.deepEqual(classifyFailure(new ConnectRefused(503, 'NO_AGENT', 'no agent')), { kind: 'refused', code: 'NO_AGENT', message: 'CONNECT answered 503 NO_AGENT: no agent' });
    assert.equal(classifyFailure(new ConnectRefused(502, 'LINK_LOST', '')).kind, 'refused');
    // The right code with another status, no code at all, an unknown code: not what the README documents.
    assert.deepEqual(classifyFailure(new ConnectRefused(500, 'NO_AGENT', '')).kind, 'unexpected');
    assert.deepEqual(classifyFailure(new ConnectRefused(503, undefined, '<html>')).code, 'CONNECT_503');
    assert.equal(classifyFailure(new ConnectRefused(503, 'OVERLOADED', '')).kind, 'unexpected');
  });

  it('takes a real connection reset (socket hang up) as reset with its errno code', async function () {
    const failure = classifyFailure(await realResetError());
    assert.equal(failure.kind, 'reset');
    assert.equal(failure.code, 'ECONNRESET');
    assert.ok(isCleanFailure(failure));
  });

  it('takes an HTTP error as status only when its body is a Kubernetes Status with that code', function () {
    const status = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'ServiceUnavailable', code: 503 });
    assert.deepEqual(classifyFailure(new UnexpectedStatus(503, status)).kind, 'status');
    assert.equal(classifyFailure(new UnexpectedStatus(503, status)).code, 'ServiceUnavailable');
    assert.equal(classifyFailure(new UnexpectedStatus(500, status)).kind, 'unexpected');
    assert.equal(classifyFailure(new UnexpectedStatus(502, '<html>bad gateway</html>')).code, 'HTTP_502');
    assert.equal(classifyFailure(new UnexpectedStatus(503, '{"kind":"Status","code":503}')).code, 'HTTP_503');
  });

  it('tells clean failures from hangs and garbage', function () {
    const clean = [new ConnectRefused(503, 'AGENT_DRAINING', ''), new ClosedEarly('short download'), Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })];
    for (const error of clean) assert.ok(isCleanFailure(classifyFailure(error)), error.message);
    const unclean: unknown[] = [new RequestTimeout('no answer'), new SyntaxError('Unexpected token < in JSON'), 'a string', Object.assign(new Error('cert'), { code: 'CERT_HAS_EXPIRED' })];
    for (const error of unclean) assert.ok(!isCleanFailure(classifyFailure(error)), String(error));
    assert.deepEqual(classifyFailure(new RequestTimeout('no answer')), { kind: 'hang', code: 'TIMEOUT', message: 'no answer' });
    assert.equal(classifyFailure(Object.assign(new Error('cert'), { code: 'CERT_HAS_EXPIRED' })).code, 'CERT_HAS_EXPIRED');
  });
});
