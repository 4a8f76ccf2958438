// `npm start` is the project's main job: its sandbox must come up from a fresh directory and
// route each cluster's traffic to that cluster.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { DIST, scratchDir } from '../support/paths.js';

describe('sandbox (npm start)', function () {
  it('starts proxy-server with the federation API server, member-mode clusters and their agents; kubectl reaches each as itself', async function () {
    const dir = path.join(scratchDir('sandbox'), `run-${process.pid}`);
    fs.rmSync(dir, { recursive: true, force: true });
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(DIST, 'deploy', 'sandbox', 'main.js'), '--check', '--dir', dir]).catch((error: { message: string; stdout?: string; stderr?: string }) => {
      // Which check went wrong is in the sandbox's own output.
      throw new Error(`${error.message}\n--- stdout\n${error.stdout ?? ''}\n--- stderr\n${error.stderr ?? ''}`);
    });
    assert.match(stdout, /check federation: ok namespace\/default/);
    // Every check line is ok: tenants, cells (through the webhook), RBAC, CONNECT authorization.
    assert.doesNotMatch(stdout, /^check [^:]+: (WRONG|FAILED)/m);
    assert.match(stdout, /check north: ok payments — north: its tenant's FederatedConfigMap/);
    assert.match(stdout, /check federation: ok cell — federation: the cell form \(v1beta2\)/);
    assert.match(stdout, /check tenants: ok pat may not place onto retail's cluster east/);
    assert.match(stdout, /check east: ok east$/m);
    assert.match(stdout, /check west: ok west$/m);
    assert.match(stdout, /check carriers: ok .*north over http2/);
    assert.match(stdout, /check revoked certificate: ok /);
    assert.match(stdout, /check RBAC: ok viewer reads demo/);
    assert.match(stdout, /check listener limits: ok /);
    // RBAC decides who may CONNECT where: viewer nowhere, pat to north only (examples/payments.yaml).
    assert.match(stdout, /check CONNECT authorization: ok CONNECT as viewer to east answered 403 FORBIDDEN/);
    assert.match(stdout, /check CONNECT authorization: ok CONNECT as pat to north answered 200 /);
    assert.match(stdout, /check CONNECT authorization: ok CONNECT as pat to east answered 403 FORBIDDEN/);
    assert.doesNotMatch(stdout, /check CONNECT authorization: WRONG/);
    // kubectl through /clusters/<name> with kubeconfigs from fedctl kubeconfig: admin everywhere,
    // the retail tenant's user on east and west only (north 403).
    assert.match(stdout, /check \/clusters: ok fedctl kubeconfig for admin has contexts east,north,west /);
    assert.match(stdout, /check \/clusters: ok fedctl kubeconfig for rhea has contexts east,west /);
    assert.match(stdout, /check \/clusters: ok admin via https:\/\/127\.0\.0\.1:\d+\/clusters\/north reads cluster-info: north$/m);
    assert.match(stdout, /check \/clusters: ok rhea via \/clusters\/east: the member sees rhea$/m);
    assert.match(stdout, /check \/clusters: ok rhea via \/clusters\/north \(tenant payments\): 403 Forbidden$/m);
    assert.match(stdout, /curl -sS -p -x https:\/\/east@127\.0\.0\.1:\d+/);
    // The kubeconfig routes member contexts through the proxy by cluster name.
    assert.match(fs.readFileSync(path.join(dir, 'kubeconfig'), 'utf8'), /proxy-url: https:\/\/east:@127\.0\.0\.1:\d+/);
    // Keys of the sandbox PKI are private to their owner.
    assert.equal(fs.statSync(path.join(dir, 'pki', 'ca.key')).mode & 0o777, 0o600);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
