import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { annotationChanges, memberAnnotations, propagatedAnnotations, recordedKeys } from '../../../federation/controller/annotations.js';
import { decide } from '../../../federation/controller/decide.js';
import { desiredObject, HASH_ANNOTATION } from '../../../federation/controller/desired.js';
import { DEFAULT_ANNOTATION_POLICY, isPreserved, isPropagated, PROPAGATED_ANNOTATION, type AnnotationPolicy } from '../../../federation/kubefed/annotation-policy.js';
import type { TargetType } from '../../../federation/kubefed/api.js';

const DEPLOYMENT: TargetType = { group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', namespaced: true };
const REVISION = 'deployment.kubernetes.io/revision';

const POLICY: AnnotationPolicy = {
  propagate: { keys: ['ops.example/owner'], prefixes: ['team.example/'] },
  preserve: { keys: ['team.example/status'], prefixes: [] },
};

function federated(annotations: Record<string, string> | undefined, overrides?: unknown[]): KubeObject {
  return {
    apiVersion: 'types.kubefed.io/v1beta1',
    kind: 'FederatedDeployment',
    metadata: { name: 'web', namespace: 'shop', generation: 1 },
    spec: {
      template: { metadata: { ...(annotations ? { annotations } : {}) }, spec: { replicas: 2 } },
      placement: { clusters: [{ name: 'east' }] },
      ...(overrides ? { overrides } : {}),
    },
  };
}

/** A member cluster that stores what the controller writes, bumping resourceVersion. */
class Member {
  object: KubeObject | undefined;
  private rv = 1;

  /** Runs the decision against the stored object and applies its write; returns the action taken. */
  sync(fed: KubeObject, policy: AnnotationPolicy): string {
    const { action } = decide({ fed, target: DEPLOYMENT, cluster: 'east', placed: true, ready: true, member: this.object, annotationPolicy: policy });
    if (action.kind === 'create' || action.kind === 'update') this.store(action.object);
    return action.kind;
  }

  store(obj: KubeObject): void {
    this.object = { ...structuredClone(obj), metadata: { ...structuredClone(obj.metadata), resourceVersion: String(++this.rv) } };
  }

  /** A member-side write (another controller, a user) of annotations: undefined removes the key. */
  annotate(changes: Record<string, string | undefined>): void {
    const next = structuredClone(this.object!);
    const annotations = { ...next.metadata.annotations };
    for (const [k, v] of Object.entries(changes)) {
      if (v === undefined) delete annotations[k];
      else annotations[k] = v;
    }
    next.metadata.annotations = annotations;
    this.store(next);
  }

  get annotations(): Record<string, string> {
    return this.object?.metadata.annotations ?? {};
  }
}

describe('federation/controller: annotation propagation', function () {
  it('propagates what the policy names, never preserved keys, and records the propagated keys', function () {
    const tmpl = { 'ops.example/owner': 'shop', 'team.example/tier': 'gold', 'team.example/status': 'from-template', 'other.example/x': '1' };
    assert.deepEqual(propagatedAnnotations(POLICY, tmpl), {
      'ops.example/owner': 'shop',
      'team.example/tier': 'gold',
      [PROPAGATED_ANNOTATION]: 'ops.example/owner,team.example/tier',
    });
    assert.deepEqual(propagatedAnnotations({ ...POLICY, propagate: { keys: [], prefixes: [] } }, tmpl), {}, 'propagate: {} propagates nothing');
    assert.deepEqual(propagatedAnnotations(DEFAULT_ANNOTATION_POLICY, tmpl), { ...tmpl, [PROPAGATED_ANNOTATION]: Object.keys(tmpl).sort().join(',') }, 'by default every template annotation propagates');
    assert.deepEqual(propagatedAnnotations({ ...POLICY, propagate: { keys: [], prefixes: ['fedtunnel.io/', 'team.example/'] } }, { [HASH_ANNOTATION]: 'forged', 'team.example/a': '1' }), {
      'team.example/a': '1',
      [PROPAGATED_ANNOTATION]: 'team.example/a',
    }, 'the controller\'s own annotations never come from a template');
    assert.deepEqual(recordedKeys({ [PROPAGATED_ANNOTATION]: 'a,b/c' }), ['a', 'b/c']);
    assert.deepEqual(recordedKeys(undefined), []);
  });

  it('merges over the member: its own keys kept, recorded keys no longer wanted removed unless now preserved', function () {
    const member = { [REVISION]: '3', 'team.example/old': 'x', 'team.example/status': 'ok', [PROPAGATED_ANNOTATION]: 'team.example/old,team.example/status' };
    const desired = { 'team.example/tier': 'gold', [PROPAGATED_ANNOTATION]: 'team.example/tier' };
    assert.deepEqual(memberAnnotations(desired, member, POLICY), { [REVISION]: '3', 'team.example/status': 'ok', 'team.example/tier': 'gold', [PROPAGATED_ANNOTATION]: 'team.example/tier' });
    assert.deepEqual(memberAnnotations({}, member, POLICY), { [REVISION]: '3', 'team.example/status': 'ok' }, 'nothing propagated any more: the record goes too');
    assert.deepEqual(annotationChanges({ a: '1', b: '2' }, { a: '1', b: '3', c: '4' }), { set: ['b', 'c'], removed: [] });
    assert.deepEqual(annotationChanges({ a: '1', b: '2' }, { a: '1' }), { set: [], removed: ['b'] });
  });

  it('a member controller writing its own annotations causes no update (kubefed#982); a managed key changed on the member is repaired', function () {
    const fed = federated({ 'ops.example/owner': 'shop', 'team.example/tier': 'gold' });
    const m = new Member();
    assert.equal(m.sync(fed, POLICY), 'create');
    m.annotate({ [REVISION]: '1', 'team.example/status': 'rolled-out', 'team.example/extra': 'member-side' });
    assert.equal(m.sync(fed, POLICY), 'none');
    m.annotate({ 'team.example/tier': 'silver' });
    assert.equal(m.sync(fed, POLICY), 'update');
    assert.equal(m.annotations['team.example/tier'], 'gold');
    assert.equal(m.annotations[REVISION], '1');
    assert.equal(m.annotations['team.example/extra'], 'member-side');
    m.annotate({ 'ops.example/owner': undefined });
    assert.equal(m.sync(fed, POLICY), 'update', 'a managed key deleted on the member is put back');
    assert.equal(m.annotations['ops.example/owner'], 'shop');
  });

  it('a template annotation change updates (the hash covers it); a key removed from the template or the policy is removed', function () {
    const m = new Member();
    m.sync(federated({ 'ops.example/owner': 'shop', 'team.example/tier': 'gold' }), POLICY);
    const before = m.annotations[HASH_ANNOTATION];
    assert.equal(m.sync(federated({ 'ops.example/owner': 'payments', 'team.example/tier': 'gold' }), POLICY), 'update');
    assert.notEqual(m.annotations[HASH_ANNOTATION], before);
    assert.equal(m.annotations['ops.example/owner'], 'payments');
    m.annotate({ [REVISION]: '2' });
    assert.equal(m.sync(federated({ 'ops.example/owner': 'payments' }), POLICY), 'update');
    assert.equal(m.annotations['team.example/tier'], undefined);
    assert.equal(m.annotations[PROPAGATED_ANNOTATION], 'ops.example/owner');
    assert.equal(m.annotations[REVISION], '2');
    assert.equal(m.sync(federated({ 'ops.example/owner': 'payments' }), { ...POLICY, propagate: { keys: [], prefixes: [] } }), 'update', 'a policy change is a desired-state change');
    assert.equal(m.annotations['ops.example/owner'], undefined);
    assert.equal(m.annotations[PROPAGATED_ANNOTATION], undefined);
    assert.equal(m.annotations[REVISION], '2');
  });

  it('a key that becomes preserved is released as it is, not removed', function () {
    const m = new Member();
    m.sync(federated({ 'team.example/status': 'x', 'team.example/tier': 'gold' }), { ...POLICY, preserve: { keys: [], prefixes: [] } });
    assert.equal(m.annotations['team.example/status'], 'x');
    assert.equal(m.sync(federated({ 'team.example/status': 'y', 'team.example/tier': 'gold' }), POLICY), 'update');
    assert.equal(m.annotations['team.example/status'], 'x');
    assert.equal(m.annotations[PROPAGATED_ANNOTATION], 'team.example/tier');
  });

  it('overrides may set annotations; the policy decides for them as for the template', function () {
    const overrides = [{ clusterName: 'east', clusterOverrides: [{ op: 'add', path: '/metadata/annotations/team.example~1region', value: 'eu' }, { op: 'add', path: '/metadata/annotations/other.example~1x', value: '1' }] }];
    const { object } = desiredObject(federated({ 'team.example/tier': 'gold' }, overrides), DEPLOYMENT, 'east', POLICY);
    assert.equal(object.metadata.annotations!['team.example/region'], 'eu');
    assert.equal(object.metadata.annotations!['other.example/x'], undefined);
  });

  describe('properties', function () {
    const KEYS = ['team.example/a', 'team.example/b', 'ops.example/owner', 'ops.example/x', 'other.example/y', REVISION];
    const PREFIXES = ['team.example/', 'ops.example/', 'other.'];
    const rules = fc.record({ keys: fc.subarray(KEYS), prefixes: fc.subarray(PREFIXES) });
    const policy = fc.record({ propagate: rules, preserve: rules });
    const annotations = fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom('1', '2', '3'));
    const memberWrites = fc.dictionary(fc.constantFrom(...KEYS), fc.option(fc.constantFrom('1', '2', 'm'), { nil: undefined }));

    /** Created with (p1, t1), then written on the member, then synced with (p2, t2). */
    const scenario = fc.record({ p1: policy, t1: annotations, writes: memberWrites, p2: policy, t2: annotations });

    it('member-only and preserved keys are never changed', function () {
      fc.assert(
        fc.property(scenario, ({ p1, t1, writes, p2, t2 }) => {
          const m = new Member();
          m.sync(federated(t1), p1);
          m.annotate(writes);
          const before = { ...m.annotations };
          const recorded = new Set(recordedKeys(before));
          m.sync(federated(t2), p2);
          for (const key of KEYS) {
            const memberOnly = !recorded.has(key) && !(key in t2 && isPropagated(p2, key));
            if (memberOnly || isPreserved(p2, key)) assert.equal(m.annotations[key], before[key], key);
          }
        }),
      );
    });

    it('managed keys converge to the template, removed ones go, and the next sync writes nothing', function () {
      fc.assert(
        fc.property(scenario, fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom('x', 'y')), ({ p1, t1, writes, p2, t2 }, later) => {
          const m = new Member();
          m.sync(federated(t1), p1);
          m.annotate(writes);
          const recorded = new Set(recordedKeys(m.annotations));
          m.sync(federated(t2), p2);
          const managed = KEYS.filter((k) => k in t2 && isPropagated(p2, k));
          for (const key of managed) assert.equal(m.annotations[key], t2[key], key);
          for (const key of recorded) if (!managed.includes(key) && !isPreserved(p2, key)) assert.equal(m.annotations[key], undefined, key);
          assert.deepEqual(recordedKeys(m.annotations), [...managed].sort());
          assert.equal(m.sync(federated(t2), p2), 'none', 'converged');
          // Member-side writes of keys the controller does not manage never cause an update.
          m.annotate(Object.fromEntries(Object.entries(later).filter(([k]) => !managed.includes(k))));
          assert.equal(m.sync(federated(t2), p2), 'none', 'no loop');
        }),
      );
    });
  });
});
