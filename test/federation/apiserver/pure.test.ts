// Unit tests of the API server's pure parts: selectors, patches, Status errors, path routing,
// storage mapping, validation, tables, authorization, protobuf bodies.
import { strict as assert } from 'node:assert';
import { forbiddenMessage } from '../../../federation/apiserver/authz.js';
import { ApiError, errors } from '../../../federation/apiserver/errors.js';
import { mapStoreError } from '../../../federation/apiserver/resources.js';
import { StoreError } from '../../../federation/store/types.js';
import { jsonPatch, mergePatch, PatchError } from '../../../federation/apiserver/patch.js';
import { decodeProtobufObject } from '../../../federation/apiserver/protobuf.js';
import { parsePath } from '../../../federation/apiserver/routes.js';
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector, SelectorError } from '../../../federation/apiserver/selectors.js';
import { decodeContinue, decodeObject, encodeContinue, encodeObject, objectKey, typePrefix } from '../../../federation/apiserver/storage.js';
import { humanAge, toTable, wantsTable } from '../../../federation/apiserver/table.js';
import { memberRegistry } from '../../../federation/apiserver/types.js';
import { validateName } from '../../../federation/apiserver/validation.js';
import { classifyEvent } from '../../../federation/apiserver/object-watch.js';

const registry = memberRegistry();
const cm = registry.lookup('', 'v1', 'configmaps')!;
const ns = registry.lookup('', 'v1', 'namespaces')!;
const deploy = registry.lookup('apps', 'v1', 'deployments')!;
const isNs = (g: string, v: string, p: string) => registry.lookup(g, v, p)?.namespaced === true;

describe('apiserver: label selectors', function () {
  const labels = { app: 'web', tier: 'front', 'example.com/team': 'a' };
  const sel = (text: string) => matchLabels(parseLabelSelector(text), labels);

  it('matches =, ==, !=', function () {
    assert.equal(sel('app=web'), true);
    assert.equal(sel('app==web'), true);
    assert.equal(sel('app!=web'), false);
    assert.equal(sel('app!=db'), true);
    assert.equal(sel('missing!=x'), true);
    assert.equal(sel('app=web,tier=back'), false);
    assert.equal(sel('example.com/team=a'), true);
  });

  it('matches in, notin, exists and !key', function () {
    assert.equal(sel('app in (web, db)'), true);
    assert.equal(sel('app in (db)'), false);
    assert.equal(sel('app notin (db,cache)'), true);
    assert.equal(sel('missing notin (x)'), true);
    assert.equal(sel('tier'), true);
    assert.equal(sel('!tier'), false);
    assert.equal(sel('!missing'), true);
    assert.equal(sel('app in (web,db),!missing,tier'), true);
    assert.equal(sel(''), true);
  });

  it('rejects malformed selectors', function () {
    for (const bad of ['app in (web', 'a=b,,c=d', 'bad key=x', 'app=(', '=x', 'app in web)']) {
      assert.throws(() => parseLabelSelector(bad), SelectorError, bad);
    }
  });
});

describe('apiserver: field selectors', function () {
  const fields = { 'metadata.name': 'a', 'metadata.namespace': 'x' };
  it('matches metadata.name and metadata.namespace', function () {
    assert.equal(matchFields(parseFieldSelector('metadata.name=a'), fields), true);
    assert.equal(matchFields(parseFieldSelector('metadata.name==a,metadata.namespace!=x'), fields), false);
    assert.equal(matchFields(parseFieldSelector('metadata.namespace!=y'), fields), true);
  });
  it('rejects unsupported fields', function () {
    assert.throws(() => parseFieldSelector('spec.foo=1'), /field label not supported/);
    assert.throws(() => parseFieldSelector('metadata.name'), SelectorError);
  });
});

describe('apiserver: patches', function () {
  it('merge patch adds, replaces and removes with null', function () {
    assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 }, e: [1] }, { b: { c: null, x: 1 }, e: [2], f: 'n' }), { a: 1, b: { d: 3, x: 1 }, e: [2], f: 'n' });
    assert.deepEqual(mergePatch({ a: 1 }, 'x'), 'x');
  });
  it('JSON patch supports all operations with pointer escaping', function () {
    const doc = { a: { 'b/c': 1, 'd~e': 2 }, list: [1, 2] };
    const out = jsonPatch(doc, [
      { op: 'add', path: '/list/-', value: 3 },
      { op: 'add', path: '/list/0', value: 0 },
      { op: 'remove', path: '/a/b~1c' },
      { op: 'replace', path: '/a/d~0e', value: 5 },
      { op: 'copy', from: '/a/d~0e', path: '/copied' },
      { op: 'move', from: '/copied', path: '/moved' },
      { op: 'test', path: '/moved', value: 5 },
    ]);
    assert.deepEqual(out, { a: { 'd~e': 5 }, list: [0, 1, 2, 3], moved: 5 });
    assert.deepEqual(doc, { a: { 'b/c': 1, 'd~e': 2 }, list: [1, 2] }, 'the input is not modified');
  });
  it('JSON patch failures throw PatchError', function () {
    assert.throws(() => jsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }]), PatchError);
    assert.throws(() => jsonPatch({ a: 1 }, [{ op: 'remove', path: '/b' }]), PatchError);
    assert.throws(() => jsonPatch({ a: [] }, [{ op: 'replace', path: '/a/3', value: 1 }]), PatchError);
    assert.throws(() => jsonPatch({}, { op: 'add' }), PatchError);
    assert.throws(() => jsonPatch({}, [{ op: 'nope', path: '/a' }]), PatchError);
  });
});

describe('apiserver: Status errors', function () {
  it('carry code, reason and message', function () {
    assert.deepEqual(errors.notFound('', 'configmaps', 'a').toStatus(), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'configmaps "a" not found',
      reason: 'NotFound',
      details: { name: 'a', group: '', kind: 'configmaps' },
      code: 404,
    });
    assert.equal(errors.alreadyExists('apps', 'deployments', 'd').message, 'deployments.apps "d" already exists');
    const cases: Array<[ReturnType<typeof errors.badRequest>, number, string]> = [
      [errors.conflict('', 'configmaps', 'a', 'x'), 409, 'Conflict'],
      [errors.invalid('ConfigMap', 'a', [{ field: 'metadata.name', message: 'bad' }]), 422, 'Invalid'],
      [errors.badRequest('x'), 400, 'BadRequest'],
      [errors.forbidden('x'), 403, 'Forbidden'],
      [errors.unauthorized(), 401, 'Unauthorized'],
      [errors.methodNotSupported('PUT', '/x'), 405, 'MethodNotAllowed'],
      [errors.tooLarge(10), 413, 'RequestEntityTooLarge'],
      [errors.unsupportedMediaType('text/plain'), 415, 'UnsupportedMediaType'],
      [errors.expired('x'), 410, 'Expired'],
      [errors.unavailable('x'), 503, 'ServiceUnavailable'],
      [errors.insufficientStorage('x'), 507, 'InsufficientStorage'],
    ];
    for (const [err, code, reason] of cases) {
      const s = err.toStatus();
      assert.equal(s.code, code);
      assert.equal(s.reason, reason);
      assert.equal(s.status, 'Failure');
    }
  });
});

describe('apiserver: store failures as Status', function () {
  it('a full disk is 507, a read-only or unreachable store 503; the store error stays the cause (for the log), not the message', function () {
    const cases: Array<[StoreError, number, string, RegExp]> = [
      [new StoreError('NO_SPACE', 'sqlite: SQLITE_FULL: database or disk is full'), 507, 'InsufficientStorage', /^storage is full/],
      [new StoreError('READ_ONLY', 'sqlite: SQLITE_READONLY: attempt to write a readonly database'), 503, 'ServiceUnavailable', /^storage is read-only/],
      [new StoreError('UNAVAILABLE', 'mysql: ECONNREFUSED: connect ECONNREFUSED 10.0.0.9:3306'), 503, 'ServiceUnavailable', /^storage is unavailable$/],
    ];
    for (const [storeError, code, reason, message] of cases) {
      assert.throws(
        () => mapStoreError(storeError),
        (err: unknown) => err instanceof ApiError && err.code === code && err.reason === reason && message.test(err.message) && !err.message.includes('sqlite') && err.cause === storeError,
        storeError.code,
      );
    }
  });
});

describe('apiserver: path routing', function () {
  it('parses discovery paths', function () {
    assert.deepEqual(parsePath('/version', isNs), { kind: 'version' });
    assert.deepEqual(parsePath('/api', isNs), { kind: 'apiVersions' });
    assert.deepEqual(parsePath('/apis', isNs), { kind: 'apiGroupList' });
    assert.deepEqual(parsePath('/apis/apps', isNs), { kind: 'apiGroup', group: 'apps' });
    assert.deepEqual(parsePath('/api/v1', isNs), { kind: 'resourceList', group: '', version: 'v1' });
    assert.deepEqual(parsePath('/apis/apps/v1/', isNs), { kind: 'resourceList', group: 'apps', version: 'v1' });
    assert.deepEqual(parsePath('/healthz', isNs), { kind: 'health', check: 'healthz' });
    assert.deepEqual(parsePath('/other', isNs), { kind: 'notFound' });
  });
  it('parses resource paths, namespaced and cluster-scoped', function () {
    const r = (group: string, plural: string, extra: object = {}) => ({ kind: 'resource', group, version: 'v1', plural, namespace: undefined, name: undefined, subresource: undefined, watchPath: false, ...extra });
    assert.deepEqual(parsePath('/api/v1/namespaces', isNs), r('', 'namespaces'));
    assert.deepEqual(parsePath('/api/v1/namespaces/x', isNs), r('', 'namespaces', { name: 'x' }));
    assert.deepEqual(parsePath('/api/v1/namespaces/x/status', isNs), r('', 'namespaces', { name: 'x', subresource: 'status' }));
    assert.deepEqual(parsePath('/api/v1/namespaces/x/configmaps', isNs), r('', 'configmaps', { namespace: 'x' }));
    assert.deepEqual(parsePath('/api/v1/namespaces/x/configmaps/a', isNs), r('', 'configmaps', { namespace: 'x', name: 'a' }));
    assert.deepEqual(parsePath('/api/v1/configmaps', isNs), r('', 'configmaps'));
    assert.deepEqual(parsePath('/apis/apps/v1/namespaces/x/deployments/d/status', isNs), r('apps', 'deployments', { namespace: 'x', name: 'd', subresource: 'status' }));
    assert.deepEqual(parsePath('/api/v1/watch/namespaces/x/configmaps', isNs), r('', 'configmaps', { namespace: 'x', watchPath: true }));
    assert.deepEqual(parsePath('/api/v1/watch/namespaces/x', isNs), r('', 'namespaces', { name: 'x', watchPath: true }));
    assert.deepEqual(parsePath('/api/v1/namespaces/x/configmaps/a/b/c', isNs), { kind: 'notFound' });
    assert.deepEqual(parsePath('/api/v1/%E0%A4%A', isNs), { kind: 'notFound' });
  });
});

describe('apiserver: storage mapping', function () {
  it('builds keys per group, plural and namespace', function () {
    assert.equal(objectKey(cm, 'x', 'a'), '/registry/core/configmaps/x/a');
    assert.equal(objectKey(ns, undefined, 'x'), '/registry/core/namespaces/x');
    assert.equal(objectKey(deploy, 'x', 'd'), '/registry/apps/deployments/x/d');
    assert.equal(typePrefix(cm), '/registry/core/configmaps/');
    assert.equal(typePrefix(cm, 'x'), '/registry/core/configmaps/x/');
  });
  it('stores without resourceVersion and reads it from the modRevision', function () {
    const value = encodeObject({ kind: 'ConfigMap', metadata: { name: 'a', resourceVersion: '5' } });
    assert.equal(JSON.parse(value.toString()).metadata.resourceVersion, undefined);
    const obj = decodeObject({ key: 'k', value, createRevision: 3, modRevision: 9 });
    assert.equal(obj.metadata.resourceVersion, '9');
  });
  it('round-trips continue tokens and rejects garbage', function () {
    assert.deepEqual(decodeContinue(encodeContinue({ rv: 7, start: '/registry/x' })), { rv: 7, start: '/registry/x' });
    assert.throws(() => decodeContinue('not-a-token'), RangeError);
    assert.throws(() => decodeContinue(Buffer.from('{"rv":"x"}').toString('base64url')), RangeError);
  });
});

describe('apiserver: validation, tables, authorization', function () {
  it('validates names as DNS subdomains or labels', function () {
    assert.deepEqual(validateName(cm, 'a.b-c'), []);
    assert.equal(validateName(cm, 'Bad_Name').length, 1);
    assert.equal(validateName(ns, 'a.b').length, 1, 'namespace names are DNS labels');
    assert.equal(validateName(cm, 'a'.repeat(254)).length, 1);
  });
  it('detects Table requests and renders NAME and AGE', function () {
    assert.equal(wantsTable('application/json;as=Table;v=v1;g=meta.k8s.io,application/json'), true);
    assert.equal(wantsTable('application/json'), false);
    const now = Date.parse('2026-01-01T00:10:00Z');
    const table = toTable(cm, [{ metadata: { name: 'a', creationTimestamp: '2026-01-01T00:00:00Z' }, data: { x: '1' } }], { now, resourceVersion: '3' });
    assert.deepEqual(table.columnDefinitions.map((c) => c.name), ['Name', 'Data', 'Age']);
    assert.deepEqual(table.rows[0]!.cells, ['a', 1, '10m']);
    assert.equal(humanAge(5_000), '5s');
    assert.equal(humanAge(3 * 86_400_000), '3d');
  });
  it("words a denial as kube does (resource, name, group, namespace or cluster scope, path)", function () {
    const alice = { user: 'alice', groups: ['ops'] };
    assert.equal(forbiddenMessage({ ...alice, verb: 'list', apiGroup: '', resource: 'configmaps', namespace: 'x' }), 'configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "x"');
    assert.equal(
      forbiddenMessage({ ...alice, verb: 'get', apiGroup: 'apps', resource: 'deployments', subresource: 'status', name: 'web', namespace: 'x' }),
      'deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments/status" in API group "apps" in the namespace "x"',
    );
    assert.equal(forbiddenMessage({ ...alice, verb: 'create', apiGroup: '', resource: 'namespaces' }), 'namespaces is forbidden: User "alice" cannot create resource "namespaces" in API group "" at the cluster scope');
    assert.equal(forbiddenMessage({ ...alice, verb: 'get', path: '/metrics' }), 'forbidden: User "alice" cannot get path "/metrics"');
  });
});

describe('apiserver: protobuf bodies', function () {
  function field(no: number, payload: Buffer): Buffer {
    return Buffer.concat([Buffer.from([(no << 3) | 2, payload.length]), payload]);
  }
  const s = (t: string) => Buffer.from(t);
  it('decodes a Namespace and a ConfigMap', function () {
    const meta = field(1, Buffer.concat([field(1, s('x')), field(11, Buffer.concat([field(1, s('k')), field(2, s('v'))]))]));
    const envelope = (kind: string, raw: Buffer) => Buffer.concat([Buffer.from('k8s\0', 'binary'), field(1, Buffer.concat([field(1, s('v1')), field(2, s(kind))])), field(2, raw)]);
    assert.deepEqual(decodeProtobufObject(envelope('Namespace', meta)), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x', labels: { k: 'v' } } });
    const data = field(2, Buffer.concat([field(1, s('a')), field(2, s('1'))]));
    assert.deepEqual(decodeProtobufObject(envelope('ConfigMap', Buffer.concat([meta, data]))), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', labels: { k: 'v' } }, data: { a: '1' } });
    assert.throws(() => decodeProtobufObject(envelope('Pod', meta)), /not supported/);
    assert.throws(() => decodeProtobufObject(Buffer.from('nope')), /magic/);
  });
  it('decodes the RBAC kinds and the access reviews (kubectl create rolebinding/clusterrole, auth can-i)', function () {
    const gv = 'rbac.authorization.k8s.io/v1';
    const envelope = (apiVersion: string, kind: string, raw: Buffer) => Buffer.concat([Buffer.from('k8s\0', 'binary'), field(1, Buffer.concat([field(1, s(apiVersion)), field(2, s(kind))])), field(2, raw)]);
    const meta = field(1, Buffer.concat([field(1, s('b')), field(3, s('retail'))]));
    const subject = field(2, Buffer.concat([field(1, s('User')), field(2, s('rbac.authorization.k8s.io')), field(3, s('alice'))]));
    const roleRef = field(3, Buffer.concat([field(1, s('rbac.authorization.k8s.io')), field(2, s('ClusterRole')), field(3, s('edit'))]));
    assert.deepEqual(decodeProtobufObject(envelope(gv, 'RoleBinding', Buffer.concat([meta, subject, roleRef]))), {
      apiVersion: gv,
      kind: 'RoleBinding',
      metadata: { name: 'b', namespace: 'retail' },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'alice' }],
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
    });
    const rule = field(2, Buffer.concat([field(1, s('get')), field(1, s('list')), field(2, s('')), field(3, s('configmaps')), field(4, s('a'))]));
    const urls = field(2, Buffer.concat([field(1, s('get')), field(5, s('/healthz'))]));
    const selector = field(3, field(1, Buffer.concat([field(1, Buffer.concat([field(1, s('k')), field(2, s('v'))])), field(2, Buffer.concat([field(1, s('tier')), field(2, s('In')), field(3, s('x'))]))])));
    assert.deepEqual(decodeProtobufObject(envelope(gv, 'ClusterRole', Buffer.concat([field(1, field(1, s('c'))), rule, urls, selector]))), {
      apiVersion: gv,
      kind: 'ClusterRole',
      metadata: { name: 'c' },
      rules: [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['a'] }, { verbs: ['get'], nonResourceURLs: ['/healthz'] }],
      aggregationRule: { clusterRoleSelectors: [{ matchLabels: { k: 'v' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['x'] }] }] },
    });
    const attributes = field(1, Buffer.concat([field(1, s('retail')), field(2, s('create')), field(5, s('configmaps'))]));
    const sar = field(2, Buffer.concat([attributes, field(3, s('bob')), field(4, s('g1')), field(4, s('g2'))]));
    assert.deepEqual(decodeProtobufObject(envelope('authorization.k8s.io/v1', 'SubjectAccessReview', Buffer.concat([field(1, Buffer.alloc(0)), sar]))), {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      metadata: {},
      spec: { resourceAttributes: { namespace: 'retail', verb: 'create', resource: 'configmaps' }, user: 'bob', groups: ['g1', 'g2'] },
    });
  });
});

describe('apiserver: watch event classification', function () {
  const kv = (name: string, labels: Record<string, string>, rev: number) => ({ key: `/registry/core/configmaps/x/${name}`, value: encodeObject({ metadata: { name, namespace: 'x', labels } }), createRevision: 1, modRevision: rev });
  const sel = parseLabelSelector('app=web');

  it('turns store events into ADDED/MODIFIED/DELETED as seen through a selector', function () {
    const put = (prev: ReturnType<typeof kv> | undefined, next: ReturnType<typeof kv>) => classifyEvent({ type: 'PUT', kv: next, prevKv: prev, revision: next.modRevision }, sel, []);
    assert.equal(put(undefined, kv('a', { app: 'web' }, 2))?.type, 'ADDED');
    assert.equal(put(undefined, kv('a', { app: 'db' }, 2)), null);
    assert.equal(put(kv('a', { app: 'web' }, 2), kv('a', { app: 'web', v: '2' }, 3))?.type, 'MODIFIED');
    assert.equal(put(kv('a', { app: 'db' }, 2), kv('a', { app: 'web' }, 3))?.type, 'ADDED', 'starts matching');
    assert.equal(put(kv('a', { app: 'web' }, 2), kv('a', { app: 'db' }, 3))?.type, 'DELETED', 'stops matching');
    const deleted = classifyEvent({ type: 'DELETE', kv: { key: 'k', value: Buffer.alloc(0), createRevision: 1, modRevision: 7 }, prevKv: kv('a', { app: 'web' }, 3), revision: 7 }, sel, []);
    assert.equal(deleted?.type, 'DELETED');
    assert.equal(deleted?.object.metadata.resourceVersion, '7', 'a deletion carries the revision of the delete');
  });
});

describe('apiserver: type registry', function () {
  it('adds types at runtime and refuses duplicates', function () {
    const r = memberRegistry();
    r.add({ group: 'types.kubefed.io', version: 'v1beta1', kind: 'FederatedConfigMap', plural: 'federatedconfigmaps', singular: 'federatedconfigmap', namespaced: true, hasStatus: true });
    assert.deepEqual(r.groups(), [{ name: 'apps', versions: ['v1'] }, { name: 'types.kubefed.io', versions: ['v1beta1'] }]);
    assert.equal(r.lookup('types.kubefed.io', 'v1beta1', 'federatedconfigmaps')?.kind, 'FederatedConfigMap');
    assert.throws(() => r.add({ ...r.lookup('', 'v1', 'configmaps')! }), /already registered/);
  });
});
