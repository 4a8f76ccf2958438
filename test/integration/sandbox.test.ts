// `npm start` is the project's main job: its sandbox must come up from a fresh directory and
// route each cluster's traffic to that cluster.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { DIST, scratchDir } from '../support/paths.js';

describe('sandbox (npm start)', function () {
  // Ten processes start one after another (each node start-up takes seconds on a loaded 2-core
  // machine), then the federation step and some seventy checks: minutes, not the default minute.
  this.timeout(300_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;

  before(async function () {
    baseline = await resourceBaseline();
  });

  after(async function () {
    await assertNoLeakedResources(baseline);
  });

  it('starts two proxy-server replicas with the federation API server, member-mode clusters and their agents; kubectl reaches each as itself', async function () {
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
    // HA replicas on one SQLite file: each agent, given replica 1's address, links to both; replica
    // 2 serves dials with its own links; one lease holder, named by both status pages; replica 2
    // stops on SIGTERM without disturbing the links to replica 1, and comes back.
    for (const cluster of ['east', 'west', 'north']) {
      assert.match(stdout, new RegExp(`^check replicas: ok agent of ${cluster} \\(given sandbox-hub-1's address\\) is linked to sandbox-hub-1, sandbox-hub-2$`, 'm'));
      assert.match(stdout, new RegExp(`^check replica dials: ok sandbox-hub-2's /clusters/${cluster}/ reads cluster-info: ${cluster}$`, 'm'));
      assert.match(stdout, new RegExp(`^check replica dials: ok CONNECT to ${cluster} through sandbox-hub-2 answered 200$`, 'm'));
      assert.match(stdout, new RegExp(`^check replica stop: ok agent of ${cluster} is linked to sandbox-hub-1$`, 'm'));
      assert.match(stdout, new RegExp(`^check replica restart: ok agent of ${cluster} .* is linked to sandbox-hub-1, sandbox-hub-2$`, 'm'));
    }
    assert.match(stdout, /^check replica dials: ok sandbox-hub-2 dialed .*forwarded to a peer 0×/m);
    // Either may hold the lease (replica 1 takes it at start, unless a stalled renewal lets replica 2 take over).
    assert.match(stdout, /^check controller lease: ok held by sandbox-hub-[12] /m);
    assert.match(stdout, /^check controller lease: ok sandbox-hub-2's status page names holder sandbox-hub-[12] and lists replicas sandbox-hub-1, sandbox-hub-2$/m);
    assert.match(stdout, /^check replica stop: ok sandbox-hub-1 kept every link \(no agent re-registered\)$/m);
    // The summary says how to reach each replica.
    for (const id of ['sandbox-hub-1', 'sandbox-hub-2']) assert.match(stdout, new RegExp(`^  - ${id}: agents on 127\\.0\\.0\\.1:\\d+, CONNECT \\(mTLS\\) on 127\\.0\\.0\\.1:\\d+`, 'm'));
    assert.match(stdout, /\/clusters\/east\/api\/v1\/namespaces\/default\/configmaps\/cluster-info/);
    assert.match(stdout, /\/status\/snapshot/);
    // The kubeconfig routes member contexts through the proxy by cluster name.
    assert.match(fs.readFileSync(path.join(dir, 'kubeconfig'), 'utf8'), /proxy-url: https:\/\/east:@127\.0\.0\.1:\d+/);
    // Keys of the sandbox PKI are private to their owner.
    assert.equal(fs.statSync(path.join(dir, 'pki', 'ca.key')).mode & 0o777, 0o600);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
