import { strict as assert } from 'node:assert';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { annotationPolicyOf, DEFAULT_ANNOTATION_POLICY, isPreserved, isPropagated, isQualifiedName, validateAnnotationPolicy } from '../../../federation/kubefed/annotation-policy.js';
import { federatedTypeConfigFor, kubeFedConfigValues } from '../../../federation/kubefed/api.js';
import { validateFederatedTypeConfig, validateKubeFedConfig } from '../../../federation/kubefed/validation.js';

const policy = {
  propagate: { keys: ['ops.example/owner'], prefixes: ['team.example/'] },
  preserve: { keys: ['team.example/status'], prefixes: ['status.example/'] },
};

function kubeFedConfig(spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'core.kubefed.io/v1beta1', kind: 'KubeFedConfig', metadata: { name: 'kubefed', namespace: 'kube-federation-system' }, spec: { scope: 'Cluster', ...spec } };
}

function ftc(annotationPolicy: unknown): KubeObject {
  const obj = federatedTypeConfigFor({ group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', namespaced: true });
  (obj.spec as Record<string, unknown>).annotationPolicy = annotationPolicy;
  return obj;
}

describe('kubefed: annotation policy', function () {
  it('matches exact keys and prefixes; preserve wins over propagate', function () {
    const p = annotationPolicyOf({ annotationPolicy: policy })!;
    assert.equal(isPropagated(p, 'ops.example/owner'), true);
    assert.equal(isPropagated(p, 'ops.example/other'), false);
    assert.equal(isPropagated(p, 'team.example/tier'), true);
    assert.equal(isPropagated(p, 'team.example/status'), false, 'preserved');
    assert.equal(isPreserved(p, 'team.example/status'), true);
    assert.equal(isPreserved(p, 'status.example/x'), true);
    assert.equal(isPropagated(DEFAULT_ANNOTATION_POLICY, 'team.example/tier'), true, 'by default every template annotation propagates');
    assert.equal(isPropagated(DEFAULT_ANNOTATION_POLICY, 'fedtunnel.io/desired-hash'), false, 'never the controller\'s own');
  });

  it('absent means inherit; a stated policy without propagate keeps propagating all; propagate: {} means nothing', function () {
    assert.equal(annotationPolicyOf({}), undefined);
    assert.deepEqual(annotationPolicyOf({ annotationPolicy: { propagate: { keys: ['a'] } } }), { propagate: { keys: ['a'], prefixes: [] }, preserve: { keys: [], prefixes: [] } });
    assert.deepEqual(annotationPolicyOf({ annotationPolicy: {} }), DEFAULT_ANNOTATION_POLICY);
    assert.deepEqual(annotationPolicyOf({ annotationPolicy: { propagate: {} } })!.propagate, { keys: [], prefixes: [] }, 'propagate nothing');
    assert.deepEqual(annotationPolicyOf({ annotationPolicy: { preserve: { keys: ['x'] } } })!.propagate.all, true);
    assert.deepEqual(validateAnnotationPolicy({ propagate: { all: 'yes' } }).map((e) => e.field), ['spec.annotationPolicy.propagate.all']);
  });

  it('KubeFedConfig carries the default for types without their own', function () {
    assert.deepEqual(kubeFedConfigValues(null).annotationPolicy, DEFAULT_ANNOTATION_POLICY);
    assert.deepEqual(kubeFedConfigValues(kubeFedConfig({ annotationPolicy: policy })).annotationPolicy, policy);
  });

  it('annotation keys are qualified names', function () {
    for (const ok of ['a', 'team.example/tier', 'example.com/a_b.c-d', `x/${'a'.repeat(63)}`]) assert.equal(isQualifiedName(ok), true, ok);
    for (const bad of ['', '/a', 'a/', 'Team_/x', 'a/-b', `x/${'a'.repeat(64)}`, 'a b', 'a,b']) assert.equal(isQualifiedName(bad), false, bad);
  });

  it('admission: every bad entry named by its field', function () {
    assert.deepEqual(validateAnnotationPolicy(undefined), []);
    assert.deepEqual(validateAnnotationPolicy(policy), []);
    const fields = (v: unknown): string[] => validateAnnotationPolicy(v).map((e) => e.field);
    assert.deepEqual(fields('all'), ['spec.annotationPolicy']);
    assert.deepEqual(fields({ propagte: {} }), ['spec.annotationPolicy.propagte']);
    assert.deepEqual(fields({ propagate: { keys: 'a' } }), ['spec.annotationPolicy.propagate.keys']);
    assert.deepEqual(fields({ propagate: { keys: ['ok/a', 'bad key', 'ok/a'] } }), ['spec.annotationPolicy.propagate.keys[1]', 'spec.annotationPolicy.propagate.keys[2]']);
    assert.deepEqual(fields({ preserve: { prefixes: ['', 'a,b', 7] } }), ['spec.annotationPolicy.preserve.prefixes[0]', 'spec.annotationPolicy.preserve.prefixes[1]', 'spec.annotationPolicy.preserve.prefixes[2]']);
    assert.deepEqual(fields({ propagate: { keys: ['fedtunnel.io/desired-hash'], prefixes: ['fedtunnel.io/'] }, preserve: { keys: ['fedtunnel.io/propagated-annotations'] } }), [
      'spec.annotationPolicy.propagate.keys[0]',
      'spec.annotationPolicy.propagate.prefixes[0]',
      'spec.annotationPolicy.preserve.keys[0]',
    ]);
    assert.match(validateAnnotationPolicy({ propagate: { prefixes: ['fedtunnel.io/'] } })[0]!.message, /controller's own annotation/);
  });

  it('FederatedTypeConfig and KubeFedConfig admission include the policy', function () {
    assert.deepEqual(validateFederatedTypeConfig(ftc(policy)), []);
    assert.deepEqual(validateFederatedTypeConfig(ftc({ propagate: { keys: ['no spaces please'] } })).map((e) => e.field), ['spec.annotationPolicy.propagate.keys[0]']);
    assert.deepEqual(validateKubeFedConfig(kubeFedConfig({ annotationPolicy: policy })), []);
    assert.deepEqual(validateKubeFedConfig(kubeFedConfig({ annotationPolicy: { preserve: [] } })).map((e) => e.field), ['spec.annotationPolicy.preserve']);
  });
});
