// Federated<Kind> CRDs: v1beta1 only without a topology webhook; with one, v1beta2 served too
// (storage stays v1beta1) and converted by that webhook; a changed webhook address updates the CRD.
import { strict as assert } from 'node:assert';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { federatedTypeConfigFor, typeInfoFromFtc } from '../../../federation/kubefed/api.js';
import { crdServesSame, federatedCrdFor } from '../../../federation/kubefed/crds.js';

const info = typeInfoFromFtc(federatedTypeConfigFor({ group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true }));
const webhook = { url: 'https://topology-webhook.fed.svc.east.tunnel:8443/convert', caBundle: Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64') };
type CrdSpec = { versions: Array<{ name: string; served: boolean; storage: boolean; subresources?: unknown }>; conversion?: unknown };
const specOf = (crd: KubeObject): CrdSpec => crd.spec as CrdSpec;

describe('kubefed CRDs: the cell form', function () {
  it('serves v1beta1 only when no topology webhook is configured', function () {
    const crd = federatedCrdFor(info, ['cm']);
    assert.deepEqual(specOf(crd).versions.map((v) => [v.name, v.served, v.storage]), [['v1beta1', true, true]]);
    assert.equal(specOf(crd).conversion, undefined);
  });

  it('adds v1beta2 (served, not stored, with status) converted by the webhook', function () {
    const spec = specOf(federatedCrdFor(info, ['cm'], webhook));
    assert.deepEqual(spec.versions.map((v) => [v.name, v.served, v.storage, Boolean(v.subresources)]), [['v1beta1', true, true, true], ['v1beta2', true, false, true]]);
    assert.deepEqual(spec.conversion, { strategy: 'Webhook', webhook: { clientConfig: webhook, conversionReviewVersions: ['v1'] } });
  });

  it('an existing CRD with another webhook address, or without the webhook, is not the same', function () {
    const wanted = federatedCrdFor(info, [], webhook);
    assert.ok(crdServesSame(wanted, federatedCrdFor(info, ['cm'], webhook)), 'short names do not matter');
    assert.ok(!crdServesSame(federatedCrdFor(info), wanted));
    assert.ok(!crdServesSame(federatedCrdFor(info, [], { ...webhook, url: 'https://other.east.tunnel:8443/convert' }), wanted));
    assert.ok(!crdServesSame(wanted, federatedCrdFor(info)), 'removing the flags goes back to v1beta1 only');
  });
});
