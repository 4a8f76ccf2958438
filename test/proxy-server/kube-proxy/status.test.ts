import { strict as assert } from 'node:assert';
import { KubeProxyError, rawStatusResponse, statusOf, upstreamError } from '../../../proxy-server/kube-proxy/status.js';

describe('kube-proxy: Status answers', function () {
  it('maps tunnel failures: no agent 503, dial timeout 504, anything else 502', function () {
    const failure = (dialCode?: string): Error & { dialCode?: string } => Object.assign(new Error('x'), dialCode ? { dialCode } : {});
    for (const code of ['NO_AGENT', 'UNKNOWN_CLUSTER', 'AGENT_DRAINING', 'STREAM_LIMIT', 'TOO_MANY_PENDING']) {
      assert.deepEqual([upstreamError('east', failure(code)).code, upstreamError('east', failure(code)).reason], [503, 'ServiceUnavailable'], code);
    }
    assert.deepEqual([upstreamError('east', failure('DIAL_TIMEOUT')).code, upstreamError('east', failure('DIAL_TIMEOUT')).reason], [504, 'Timeout']);
    for (const code of ['CONNECTION_REFUSED', 'LINK_LOST', undefined]) assert.equal(upstreamError('east', failure(code)).code, 502, String(code));
  });

  it('renders a Kubernetes Status, also as a raw response for upgrade sockets', function () {
    const e = new KubeProxyError('NotFound', 'cluster "x" is not joined');
    assert.deepEqual(statusOf(e), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'cluster "x" is not joined', reason: 'NotFound', code: 404 });
    const raw = rawStatusResponse(e);
    assert.match(raw, /^HTTP\/1\.1 404 Not Found\r\n/);
    const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
    assert.equal(Number(/Content-Length: (\d+)/.exec(raw)![1]), Buffer.byteLength(body));
    assert.deepEqual(JSON.parse(body), statusOf(e));
  });
});
