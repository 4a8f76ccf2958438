import { strict as assert } from 'node:assert';
import { kubeVerb } from '../../../proxy-server/kube-proxy/verb.js';

describe('kube-proxy: Kubernetes verb of a request', function () {
  const cases: Array<[string, string, string, string]> = [
    ['GET', '/api/v1/namespaces', '', 'list'],
    ['GET', '/api/v1/namespaces/default', '', 'get'],
    ['GET', '/api/v1/namespaces/default/pods', '', 'list'],
    ['GET', '/api/v1/namespaces/default/pods', '?watch=true&resourceVersion=5', 'watch'],
    ['GET', '/api/v1/namespaces/default/pods', '?watch=1', 'watch'],
    ['GET', '/api/v1/namespaces/default/pods', '?watch=false', 'list'],
    ['GET', '/api/v1/watch/namespaces/default/pods', '', 'watch'],
    ['GET', '/api/v1/namespaces/default/pods/p1', '', 'get'],
    ['GET', '/api/v1/namespaces/default/pods/p1/log', '?follow=true', 'get'],
    ['GET', '/apis/apps/v1/deployments', '', 'list'],
    ['GET', '/apis/apps/v1/namespaces/x/deployments/d', '', 'get'],
    ['POST', '/api/v1/namespaces/default/configmaps', '', 'create'],
    ['PUT', '/api/v1/namespaces/default/configmaps/c', '', 'update'],
    ['PATCH', '/apis/apps/v1/namespaces/x/deployments/d', '', 'patch'],
    ['DELETE', '/api/v1/namespaces/default/configmaps/c', '', 'delete'],
    ['DELETE', '/api/v1/namespaces/default/configmaps', '', 'deletecollection'],
    // Streaming subresources are create whatever the method (WebSocket exec is a GET).
    ['GET', '/api/v1/namespaces/default/pods/p1/exec', '?command=sh', 'create'],
    ['POST', '/api/v1/namespaces/default/pods/p1/exec', '?command=sh', 'create'],
    ['GET', '/api/v1/namespaces/default/pods/p1/attach', '', 'create'],
    ['POST', '/api/v1/namespaces/default/pods/p1/portforward', '', 'create'],
    // Non-resource requests: the lower-case method.
    ['GET', '/version', '', 'get'],
    ['GET', '/api', '', 'get'],
    ['GET', '/apis/apps/v1', '', 'get'],
    ['HEAD', '/healthz', '', 'get'],
    ['POST', '/openid/v1/jwks', '', 'post'],
  ];
  for (const [method, path, query, verb] of cases) {
    it(`${method} ${path}${query} → ${verb}`, function () {
      assert.equal(kubeVerb(method, path, query), verb);
    });
  }
});
