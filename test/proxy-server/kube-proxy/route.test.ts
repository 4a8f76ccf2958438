import { strict as assert } from 'node:assert';
import { isClustersUrl, parseClusterRoute } from '../../../proxy-server/kube-proxy/route.js';
import { KubeProxyError } from '../../../proxy-server/kube-proxy/status.js';

function refused(url: string, code: number, pattern?: RegExp): void {
  assert.throws(
    () => parseClusterRoute(url),
    (error: unknown) => error instanceof KubeProxyError && error.code === code && (!pattern || pattern.test(error.message)),
    `${url} → ${code}`,
  );
}

describe('kube-proxy: route parsing (raw URL)', function () {
  it('gives the member the path after /clusters/<name>, query kept', function () {
    assert.deepEqual(parseClusterRoute('/clusters/east/api/v1/namespaces?limit=5&watch=1'), {
      cluster: 'east',
      memberPath: '/api/v1/namespaces',
      query: '?limit=5&watch=1',
      memberUrl: '/api/v1/namespaces?limit=5&watch=1',
    });
    assert.equal(parseClusterRoute('/clusters/east').memberUrl, '/');
    assert.equal(parseClusterRoute('/clusters/east/').memberUrl, '/');
    assert.equal(parseClusterRoute('/clusters/east?timeout=32s').memberUrl, '/?timeout=32s');
    assert.equal(parseClusterRoute('/clusters/east/api/').memberUrl, '/api/');
    // Percent-escapes outside the cluster segment are the member's to read, unchanged.
    assert.equal(parseClusterRoute('/clusters/east/api/v1/namespaces/a%3Ab').memberPath, '/api/v1/namespaces/a%3Ab');
  });

  it('tells cluster URLs from others', function () {
    assert.equal(isClustersUrl('/clusters/east/api'), true);
    assert.equal(isClustersUrl('/clusters'), true);
    assert.equal(isClustersUrl('/clustersx/east'), false);
    assert.equal(isClustersUrl('/api/v1'), false);
    refused('/api/v1/namespaces', 404);
    refused('/clusters', 404);
    refused('/clusters/', 404);
  });

  it('refuses dot segments anywhere, raw or percent-encoded: east/../west never reaches west nor east', function () {
    for (const url of [
      '/clusters/east/../west/api',
      '/clusters/east/./api',
      '/clusters/east/api/..',
      '/clusters/../clusters/west/api',
      '/clusters/east/%2e%2e/west/api',
      '/clusters/east/%2E%2E/west/api',
      '/clusters/east/.%2e/west',
      '/clusters/east/%2e/api',
      '/clusters/east/..%2fwest/api',
      '/clusters/east/api/v1/..%5c..',
    ]) refused(url, 400, /dot segments/);
  });

  it('refuses escapes in the cluster segment, bad names, empty segments, backslashes and bad escapes', function () {
    refused('/clusters/ea%73t/api', 400, /percent-escapes/);
    refused('/clusters/east%2fwest/api', 400, /percent-escapes/);
    refused('/clusters/east%5cwest/api', 400, /percent-escapes/);
    refused('/clusters/east.west/api', 400, /DNS label/);
    refused('/clusters/East/api', 400, /DNS label/);
    refused('/clusters//east/api', 400, /empty path segments/);
    refused('/clusters/east//api', 400, /empty path segments/);
    refused('/clusters/east/api\\..\\west', 400, /backslash/);
    refused('/clusters/east/api/%zz', 400, /percent-escape/);
    refused('https://hub/clusters/east/api', 400, /origin form/);
  });

  it('keeps dots inside a query (the member parses it) and inside names', function () {
    assert.equal(parseClusterRoute('/clusters/east/api?x=../..').query, '?x=../..');
    assert.equal(parseClusterRoute('/clusters/east/api/v1/namespaces/a.b').memberPath, '/api/v1/namespaces/a.b');
  });
});
