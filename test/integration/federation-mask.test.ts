// Gray release with spec.placementMask, end to end: a hub and three members in their own network
// namespaces, one per cell (KubeFedCluster label fedtunnel.io/cell), a FederatedConfigMap placed on
// all three, rolled out cell by cell with real kubectl, the member contents read from each member at
// every step; a hub restart mid-rollout (the applied revisions come from the store) and drift on a
// held-back member repaired to the OLD template.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import type { KubeObject } from '../../federation/apiserver/storage.js';
import { revisionOf, snapshotOf } from '../../federation/controller/rollout.js';
import { getText } from '../../common/http-get.js';
import { joinedFederation, type Federation } from '../support/federation-harness.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { metric } from '../support/metrics.js';

async function ok(result: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> {
  const r = await result;
  assert.equal(r.code, 0, `kubectl failed: ${r.stderr}`);
  return r.stdout;
}

const MEMBERS = { east: 'cell-a', west: 'cell-b', north: 'cell-c' } as const;
type Member = keyof typeof MEMBERS;
const ALL = Object.keys(MEMBERS) as Member[];

const NAMESPACE = `
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: types.kubefed.io/v1beta1
kind: FederatedNamespace
metadata:
  name: shop
  namespace: shop
spec:
  placement:
    clusterSelector: {}
`;

/** The FederatedConfigMap at template `version`, with an override for north and an optional mask (cells). */
function configMap(name: string, version: string, cells?: string[]): KubeObject {
  return {
    apiVersion: 'types.kubefed.io/v1beta1',
    kind: 'FederatedConfigMap',
    metadata: { name, namespace: 'shop' },
    spec: {
      template: { data: { version, color: 'blue' } },
      placement: { clusterSelector: {} },
      overrides: [{ clusterName: 'north', clusterOverrides: [{ path: '/data/color', value: 'green' }] }],
      ...(cells ? { placementMask: { cells: cells.map((c) => ({ name: c })) } } : {}),
    },
  };
}

function revision(obj: KubeObject): string {
  return revisionOf(snapshotOf(obj));
}

describe('federation gray release (spec.placementMask, 3 cells)', function () {
  this.timeout(300_000);
  let fed: Federation;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;

  const apply = (obj: KubeObject): Promise<string> => ok(fed.kubectl('federation', ['apply', '-f', '-'], JSON.stringify(obj)));
  const wait = (args: string[]): Promise<string> => ok(fed.kubectl('federation', ['wait', '--timeout=60s', '-n', 'shop', ...args]));
  /** Waits (kubectl wait: a watch) until the status reports `cluster` at `rev`, Current or Masked. */
  const clusterAt = async (name: string, cluster: Member, rollout: 'Current' | 'Masked', rev: string | null): Promise<void> => {
    await wait([`federatedconfigmap/${name}`, `--for=jsonpath={.status.clusters[?(@.name=="${cluster}")].rollout}=${rollout}`]);
    if (rev !== null) await wait([`federatedconfigmap/${name}`, `--for=jsonpath={.status.clusters[?(@.name=="${cluster}")].revision}=${rev}`]);
  };
  const memberData = async (member: Member, name: string): Promise<Record<string, string>> =>
    (JSON.parse(await ok(fed.kubectlMember(member, ['get', 'configmap', name, '-n', 'shop', '-o', 'json']))) as { data: Record<string, string> }).data;
  const memberHas = (member: Member, name: string, key: string, value: string): Promise<string> =>
    ok(fed.kubectlMember(member, ['wait', '--timeout=60s', '-n', 'shop', `configmap/${name}`, `--for=jsonpath={.data.${key}}=${value}`]));
  const record = async (name: string): Promise<{ clusterVersions: Array<{ clusterName: string; revision: string }>; revisions: Array<{ revision: string }> }> =>
    (JSON.parse(await ok(fed.kubectl('federation', ['get', 'propagatedversions.core.kubefed.io', `configmap-${name}`, '-n', 'shop', '-o', 'json']))) as { status: never }).status;

  before(async function () {
    baseline = await resourceBaseline();
    fed = await joinedFederation(Object.fromEntries(ALL.map((m) => [m, [`fedtunnel.io/cell=${MEMBERS[m]}`]])), {});
    await ok(fed.kubectl('federation', ['apply', '-f', '-'], NAMESPACE));
    await wait(['--for=condition=Propagation', 'federatednamespace/shop']);
  });

  after(async function () {
    await fed?.stop();
    await assertNoLeakedResources(baseline);
  });

  it('refuses a malformed placementMask with a 422 naming the field', async function () {
    const bad = configMap('bad', 'v1');
    (bad.spec as Record<string, unknown>).placementMask = { cells: [{ name: 'cell-a' }, { name: 'cell-a' }], zones: [] };
    const r = await fed.kubectl('federation', ['apply', '-f', '-'], JSON.stringify(bad));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.placementMask\.cells\[1\]\.name: Duplicate value/);
    assert.match(r.stderr, /spec\.placementMask\.zones/);
    const get = await fed.kubectl('federation', ['get', 'federatedconfigmap', 'bad', '-n', 'shop']);
    assert.match(get.stderr, /NotFound|not found/);
  });

  it('rolls a template change out cell by cell; held clusters keep their last applied template, repaired back to it on drift, across a hub restart', async function () {
    const v1 = configMap('app', 'v1');
    await apply(v1);
    await wait(['--for=condition=Propagation', 'federatedconfigmap/app']);
    for (const m of ALL) await clusterAt('app', m, 'Current', revision(v1));
    assert.deepEqual(await memberData('north', 'app'), { version: 'v1', color: 'green' });

    // Step 1: v2 with the mask on cell-a: only east changes.
    const v2 = configMap('app', 'v2', ['cell-a']);
    await apply(v2);
    await memberHas('east', 'app', 'version', 'v2');
    await clusterAt('app', 'east', 'Current', revision(v2));
    for (const m of ['west', 'north'] as const) await clusterAt('app', m, 'Masked', revision(v1));
    assert.deepEqual(await memberData('west', 'app'), { version: 'v1', color: 'blue' });
    assert.deepEqual(await memberData('north', 'app'), { version: 'v1', color: 'green' });
    await wait(['--for=condition=Propagation', 'federatedconfigmap/app']);

    // Drift on a held-back member: repaired to v1 (its applied template), not to v2.
    await ok(fed.kubectlMember('west', ['patch', 'configmap', 'app', '-n', 'shop', '--type', 'merge', '-p', '{"data":{"version":"tampered"}}']));
    await memberHas('west', 'app', 'version', 'v1');
    assert.deepEqual(await memberData('west', 'app'), { version: 'v1', color: 'blue' });

    // The record: one snapshot per revision, each cluster on its own.
    const rec = await record('app');
    assert.deepEqual(rec.clusterVersions.map((c) => [c.clusterName, c.revision]), [['east', revision(v2)], ['north', revision(v1)], ['west', revision(v1)]]);
    assert.deepEqual(rec.revisions.map((r) => r.revision).sort(), [revision(v1), revision(v2)].sort());

    // Hub (and controller) restart mid-rollout: nothing in memory survives; the store does.
    await fed.stopHub();
    await fed.startHub();
    // Right after the restart (before or during the first syncs) the status still says who is held.
    const after = JSON.parse(await ok(fed.kubectl('federation', ['get', 'federatedconfigmap', 'app', '-n', 'shop', '-o', 'json']))) as { status: { clusters: Array<Record<string, string>> } };
    assert.deepEqual(
      after.status.clusters.map((c) => [c.name, c.rollout, c.revision]),
      [['east', 'Current', revision(v2)], ['north', 'Masked', revision(v1)], ['west', 'Masked', revision(v1)]],
    );
    await ok(fed.kubectlMember('north', ['delete', 'configmap', 'app', '-n', 'shop']));
    await memberHas('north', 'app', 'version', 'v1');
    assert.deepEqual(await memberData('north', 'app'), { version: 'v1', color: 'green' });
    await clusterAt('app', 'east', 'Current', revision(v2));
    for (const m of ['west', 'north'] as const) await clusterAt('app', m, 'Masked', revision(v1));
    assert.deepEqual(await memberData('west', 'app'), { version: 'v1', color: 'blue' });

    // v3, still on cell-a: east moves on, the others stay on v1 (not v2); v2's snapshot is pruned.
    const v3 = configMap('app', 'v3', ['cell-a']);
    await apply(v3);
    await memberHas('east', 'app', 'version', 'v3');
    await clusterAt('app', 'east', 'Current', revision(v3));
    for (const m of ['west', 'north'] as const) await clusterAt('app', m, 'Masked', revision(v1));
    assert.deepEqual(await memberData('west', 'app'), { version: 'v1', color: 'blue' });
    assert.deepEqual((await record('app')).revisions.map((r) => r.revision).sort(), [revision(v1), revision(v3)].sort());

    // Step 2: widen to cell-a + cell-b: west catches up, north stays.
    await apply(configMap('app', 'v3', ['cell-a', 'cell-b']));
    await memberHas('west', 'app', 'version', 'v3');
    await clusterAt('app', 'west', 'Current', revision(v3));
    await clusterAt('app', 'north', 'Masked', revision(v1));
    assert.deepEqual(await memberData('north', 'app'), { version: 'v1', color: 'green' });

    // Step 3: remove the mask: everything current, one snapshot left.
    await apply(configMap('app', 'v3'));
    await memberHas('north', 'app', 'version', 'v3');
    for (const m of ALL) await clusterAt('app', m, 'Current', revision(v3));
    assert.deepEqual(await memberData('north', 'app'), { version: 'v3', color: 'green' });
    assert.deepEqual(await memberData('west', 'app'), { version: 'v3', color: 'blue' });
    assert.deepEqual((await record('app')).revisions.map((r) => r.revision), [revision(v3)]);

    // A full resync (west's agent goes and comes back: everything there is synced again, a drift
    // repaired) changes no record, so nothing is written.
    const writes = async (): Promise<number> => metric(await getText(fed.hub.ports.adminPort, '/metrics'), 'fedtunnel_federation_propagated_version_writes_total{result="ok"}');
    const before = await writes();
    // Since the restart: v3 to east, then west, then north — one record write each, nothing else.
    assert.equal(before, 3, 'PropagatedVersion writes since the hub restart');
    await fed.stopAgent('west');
    await fed.startAgent('west');
    await ok(fed.kubectl('federation', ['wait', '--timeout=60s', '-n', 'kube-federation-system', '--for=condition=Ready', 'kubefedcluster/west']));
    await ok(fed.kubectlMember('west', ['patch', 'configmap', 'app', '-n', 'shop', '--type', 'merge', '-p', '{"data":{"version":"tampered"}}']));
    await memberHas('west', 'app', 'version', 'v3');
    assert.equal(await writes(), before, 'PropagatedVersion writes during a resync that changed nothing');
  });

  it('a cluster with nothing applied stays empty while outside the mask; deletion is not held by the mask and removes the record', async function () {
    const masked = configMap('fresh', 'v1', ['cell-a']);
    await apply(masked);
    await memberHas('east', 'fresh', 'version', 'v1');
    await clusterAt('fresh', 'east', 'Current', revision(masked));
    for (const m of ['west', 'north'] as const) {
      await clusterAt('fresh', m, 'Masked', null);
      const r = await fed.kubectlMember(m, ['get', 'configmap', 'fresh', '-n', 'shop']);
      assert.match(r.stderr, /NotFound|not found/, `${m} must hold nothing`);
    }
    const status = JSON.parse(await ok(fed.kubectl('federation', ['get', 'federatedconfigmap', 'fresh', '-n', 'shop', '-o', 'json']))) as { status: { clusters: Array<Record<string, string>> } };
    assert.deepEqual(status.status.clusters.find((c) => c.name === 'west'), { name: 'west', rollout: 'Masked' });

    await ok(fed.kubectl('federation', ['delete', 'federatedconfigmap', 'fresh', '-n', 'shop', '--timeout=60s']));
    await ok(fed.kubectlMember('east', ['wait', '--timeout=60s', '-n', 'shop', '--for=delete', 'configmap/fresh']));
    await ok(fed.kubectl('federation', ['wait', '--timeout=60s', '-n', 'shop', '--for=delete', 'propagatedversions.core.kubefed.io/configmap-fresh']));
  });

  it("a held-back FederatedSecret's old data, kept in its PropagatedVersion, is encrypted at rest like the secret", async function () {
    // 21 bytes: base64 without '=' padding (kubectl wait --for=jsonpath cannot take an '=' in the value).
    const values = ['gray-secret-one-4f1c9', 'gray-secret-two-9a7e3'];
    const secret = (value: string, cells?: string[]): KubeObject => ({
      apiVersion: 'types.kubefed.io/v1beta1',
      kind: 'FederatedSecret',
      metadata: { name: 'token', namespace: 'shop' },
      spec: { template: { type: 'Opaque', data: { key: Buffer.from(value).toString('base64') } }, placement: { clusterSelector: {} }, ...(cells ? { placementMask: { cells: cells.map((c) => ({ name: c })) } } : {}) },
    });
    await apply(secret(values[0]!));
    await wait(['--for=condition=Propagation', 'federatedsecret/token']);
    await apply(secret(values[1]!, ['cell-a']));
    const encoded = values.map((v) => Buffer.from(v).toString('base64'));
    await ok(fed.kubectlMember('east', ['wait', '--timeout=60s', '-n', 'shop', 'secret/token', `--for=jsonpath={.data.key}=${encoded[1]}`]));
    await ok(fed.kubectl('federation', ['wait', '--timeout=60s', '-n', 'shop', 'federatedsecret/token', '--for=jsonpath={.status.clusters[?(@.name=="west")].rollout}=Masked']));
    const pv = JSON.parse(await ok(fed.kubectl('federation', ['get', 'propagatedversion', 'secret-token', '-n', 'shop', '-o', 'json']))) as { status: { revisions: unknown[] } };
    assert.equal(pv.status.revisions.length, 2, 'both revisions are kept');
    assert.equal(await ok(fed.kubectlMember('west', ['get', 'secret', 'token', '-n', 'shop', '-o', 'jsonpath={.data.key}'])), encoded[0]);
    const files = ['federation.db', 'federation.db-wal'].map((f) => path.join(fed.dir, f)).filter((f) => fs.existsSync(f));
    assert.ok(files.length > 0, 'the hub store is a SQLite file in the scratch directory');
    for (const f of files) {
      const bytes = fs.readFileSync(f);
      for (const needle of [...values, ...encoded]) assert.ok(!bytes.includes(Buffer.from(needle)), `${needle} readable in ${path.basename(f)}`);
    }
  });

  it('a record whose federated object went while its type was not propagated is deleted when propagation resumes', async function () {
    await apply(configMap('stray', 'v1'));
    await wait(['--for=condition=Propagation', 'federatedconfigmap/stray']);
    await wait(['--for=create', 'propagatedversion/configmap-stray']);
    const ftc = (propagation: string): Promise<string> =>
      ok(fed.kubectl('federation', ['patch', 'federatedtypeconfig', 'configmaps', '-n', 'kube-federation-system', '--type', 'merge', '-p', JSON.stringify({ spec: { propagation } })]));
    await ftc('Disabled');
    await ok(fed.kubectl('federation', ['wait', '--timeout=60s', '-n', 'kube-federation-system', 'federatedtypeconfig/configmaps', '--for=jsonpath={.status.propagationController}=NotRunning']));
    // Nobody runs the finalizer now: the user removes it, the object goes, its record stays behind.
    await ok(fed.kubectl('federation', ['delete', 'federatedconfigmap', 'stray', '-n', 'shop', '--wait=false']));
    await ok(fed.kubectl('federation', ['patch', 'federatedconfigmap', 'stray', '-n', 'shop', '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}']));
    await wait(['--for=delete', 'federatedconfigmap/stray']);
    assert.match(await ok(fed.kubectl('federation', ['get', 'propagatedversion', 'configmap-stray', '-n', 'shop', '-o', 'name'])), /configmap-stray/);
    await ftc('Enabled');
    await wait(['--for=delete', 'propagatedversion/configmap-stray']);
    // The other records are left alone.
    assert.match(await ok(fed.kubectl('federation', ['get', 'propagatedversion', 'configmap-app', '-n', 'shop', '-o', 'name'])), /configmap-app/);
  });
});
