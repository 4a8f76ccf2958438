// HA replicas on one host sharing a SQLite --federation-store file (as the sandbox runs them): a
// watch on one replica sees what was written through the other. SQLite wakes a process's watchers
// on its own writes only, so this holds because replicas poll the file (proxy-server/replicas/store-options.ts).
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { setTimeout as pause } from 'node:timers/promises';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { startReplica, type ReplicaProcess } from '../support/ha.js';
import { call, tlsOptions } from '../support/ha-load.js';
import { scratchDir } from '../support/paths.js';

const CM = '/apis/types.kubefed.io/v1beta1/namespaces/default/federatedconfigmaps';

describe('HA replicas on a shared SQLite file', function () {
  this.timeout(120_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  const replicas: ReplicaProcess[] = [];
  const dir = path.join(scratchDir('ha-sqlite'), `run-${process.pid}`);

  before(async function () {
    baseline = await resourceBaseline();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
  });

  after(async function () {
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
    fs.rmSync(dir, { recursive: true, force: true });
    await assertNoLeakedResources(baseline);
  });

  it('a watch on one replica delivers a write taken by the other', async function () {
    const storeUrl = `sqlite://${path.join(dir, 'federation.db')}`;
    const extraArgs = ['--advertise-agent-address', '127.0.0.1:0', '--replica-heartbeat', '250', '--replica-ttl', '2000'];
    // One after the other: the first creates the schema and the store's encryption key next to the file.
    replicas.push(await startReplica({ instance: 'hub-a', storeUrl, extraArgs }));
    replicas.push(await startReplica({ instance: 'hub-b', storeUrl, extraArgs }));
    const [a, b] = replicas as [ReplicaProcess, ReplicaProcess];

    const list = await call(b.federationPort, 'GET', CM);
    assert.equal(list.status, 200, list.body);
    const from = (JSON.parse(list.body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    let request: ReturnType<typeof https.request> | undefined;
    const added = new Promise<{ name: string; resourceVersion: string }>((resolve, reject) => {
      request = https.request({ ...tlsOptions(), port: b.federationPort, method: 'GET', path: `${CM}?watch=1&resourceVersion=${from}` }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`watch on hub-b: status ${res.statusCode}`));
        let buffered = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffered += chunk;
          for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
            const event = JSON.parse(buffered.slice(0, nl)) as { type: string; object: { metadata: { name: string; resourceVersion: string } } };
            buffered = buffered.slice(nl + 1);
            if (event.type === 'ADDED') resolve(event.object.metadata);
          }
        });
        res.on('error', () => undefined);
      });
      request.on('error', (error) => reject(error));
      request.end();
    });

    const written = await call(a.federationPort, 'POST', CM, JSON.stringify({ apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedConfigMap', metadata: { name: 'written-on-a' }, spec: { template: { data: { k: 'v' } }, placement: { clusters: [] } } }));
    assert.equal(written.status, 201, written.body);
    const rv = (JSON.parse(written.body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    // Without polling the event never comes: bounded, with a message saying so.
    const bound = new AbortController();
    try {
      const seen = await Promise.race([
        added,
        pause(15_000, undefined, { signal: bound.signal }).then(() => assert.fail('hub-b\'s watch did not deliver the write taken by hub-a within 15 s')),
      ]);
      assert.deepEqual([seen.name, seen.resourceVersion], ['written-on-a', rv]);
    } finally {
      bound.abort();
      request?.destroy();
    }
    for (const r of [b, a]) assert.equal((await r.kill('SIGTERM')).code, 0);
  });
});
