// The API server binary driven by real kubectl (SQLite in memory): discovery, create/apply/get/
// label/delete, table output, get -w, and authorization of a read-only user.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { bindUser, kubectl, spawnKubectl, startApiServer, type ApiServerProcess } from './harness.js';

describe('apiserver: kubectl against the binary (SQLite)', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;

  before(async function () {
    baseline = await resourceBaseline();
    server = await startApiServer('kubectl');
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('kubectl version shows the server version', async function () {
    const r = await kubectl(server, ['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Server Version: v1\.32\.0/);
  });

  it('kubectl api-resources lists the member types', async function () {
    const r = await kubectl(server, ['api-resources']);
    assert.equal(r.code, 0, r.stderr);
    for (const re of [/^configmaps\s+cm\s+v1\s+true\s+ConfigMap$/m, /^namespaces\s+ns\s+v1\s+false\s+Namespace$/m, /^deployments\s+deploy\s+apps\/v1\s+true\s+Deployment$/m, /^secrets\s+v1\s+true\s+Secret$/m]) {
      assert.match(r.stdout, re);
    }
  });

  it('creates a namespace; default exists from the start', async function () {
    const r = await kubectl(server, ['create', 'namespace', 'x']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /namespace\/x created/);
    const ns = await kubectl(server, ['get', 'namespaces']);
    assert.match(ns.stdout, /^NAME\s+STATUS\s+AGE$/m);
    assert.match(ns.stdout, /^default\s+Active\s/m);
    assert.match(ns.stdout, /^x\s+Active\s/m);
  });

  it('applies a ConfigMap, applies a change, and shows it as a table and as YAML', async function () {
    const file = path.join(server.home, 'cm.yaml');
    const manifest = (value: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: x\ndata:\n  a: "${value}"\n`;
    fs.writeFileSync(file, manifest('1'));
    let r = await kubectl(server, ['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configmap\/cfg created/);
    fs.writeFileSync(file, manifest('2'));
    r = await kubectl(server, ['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configmap\/cfg configured/);

    r = await kubectl(server, ['get', 'configmaps', '-n', 'x']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAME\s+DATA\s+AGE$/m);
    assert.match(r.stdout, /^cfg\s+1\s+\d+s$/m);

    r = await kubectl(server, ['get', 'cm/cfg', '-n', 'x', '-o', 'yaml']);
    assert.equal(r.code, 0, r.stderr);
    const obj = YAML.parse(r.stdout);
    assert.equal(obj.kind, 'ConfigMap');
    assert.deepEqual(obj.data, { a: '2' });
    assert.match(obj.metadata.resourceVersion, /^\d+$/);
    assert.match(obj.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.ok(obj.metadata.creationTimestamp);
    assert.ok(obj.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
  });

  it('labels an object and selects by label', async function () {
    let r = await kubectl(server, ['label', 'cm', 'cfg', '-n', 'x', 'tier=web']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configmap\/cfg labeled/);
    r = await kubectl(server, ['get', 'cm', '-n', 'x', '-l', 'tier in (web,db)', '-o', 'name']);
    assert.equal(r.stdout.trim(), 'configmap/cfg');
    r = await kubectl(server, ['get', 'cm', '-n', 'x', '-l', '!tier', '-o', 'name']);
    assert.equal(r.stdout.trim(), '');
    r = await kubectl(server, ['get', 'cm', '-A', '--field-selector', 'metadata.name=cfg']);
    assert.match(r.stdout, /^NAMESPACE\s+NAME\s+DATA\s+AGE$/m);
    assert.match(r.stdout, /^x\s+cfg\s+1\s/m);
  });

  it('kubectl get -w shows changes as they happen', async function () {
    const watch = spawnKubectl(server, ['get', 'configmaps', '-n', 'x', '-w']);
    try {
      await watch.waitFor(/^cfg\s+1\s/m);
      const r = await kubectl(server, ['create', 'configmap', 'watched', '-n', 'x', '--from-literal=k=v']);
      assert.equal(r.code, 0, r.stderr);
      await watch.waitFor(/^watched\s+1\s/m);
    } finally {
      await watch.stop();
    }
  });

  it('a user bound to view in a namespace can read there but gets Forbidden on create; a user without bindings cannot read', async function () {
    let r = await kubectl(server, ['--context', 'alice', 'get', 'cm', '-n', 'x', '-o', 'name']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "x"/);
    await bindUser(server, 'alice', 'view', { verb: 'list', resource: 'configmaps', namespace: 'x', groups: ['ops'] }, 'x');
    r = await kubectl(server, ['--context', 'alice', 'get', 'cm', '-n', 'x', '-o', 'name']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configmap\/cfg/);
    r = await kubectl(server, ['--context', 'alice', 'create', 'configmap', 'nope', '-n', 'x']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /forbidden: User "alice" cannot create resource "configmaps"/);
    r = await kubectl(server, ['--context', 'bob', 'delete', 'cm', 'cfg', '-n', 'x']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /forbidden/);
  });

  it('kubectl delete removes the object', async function () {
    let r = await kubectl(server, ['delete', 'cm', 'cfg', '-n', 'x']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configmap "cfg" deleted/);
    r = await kubectl(server, ['get', 'cm', 'cfg', '-n', 'x']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /NotFound|not found/);
  });

  it('refuses objects in a namespace that does not exist', async function () {
    const r = await kubectl(server, ['create', 'configmap', 'c', '-n', 'missing']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /namespaces "missing" not found/);
  });
});

describe('apiserver: namespace deletion', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;

  before(async function () {
    baseline = await resourceBaseline();
    server = await startApiServer('namespaces');
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('kubectl delete namespace removes its objects too; a re-created namespace is empty', async function () {
    for (const args of [['create', 'namespace', 'gone'], ['create', 'configmap', 'c', '-n', 'gone'], ['create', 'secret', 'generic', 's', '-n', 'gone', '--from-literal=k=v'], ['create', 'configmap', 'c', '-n', 'default']]) {
      const r = await kubectl(server, args);
      assert.equal(r.code, 0, r.stderr);
    }
    let r = await kubectl(server, ['delete', 'namespace', 'gone']);
    assert.equal(r.code, 0, r.stderr);
    r = await kubectl(server, ['create', 'namespace', 'gone']);
    assert.equal(r.code, 0, r.stderr);
    r = await kubectl(server, ['get', 'configmaps,secrets', '-n', 'gone', '-o', 'name']);
    assert.equal(r.stdout.trim(), '');
    r = await kubectl(server, ['get', 'configmaps', '-A', '-o', 'name']);
    assert.equal(r.stdout.trim(), 'configmap/c', 'other namespaces keep their objects');
  });

  it('applies a Deployment (apps/v1) twice, bumping the generation; secrets default to Opaque', async function () {
    const file = path.join(server.home, 'deploy.yaml');
    const manifest = (replicas: number) =>
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ${replicas}\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers: [{name: c, image: nginx}]\n`;
    fs.writeFileSync(file, manifest(1));
    let r = await kubectl(server, ['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    fs.writeFileSync(file, manifest(2));
    r = await kubectl(server, ['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deployment.apps\/web configured/);
    r = await kubectl(server, ['get', 'deploy', 'web', '-o', 'jsonpath={.spec.replicas} {.metadata.generation}']);
    assert.equal(r.stdout, '2 2');
    r = await kubectl(server, ['patch', 'deploy', 'web', '--type', 'json', '-p', '[{"op":"replace","path":"/spec/replicas","value":3}]']);
    assert.equal(r.code, 0, r.stderr);
    r = await kubectl(server, ['delete', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    r = await kubectl(server, ['create', 'secret', 'generic', 'sec', '--from-literal=a=b']);
    assert.equal(r.code, 0, r.stderr);
    r = await kubectl(server, ['get', 'secret', 'sec', '-o', 'jsonpath={.type} {.data.a}']);
    assert.equal(r.stdout, `Opaque ${Buffer.from('b').toString('base64')}`);
  });
});
