// Tenant isolation end to end: a hub and three members in their own network namespaces, whose
// agent certificates say tenant retail (east, west) and payments (north). The hub runs with the
// default --federation-untenanted-placement (untenanted). Everything is driven with real kubectl:
// the tenant labels come from the agent certificates, a retail object placed by selector lands
// only on retail clusters, explicit placement into payments is refused with a message kubectl
// shows, a non-admin cannot relabel a cluster, and a cluster whose label disagrees with its agent
// is reported TenantMismatch and gets nothing.
import { strict as assert } from 'node:assert';
import path from 'node:path';
import { getText } from '../../common/http-get.js';
import { writeKubeconfig } from '../../common/federation-processes.js';
import { joinedFederation, runCommand, type Federation, type KubectlResult } from '../support/federation-harness.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { metric } from '../support/metrics.js';

const KFC_NS = ['-n', 'kube-federation-system'];

async function ok(result: Promise<KubectlResult>): Promise<string> {
  const r = await result;
  assert.equal(r.code, 0, `kubectl failed: ${r.stderr}`);
  return r.stdout;
}

const RETAIL_NAMESPACE = `
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {fedtunnel.io/tenant: retail}
---
apiVersion: types.kubefed.io/v1beta1
kind: FederatedNamespace
metadata: {name: shop, namespace: shop}
spec:
  template:
    metadata:
      labels: {fedtunnel.io/tenant: retail}
  placement: {clusterSelector: {}}
`;

function configMap(name: string, placement: string, color = 'blue'): string {
  return `
apiVersion: types.kubefed.io/v1beta1
kind: FederatedConfigMap
metadata: {name: ${name}, namespace: shop}
spec:
  template:
    data: {color: ${color}}
  placement: ${placement}
`;
}

describe('federation tenants (hub + retail and payments members in network namespaces)', function () {
  this.timeout(240_000);
  let fed: Federation;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  /** kubectl as viewer, a user who is not an admin. */
  let viewerKubectl: (args: string[]) => Promise<KubectlResult>;

  const metrics = (): Promise<string> => getText(fed.hub.ports.adminPort, '/metrics');
  const placedClusters = async (name: string): Promise<string[]> =>
    (await ok(fed.kubectl('federation', ['get', 'federatedconfigmap', name, '-n', 'shop', '-o', 'jsonpath={.status.clusters[*].name}']))).split(' ').filter(Boolean).sort();
  const waitPropagated = (name: string): Promise<string> => ok(fed.kubectl('federation', ['wait', '--for=condition=Propagation', '--timeout=60s', '-n', 'shop', `federatedconfigmap/${name}`]));

  before(async function () {
    baseline = await resourceBaseline();
    fed = await joinedFederation(
      { east: [], west: [], north: [] },
      { tenants: { east: 'retail', west: 'retail', north: 'payments' }, untenantedPlacement: 'untenanted', users: [{ user: 'viewer', groups: [] }] },
    );
    const viewer = fed.pki.users.viewer!;
    const kubeconfig = path.join(fed.dir, 'viewer.kubeconfig');
    writeKubeconfig(kubeconfig, [{ name: 'federation', server: `https://127.0.0.1:${fed.hub.ports.federationPort}`, caFile: fed.pki.ca.cert }], { ...viewer, name: 'viewer' }, 'federation');
    viewerKubectl = (args) => runCommand('kubectl', ['--kubeconfig', kubeconfig, '--request-timeout', '30s', ...args]);
  });

  after(async function () {
    await fed?.stop();
    await assertNoLeakedResources(baseline);
  });

  it("labels each KubeFedCluster with its agent certificate's tenant when it is joined", async function () {
    for (const [name, tenant] of [['east', 'retail'], ['west', 'retail'], ['north', 'payments']]) {
      assert.equal(await ok(fed.kubectl('federation', ['get', 'kubefedcluster', name!, ...KFC_NS, '-o', 'jsonpath={.metadata.labels.fedtunnel\\.io/tenant}'])), tenant);
    }
  });

  it('places a retail FederatedConfigMap with clusterSelector {} on the retail clusters only', async function () {
    await ok(fed.kubectl('federation', ['apply', '-f', '-'], RETAIL_NAMESPACE));
    await ok(fed.kubectl('federation', ['wait', '--for=condition=Propagation', '--timeout=60s', '-n', 'shop', 'federatednamespace/shop']));
    await ok(fed.kubectl('federation', ['apply', '-f', '-'], configMap('settings', '{clusterSelector: {}}')));
    await waitPropagated('settings');
    assert.deepEqual(await placedClusters('settings'), ['east', 'west']);
    for (const m of ['east', 'west']) assert.equal(await ok(fed.kubectlMember(m, ['get', 'configmap', 'settings', '-n', 'shop', '-o', 'jsonpath={.data.color}'])), 'blue');
    const north = await fed.kubectlMember('north', ['get', 'namespace', 'shop']);
    assert.notEqual(north.code, 0, 'the retail namespace never reached the payments cluster');
    assert.match(north.stderr, /NotFound|not found/);
  });

  it('refuses explicit placement onto the payments cluster; kubectl shows the cluster and both tenants', async function () {
    const before = metric(await metrics(), 'fedtunnel_federation_tenant_refusals_total{reason="CrossTenantPlacement"}');
    const r = await fed.kubectl('federation', ['apply', '-f', '-'], configMap('pinned', '{clusters: [{name: east}, {name: north}]}'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Forbidden/);
    assert.match(r.stderr, /FederatedConfigMap "pinned" in namespace "shop" belongs to tenant "retail" and may not be placed on cluster "north" of tenant "payments"/);
    const absent = await fed.kubectl('federation', ['get', 'federatedconfigmap', 'pinned', '-n', 'shop']);
    assert.match(absent.stderr, /NotFound|not found/, 'nothing was stored');
    assert.equal(metric(await metrics(), 'fedtunnel_federation_tenant_refusals_total{reason="CrossTenantPlacement"}'), before + 1);
    // Its own clusters by name are fine.
    await ok(fed.kubectl('federation', ['apply', '-f', '-'], configMap('pinned', '{clusters: [{name: east}]}')));
    await waitPropagated('pinned');
    assert.deepEqual(await placedClusters('pinned'), ['east']);
  });

  it('refuses relabelling the payments cluster as retail by a user who is not an admin', async function () {
    const r = await viewerKubectl(['label', '--overwrite', 'kubefedcluster', 'north', ...KFC_NS, 'fedtunnel.io/tenant=retail']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Forbidden|forbidden/);
    assert.match(r.stderr, /viewer/);
    assert.equal(await ok(fed.kubectl('federation', ['get', 'kubefedcluster', 'north', ...KFC_NS, '-o', 'jsonpath={.metadata.labels.fedtunnel\\.io/tenant}'])), 'payments');
  });

  it('reports a cluster whose tenant label disagrees with its agent certificate (TenantMismatch) and propagates nothing to it', async function () {
    const mark = fed.hub.mark;
    // An admin may set the label (admission lets system:masters through); the certificate still says payments.
    await ok(fed.kubectl('federation', ['label', '--overwrite', 'kubefedcluster', 'north', ...KFC_NS, 'fedtunnel.io/tenant=retail']));
    await ok(fed.kubectl('federation', ['wait', '--timeout=60s', ...KFC_NS, 'kubefedcluster/north', '--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=TenantMismatch']));
    const ready = JSON.parse(await ok(fed.kubectl('federation', ['get', 'kubefedcluster', 'north', ...KFC_NS, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")]}']))) as { status: string; message: string };
    assert.equal(ready.status, 'False');
    assert.match(ready.message, /fedtunnel\.io\/tenant=retail disagrees with the tenant "payments" of the cluster's agent certificate/);
    const warned = await fed.hub.waitForLog((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.startsWith('tenant mismatch') && l.cluster === 'north', { since: mark });
    assert.equal(warned.agentTenant, 'payments');
    assert.equal(metric(await metrics(), 'fedtunnel_federation_cluster_tenant_mismatch{cluster="north"}'), 1);

    // Its label now says retail, yet a change of the retail object reaches east and west only.
    await ok(fed.kubectl('federation', ['apply', '-f', '-'], configMap('settings', '{clusterSelector: {}}', 'red')));
    for (const m of ['east', 'west']) await ok(fed.kubectlMember(m, ['wait', '--timeout=60s', '-n', 'shop', 'configmap/settings', '--for=jsonpath={.data.color}=red']));
    // A mismatched cluster is not Ready: like any such cluster it shows in every object's status
    // (KubeFed's ClusterNotReady), and the controller writes nothing there.
    await ok(fed.kubectl('federation', ['wait', '--timeout=60s', '-n', 'shop', 'federatedconfigmap/settings', '--for=jsonpath={.status.clusters[?(@.name=="north")].status}=ClusterNotReady']));
    assert.notEqual((await fed.kubectlMember('north', ['get', 'namespace', 'shop'])).code, 0, 'nothing of retail reached north');
    assert.equal(await ok(fed.kubectlMember('north', ['get', 'configmaps', '-A', '-l', 'kubefed.io/managed=true', '-o', 'name'])), '');

    // Naming it explicitly is refused with what disagrees.
    const r = await fed.kubectl('federation', ['apply', '-f', '-'], configMap('pinned', '{clusters: [{name: east}, {name: north}]}'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cluster "north" whose tenant label "retail" disagrees with its agent's tenant "payments"/);
  });

  it("puts back a removed tenant label from the connected agent's certificate", async function () {
    // An admin may remove it; the controller injects it again at once (the hub's own write).
    await ok(fed.kubectl('federation', ['label', 'kubefedcluster', 'west', ...KFC_NS, 'fedtunnel.io/tenant-']));
    await ok(fed.kubectl('federation', ['wait', '--timeout=60s', ...KFC_NS, 'kubefedcluster/west', '--for=jsonpath={.metadata.labels.fedtunnel\\.io/tenant}=retail']));
  });

  it('is Ready again once the label agrees with the certificate', async function () {
    await ok(fed.kubectl('federation', ['label', '--overwrite', 'kubefedcluster', 'north', ...KFC_NS, 'fedtunnel.io/tenant=payments']));
    await ok(fed.kubectl('federation', ['wait', '--timeout=60s', ...KFC_NS, 'kubefedcluster/north', '--for=condition=Ready']));
    assert.equal(metric(await metrics(), 'fedtunnel_federation_cluster_tenant_mismatch{cluster="north"}'), 0);
  });
});
