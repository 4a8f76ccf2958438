// Tenant isolation, pure: placement ANDed with the object's tenant (and never onto a cluster whose
// label disagrees with its agent), the namespace tenant rule, and the admission decisions.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import type { UserInfo } from '../../../federation/apiserver/authz.js';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { CELL_LABEL, TENANT_LABEL } from '../../../federation/kubefed/api.js';
import { computePlacement, selectedClusters, type ClusterInfo } from '../../../federation/kubefed/placement.js';
import {
  admitClusterLabels,
  admitExplicitPlacement,
  admitNamespaceTenant,
  clusterTenant,
  mayEditClusterTopologyLabels,
  namespaceTenant,
  tenantMismatch,
  type Tenancy,
} from '../../../federation/kubefed/tenancy.js';

const ADMIN: UserInfo = { user: 'admin', groups: ['system:masters'] };
const ALICE: UserInfo = { user: 'alice', groups: ['retail-devs'] };

const tenant = (t: string): Record<string, string> => ({ [TENANT_LABEL]: t });

const CLUSTERS: ClusterInfo[] = [
  { name: 'east', labels: { ...tenant('retail'), region: 'east' }, agentTenant: 'retail' },
  { name: 'west', labels: { ...tenant('retail'), region: 'west' } },
  { name: 'north', labels: { ...tenant('payments'), region: 'north' }, agentTenant: 'payments' },
  // Label not injected yet: its agent's tenant stands in.
  { name: 'fresh', labels: { region: 'east' }, agentTenant: 'payments' },
  // Labelled retail, but its agent's certificate says payments.
  { name: 'liar', labels: { ...tenant('retail'), region: 'east' }, agentTenant: 'payments' },
  { name: 'bare', labels: {} },
];

function fed(placement: unknown, namespace = 'shop'): KubeObject {
  return { apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedConfigMap', metadata: { name: 'cfg', namespace }, spec: { placement } };
}

const names = (s: Set<string>): string[] => [...s].sort();
const retail: Tenancy = { tenant: 'retail', untenanted: 'untenanted' };

describe('tenancy: placement', function () {
  it('clusterSelector {} of a retail object selects only retail clusters whose label agrees with their agent', function () {
    assert.deepEqual(names(computePlacement(fed({ clusterSelector: {} }), CLUSTERS, undefined, retail)), ['east', 'west']);
  });

  it('a selector is ANDed with the tenant', function () {
    const placed = computePlacement(fed({ clusterSelector: { matchLabels: { region: 'east' } } }), CLUSTERS, undefined, retail);
    assert.deepEqual(names(placed), ['east']);
  });

  it('an explicit cluster of another tenant is not placed (admission refuses it before)', function () {
    assert.deepEqual(names(computePlacement(fed({ clusters: [{ name: 'north' }, { name: 'east' }] }), CLUSTERS, undefined, retail)), ['east']);
  });

  it("a cluster without a label yet counts as its agent's tenant", function () {
    const payments: Tenancy = { tenant: 'payments', untenanted: 'untenanted' };
    assert.deepEqual(names(computePlacement(fed({ clusterSelector: {} }), CLUSTERS, undefined, payments)), ['fresh', 'north']);
  });

  it('a mismatched cluster gets nothing, whatever the tenant or policy', function () {
    for (const t of [retail, { tenant: 'payments', untenanted: 'all' } as Tenancy, { tenant: undefined, untenanted: 'all' } as Tenancy]) {
      assert.ok(!computePlacement(fed({ clusterSelector: {} }), CLUSTERS, undefined, t).has('liar'));
    }
    // Without tenancy (callers that do not know the namespace) too.
    assert.ok(!computePlacement(fed({ clusterSelector: {} }), CLUSTERS).has('liar'));
  });

  it("no tenant, policy untenanted: only clusters without a tenant (nor an agent's)", function () {
    assert.deepEqual(names(computePlacement(fed({ clusterSelector: {} }), CLUSTERS, undefined, { tenant: undefined, untenanted: 'untenanted' })), ['bare']);
  });

  it('no tenant, policy all: every cluster but the mismatched one', function () {
    assert.deepEqual(names(computePlacement(fed({ clusterSelector: {} }), CLUSTERS, undefined, { tenant: undefined, untenanted: 'all' })), ['bare', 'east', 'fresh', 'north', 'west']);
  });

  it('the namespace placement is intersected as before', function () {
    assert.deepEqual(names(computePlacement(fed({ clusterSelector: {} }), CLUSTERS, new Set(['west', 'north']), retail)), ['west']);
  });

  it('property: placement with a tenant ⊆ placement without, and only clusters of that tenant', function () {
    const tenants = fc.constantFrom('retail', 'payments', undefined);
    const cluster = fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd', 'e'), label: tenants, agent: tenants, region: fc.constantFrom('x', 'y') });
    fc.assert(
      fc.property(fc.uniqueArray(cluster, { selector: (c) => c.name }), tenants, fc.constantFrom('untenanted' as const, 'all' as const), fc.boolean(), (cs, objTenant, untenanted, bySelector) => {
        const clusters: ClusterInfo[] = cs.map((c) => ({ name: c.name, labels: { region: c.region, ...(c.label ? tenant(c.label) : {}) }, ...(c.agent ? { agentTenant: c.agent } : {}) }));
        const obj = fed(bySelector ? { clusterSelector: { matchLabels: { region: 'x' } } } : { clusters: cs.map((c) => ({ name: c.name })) });
        const placed = computePlacement(obj, clusters, undefined, { tenant: objTenant, untenanted });
        const unrestricted = selectedClusters(obj, clusters);
        for (const name of placed) {
          assert.ok(unrestricted.has(name));
          const c = clusters.find((x) => x.name === name)!;
          assert.ok(!tenantMismatch(c));
          if (objTenant !== undefined) assert.equal(clusterTenant(c), objTenant);
          else if (untenanted === 'untenanted') assert.equal(clusterTenant(c), undefined);
        }
      }),
    );
  });
});

describe('tenancy: the tenant of a namespace', function () {
  const ns = (labels?: Record<string, string>): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', ...(labels ? { labels } : {}) } });
  const fedNs = (labels?: Record<string, string>): KubeObject => ({
    apiVersion: 'types.kubefed.io/v1beta1',
    kind: 'FederatedNamespace',
    metadata: { name: 'shop', namespace: 'shop' },
    spec: { template: labels ? { metadata: { labels } } : {} },
  });

  it("the FederatedNamespace's template label wins over the Namespace's label", function () {
    assert.equal(namespaceTenant(fedNs(tenant('retail')), ns(tenant('payments'))), 'retail');
  });

  it("without a template label the Namespace's label counts; without either, none", function () {
    assert.equal(namespaceTenant(fedNs(), ns(tenant('payments'))), 'payments');
    assert.equal(namespaceTenant(undefined, ns(tenant('payments'))), 'payments');
    assert.equal(namespaceTenant(fedNs({ other: 'x' }), ns()), undefined);
    assert.equal(namespaceTenant(undefined, undefined), undefined);
    // An empty value is no tenant.
    assert.equal(namespaceTenant(fedNs(tenant('')), ns(tenant('payments'))), 'payments');
  });
});

describe('tenancy: admission of KubeFedCluster labels', function () {
  const admit = (oldLabels: Record<string, string> | undefined, newLabels: Record<string, string> | undefined, user: UserInfo | undefined, agentTenant?: string) =>
    admitClusterLabels({ name: 'north', oldLabels, newLabels, agentTenant, user });

  it('only system:masters may edit topology labels', function () {
    assert.equal(mayEditClusterTopologyLabels(ADMIN), true);
    assert.equal(mayEditClusterTopologyLabels(ALICE), false);
  });

  it('a non-admin may not change, remove or add the tenant or cell label of an existing cluster', function () {
    const changed = admit(tenant('payments'), tenant('retail'), ALICE);
    assert.equal(changed?.code, 403);
    assert.equal(changed?.reason, 'TopologyLabelChanged');
    assert.match(changed!.message, /KubeFedCluster "north": label fedtunnel\.io\/tenant may only be changed by an admin \("payments" → "retail"\); user "alice"/);
    assert.equal(admit(tenant('payments'), {}, ALICE)?.reason, 'TopologyLabelChanged');
    assert.equal(admit({ ...tenant('payments'), [CELL_LABEL]: 'cell-a' }, { ...tenant('payments'), [CELL_LABEL]: 'cell-b' }, ALICE)?.reason, 'TopologyLabelChanged');
    assert.equal(admit(tenant('payments'), { ...tenant('payments'), [CELL_LABEL]: 'cell-a' }, ALICE)?.reason, 'TopologyLabelChanged');
    assert.match(admit({ [CELL_LABEL]: 'cell-a' }, undefined, ALICE)!.message, /label fedtunnel\.io\/cell .*\("cell-a" → \(none\)\)/);
  });

  it('other labels stay editable, and an unchanged topology passes', function () {
    assert.equal(admit({ ...tenant('payments'), region: 'a' }, { ...tenant('payments'), region: 'b' }, ALICE, 'payments'), null);
  });

  it("a tenant label that contradicts the agent's certificate is refused, on create and update", function () {
    const created = admit(undefined, tenant('retail'), ALICE, 'payments');
    assert.equal(created?.reason, 'TenantContradictsAgent');
    assert.match(created!.message, /label fedtunnel\.io\/tenant=retail contradicts the agent certificate of cluster "north", which says tenant "payments"/);
    assert.equal(admit(undefined, tenant('payments'), ALICE, 'payments'), null);
    // No agent seen: nothing to contradict (the controller reports a mismatch once it connects).
    assert.equal(admit(undefined, tenant('retail'), ALICE), null);
  });

  it('an admin may do all of it; so may the hub itself (no user: the label injection)', function () {
    for (const user of [ADMIN, undefined]) {
      assert.equal(admit(tenant('payments'), tenant('retail'), user, 'payments'), null);
      assert.equal(admit({}, tenant('payments'), user, 'payments'), null);
    }
  });
});

describe('tenancy: admission of namespace tenants', function () {
  it('a non-admin may not change the tenant of a Namespace or FederatedNamespace; an admin may', function () {
    const r = admitNamespaceTenant({ kind: 'FederatedNamespace', name: 'shop', oldTenant: 'retail', newTenant: 'payments', user: ALICE });
    assert.equal(r?.reason, 'NamespaceTenantChanged');
    assert.match(r!.message, /FederatedNamespace "shop": the tenant \(label fedtunnel\.io\/tenant\) may only be changed by an admin \("retail" → "payments"\)/);
    assert.equal(admitNamespaceTenant({ kind: 'Namespace', name: 'shop', oldTenant: 'retail', newTenant: 'retail', user: ALICE }), null);
    assert.equal(admitNamespaceTenant({ kind: 'Namespace', name: 'shop', oldTenant: 'retail', newTenant: undefined, user: ADMIN }), null);
  });
});

describe('tenancy: admission of explicit placement', function () {
  const known = new Map(CLUSTERS.map((c) => [c.name, c]));
  const admit = (object: KubeObject, previous?: KubeObject, tenancy: Tenancy = retail) =>
    admitExplicitPlacement({ kind: 'FederatedConfigMap', namespace: 'shop', name: 'cfg', object, previous, tenancy, clusters: known });

  it("naming another tenant's cluster is refused, naming the cluster and both tenants", function () {
    const r = admit(fed({ clusters: [{ name: 'east' }, { name: 'north' }] }));
    assert.equal(r?.code, 403);
    assert.equal(r?.reason, 'CrossTenantPlacement');
    assert.equal(r?.message, 'FederatedConfigMap "cfg" in namespace "shop" belongs to tenant "retail" and may not be placed on cluster "north" of tenant "payments" (spec.placement.clusters[1].name)');
  });

  it('a mismatched cluster is refused with what disagrees', function () {
    assert.match(admit(fed({ clusters: [{ name: 'liar' }] }))!.message, /cluster "liar" whose tenant label "retail" disagrees with its agent's tenant "payments"/);
  });

  it('own clusters, unknown clusters and selectors pass', function () {
    assert.equal(admit(fed({ clusters: [{ name: 'east' }, { name: 'west' }, { name: 'not-joined' }] })), null);
    assert.equal(admit(fed({ clusterSelector: {} })), null);
    assert.equal(admit(fed({ clusterSelector: { matchLabels: tenant('payments') } })), null);
  });

  it('an update is checked only for the clusters it adds', function () {
    const before = fed({ clusters: [{ name: 'north' }] });
    assert.equal(admit(fed({ clusters: [{ name: 'north' }, { name: 'east' }] }), before), null);
    assert.equal(admit(fed({ clusters: [{ name: 'east' }] }), fed({ clusters: [{ name: 'west' }] })), null);
    assert.equal(admit(fed({ clusters: [{ name: 'north' }] }), fed({ clusters: [] }))?.reason, 'CrossTenantPlacement');
  });

  it('an object without a tenant may not name a tenant cluster under the untenanted policy, but may under all', function () {
    const r = admit(fed({ clusters: [{ name: 'east' }] }), undefined, { tenant: undefined, untenanted: 'untenanted' });
    assert.match(r!.message, /belongs to tenant \(none\) and may not be placed on cluster "east" of tenant "retail"/);
    assert.equal(admit(fed({ clusters: [{ name: 'bare' }] }), undefined, { tenant: undefined, untenanted: 'untenanted' }), null);
    assert.equal(admit(fed({ clusters: [{ name: 'east' }] }), undefined, { tenant: undefined, untenanted: 'all' }), null);
  });
});
