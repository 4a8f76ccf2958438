// Two federation API servers on one MySQL store (two pools, as two hub replicas have): a CRD
// created through one is served by the other, a FederatedTypeConfig written through one makes the
// other serve its Federated<Kind> (and apply its admission), and deleting the CRD through the
// first stops the second serving it. The second learns all of it from the store's watch only.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { createLogger } from '../../../common/log.js';
import { createApiServer, type ApiServer } from '../../../federation/apiserver/server.js';
import { NAMESPACES, SECRETS, TypeRegistry } from '../../../federation/apiserver/types.js';
import { mysqlTableNames } from '../../../federation/store/mysql.js';
import { openStore } from '../../../federation/store/open.js';
import type { Store } from '../../../federation/store/types.js';
import { DEFAULT_TARGET_TYPES } from '../../../federation/kubefed/defaults.js';
import { federatedTypeConfigFor } from '../../../federation/kubefed/api.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { MYSQL_URL, mysqlUnreachable } from '../../support/mysql.js';
import { scratchDir } from '../../support/paths.js';
import { testPki } from '../../support/pki.js';
import { kubectl, mastersCert, request, type ApiServerProcess } from './harness.js';

const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const GADGETS = '/apis/example.com/v1/namespaces/default/gadgets';
const FTCS = '/apis/core.kubefed.io/v1beta1/namespaces/kube-federation-system/federatedtypeconfigs';

interface Replica {
  store: Store;
  api: ApiServer;
  server: ApiServerProcess;
}

function gadgetCrd(): object {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'gadgets.example.com' },
    spec: {
      group: 'example.com',
      scope: 'Namespaced',
      names: { plural: 'gadgets', singular: 'gadget', kind: 'Gadget' },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  };
}

/** Resolves once `registry` serves group/version/plural (served: true) or no longer does (false): the registry's own change events, bounded. */
function servedOn(replica: Replica, group: string, version: string, plural: string, served: boolean, timeoutMs = 10_000): Promise<void> {
  const { registry } = replica.api.resources;
  const now = (): boolean => (registry.lookup(group, version, plural) !== undefined) === served;
  if (now()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${plural}.${group}/${version} still ${served ? 'not ' : ''}served after ${timeoutMs} ms`));
    }, timeoutMs);
    const off = registry.onChange(() => {
      if (!now()) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

describe('federation API servers on one store: the type registry follows the store', function () {
  this.timeout(60_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  const tablePrefix = `kv_ha${randomBytes(4).toString('hex')}_`;
  const replicas: Replica[] = [];

  async function startReplica(name: string): Promise<Replica> {
    const pki = testPki();
    const store = await openStore(MYSQL_URL, { mysql: { tablePrefix } });
    const registry = new TypeRegistry();
    registry.add(NAMESPACES);
    registry.add(SECRETS);
    const api = await createApiServer({
      store,
      registry,
      log: createLogger('apiserver', 'silent'),
      tls: { ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) },
      kubefed: { defaultTypes: false },
    });
    const port = await api.listen('127.0.0.1', 0);
    const home = scratchDir(`apiserver-replica-${name}`);
    const kubeconfig = path.join(home, 'kubeconfig');
    const admin = mastersCert();
    fs.writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:${port}\n    certificate-authority: ${pki.ca.cert}\n` +
        `users:\n- name: admin\n  user:\n    client-certificate: ${admin.cert}\n    client-key: ${admin.key}\n` +
        `contexts:\n- name: admin\n  context:\n    cluster: test\n    user: admin\ncurrent-context: admin\n`,
    );
    const replica = { store, api, server: { port, kubeconfig, home } as ApiServerProcess };
    replicas.push(replica);
    return replica;
  }

  before(async function () {
    const unreachable = await mysqlUnreachable();
    if (unreachable) {
      if (process.env.CI) throw new Error(`MySQL is required under CI: ${unreachable}`);
      this.skip();
    }
    baseline = await resourceBaseline();
  });

  after(async function () {
    for (const r of replicas.splice(0)) {
      await r.api.close();
      await r.store.close();
    }
    const admin = await mysql.createConnection(MYSQL_URL);
    const t = mysqlTableNames(tablePrefix);
    await admin.query(`DROP TABLE IF EXISTS \`${t.log}\`, \`${t.current}\`, \`${t.revision}\``);
    await admin.end();
    if (baseline) await assertNoLeakedResources(baseline);
  });

  it('a CRD created on A is served on B (HTTP and kubectl); deleted on A, it is gone on B', async function () {
    const a = await startReplica('a');
    const b = await startReplica('b');
    assert.equal((await request(b.server, 'GET', GADGETS)).status, 404, 'not served before the CRD exists');

    const created = await request(a.server, 'POST', CRDS, { body: JSON.stringify(gadgetCrd()), contentType: 'application/json' });
    assert.equal(created.status, 201, created.body);
    await servedOn(b, 'example.com', 'v1', 'gadgets', true);
    const made = await request(b.server, 'POST', GADGETS, { body: JSON.stringify({ apiVersion: 'example.com/v1', kind: 'Gadget', metadata: { name: 'g1' }, spec: { size: 3 } }), contentType: 'application/json' });
    assert.equal(made.status, 201, made.body);
    const read = await request(a.server, 'GET', `${GADGETS}/g1`);
    assert.equal(read.status, 200, read.body);
    assert.equal(read.json().spec.size, 3);
    const k = await kubectl(b.server, ['get', 'gadgets', '-n', 'default', '-o', 'name']);
    assert.equal(k.code, 0, k.stderr);
    assert.equal(k.stdout.trim(), 'gadget.example.com/g1');

    const deleted = await request(a.server, 'DELETE', `${CRDS}/gadgets.example.com`);
    assert.equal(deleted.status, 200, deleted.body);
    await servedOn(b, 'example.com', 'v1', 'gadgets', false);
    assert.equal((await request(b.server, 'GET', `${GADGETS}/g1`)).status, 404);
    assert.ok(!(await request(b.server, 'GET', '/apis')).json().groups.some((g: { name: string }) => g.name === 'example.com'), 'B no longer lists the group');
  });

  it('a FederatedTypeConfig written on A: B serves its Federated<Kind> and applies its admission', async function () {
    const [a, b] = replicas;
    const target = DEFAULT_TARGET_TYPES.find((t) => t.kind === 'ConfigMap')!;
    const ftc = federatedTypeConfigFor(target);
    const written = await request(a!.server, 'POST', FTCS, { body: JSON.stringify(ftc), contentType: 'application/json' });
    assert.equal(written.status, 201, written.body);
    await servedOn(b!, 'types.kubefed.io', 'v1beta1', 'federatedconfigmaps', true);
    const path = '/apis/types.kubefed.io/v1beta1/namespaces/default/federatedconfigmaps';
    const ok = await request(b!.server, 'POST', path, {
      body: JSON.stringify({ apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedConfigMap', metadata: { name: 'cm' }, spec: { template: { data: { a: '1' } }, placement: { clusters: [] } } }),
      contentType: 'application/json',
    });
    assert.equal(ok.status, 201, ok.body);
    // The rule that needs the FTC's target type (the template's kind) is enforced on B too.
    const bad = await request(b!.server, 'POST', path, {
      body: JSON.stringify({ apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedConfigMap', metadata: { name: 'bad' }, spec: { template: { kind: 'Secret', data: { a: '1' } }, placement: { clusters: [] } } }),
      contentType: 'application/json',
    });
    assert.equal(bad.status, 422, bad.body);
    assert.match(bad.body, /spec\.template\.kind/);
  });
});
