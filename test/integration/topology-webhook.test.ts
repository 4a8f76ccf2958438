// The cell form (types.kubefed.io/v1beta2) end to end: the topology conversion webhook runs as its
// own process behind a member's cluster-agent, and the hub's federation API server reaches it only
// through the tunnel (https://localhost.<cluster>.tunnel:<port>/convert).
//   1. calls and failures (hub with the controller off, one agent on loopback): a watch event is
//      converted once however many watchers (counted by the webhook's own /metrics), and a webhook
//      that is down or stalled gives a 500 Status and changes nothing;
//   2. cells (three members in their own network namespaces, cells cell-a and cell-b): real kubectl
//      1.27, 1.32 and 1.33 apply, read and edit a cell-placed FederatedConfigMap in both versions,
//      get -w sees an update, and the member contents show cell placement and per-cell override
//      precedence.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import YAML from 'yaml';
import { createCA, issueServerCert, writeKeyPair } from '../../certs/pki.js';
import { joinedFederation, runCommand, type Federation } from '../support/federation-harness.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { metric } from '../support/metrics.js';
import { scratchDir, TOPOLOGY_WEBHOOK_BIN } from '../support/paths.js';
import { spawnNode, startAgent, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import { stopAgent } from '../support/server-state.js';
import { openWatch, request, type ApiServerProcess } from '../federation/apiserver/harness.js';

const JSON_TYPE = 'application/json';
const MERGE = 'application/merge-patch+json';
const CONVERSIONS = 'fedtunnel_topology_conversions_total{outcome="success"}';

/** A CA and a serving certificate for "localhost" (the inner host of localhost.<cluster>.tunnel), as files in `dir`. */
function webhookTls(name: string): { dir: string; ca: string; cert: string; key: string } {
  const dir = scratchDir(`topology-webhook-${name}-${process.pid}`);
  const ca = createCA();
  const caFiles = writeKeyPair(dir, 'ca', ca);
  const pair = writeKeyPair(dir, 'webhook', issueServerCert(ca, { commonName: 'topology-webhook', dnsNames: ['localhost'], ipAddresses: [] }));
  return { dir, ca: caFiles.cert, cert: pair.cert, key: pair.key };
}

async function startWebhook(files: { cert: string; key: string }, listen: string, netns: string | null = null): Promise<{ process: LoggedProcess; port: number }> {
  const proc = spawnNode('topology-webhook', TOPOLOGY_WEBHOOK_BIN, ['--listen', listen, '--cert', files.cert, '--key', files.key, '--log-level', 'debug'], { netns });
  const ready = await proc.waitForLog((l) => l.msg === 'topology-webhook ready');
  return { process: proc, port: ready.port as number };
}

function getWebhookMetrics(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: 'localhost', port, path: '/metrics', ca: fs.readFileSync(ca), agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text)).on('error', reject);
      })
      .on('error', reject);
  });
}

describe('topology webhook: calls and failures through the tunnel (processes)', function () {
  const CM1 = '/apis/types.kubefed.io/v1beta1/namespaces/shop/federatedconfigmaps';
  const CM2 = '/apis/types.kubefed.io/v1beta2/namespaces/shop/federatedconfigmaps';
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let files: ReturnType<typeof webhookTls>;
  let webhook: { process: LoggedProcess; port: number } | null = null;
  let server: ServerProcess;
  let agent: LoggedProcess;
  let federation: ApiServerProcess;

  before(async function () {
    baseline = await resourceBaseline();
    files = webhookTls('calls');
    webhook = await startWebhook(files, 'localhost:0');
    server = await startServer({
      extraArgs: [
        '--federation-listen', '127.0.0.1:0', '--federation-store', 'sqlite::memory:', '--federation-controller', 'off',
        '--topology-webhook-url', `https://localhost.alpha.tunnel:${webhook.port}/convert`, '--topology-webhook-ca', files.ca,
      ],
    });
    const ready = await server.waitForLog((l) => l.msg === 'proxy-server ready');
    federation = { port: ready.federationPort as number } as ApiServerProcess;
    agent = await startAgent({ cluster: 'alpha', server, allow: [`localhost:${webhook.port}`] });
    const ns = await request(federation, 'POST', '/api/v1/namespaces', { body: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }), contentType: JSON_TYPE });
    assert.equal(ns.status, 201, ns.body);
  });

  after(async function () {
    if (agent) await stopAgent(server, agent, 'alpha');
    await server?.kill();
    await webhook?.process.kill();
    if (files) fs.rmSync(files.dir, { recursive: true, force: true });
    await assertNoLeakedResources(baseline);
  });

  it('creates a cell-form object through the webhook and stores the native form', async function () {
    const body = { apiVersion: 'types.kubefed.io/v1beta2', kind: 'FederatedConfigMap', metadata: { name: 'settings', namespace: 'shop' }, spec: { topology: { type: 'cell' }, template: { data: { round: '0' } }, placement: { cells: [{ name: 'cell-a' }] } } };
    const created = await request(federation, 'POST', CM2, { body: JSON.stringify(body), contentType: JSON_TYPE });
    assert.equal(created.status, 201, created.body);
    assert.deepEqual(created.json().spec.placement, { cells: [{ name: 'cell-a' }] });
    const native = (await request(federation, 'GET', `${CM1}/settings`)).json();
    assert.deepEqual(native.spec.placement, { clusterSelector: { matchExpressions: [{ key: 'fedtunnel.io/cell', operator: 'In', values: ['cell-a'] }] } });
    // The hub dialed it through alpha's tunnel.
    assert.match(await server.metrics(), /fedtunnel_dials_total\{cluster="alpha",result="ok"\} [1-9]/);
  });

  for (const watchers of [1, 5]) {
    it(`converts a watch event once with ${watchers} watcher(s) (the webhook's own counter)`, async function () {
      const rv = (await request(federation, 'GET', `${CM1}/settings`)).json().metadata.resourceVersion as string;
      const watches = await Promise.all(Array.from({ length: watchers }, () => openWatch(federation, `${CM2}?watch=true&resourceVersion=${rv}`)));
      try {
        for (const w of watches) assert.equal(w.status, 200);
        const before = metric(await getWebhookMetrics(webhook!.port, files.ca), CONVERSIONS);
        // Written in the storage version: the write itself needs no conversion, only the event does.
        const patched = await request(federation, 'PATCH', `${CM1}/settings`, { body: JSON.stringify({ spec: { template: { data: { round: String(watchers) } } } }), contentType: MERGE });
        assert.equal(patched.status, 200, patched.body);
        await Promise.all(watches.map((w) => w.waitFor(1)));
        for (const w of watches) {
          assert.equal(w.events[0]!.type, 'MODIFIED');
          assert.equal(w.events[0]!.object.apiVersion, 'types.kubefed.io/v1beta2');
          assert.equal(w.events[0]!.object.spec.template.data.round, String(watchers));
          assert.deepEqual(w.events[0]!.object.spec.placement, { cells: [{ name: 'cell-a' }] });
        }
        const after = metric(await getWebhookMetrics(webhook!.port, files.ca), CONVERSIONS);
        assert.equal(after - before, 1, `${watchers} watcher(s): one conversion for one event`);
      } finally {
        for (const w of watches) w.stop();
        await Promise.all(watches.map((w) => w.ended));
      }
    });
  }

  it('a webhook that is down or stalled gives a 500 Status and changes nothing; back up, it serves again', async function () {
    this.timeout(60_000);
    const port = webhook!.port;
    await webhook!.process.kill();
    webhook = null;
    const get = await request(federation, 'GET', `${CM2}/settings`);
    assert.equal(get.status, 500, get.body);
    assert.equal(get.json().reason, 'InternalError');
    assert.match(get.json().message, /conversion webhook for federatedconfigmaps\.types\.kubefed\.io failed/);
    const before = (await request(federation, 'GET', `${CM1}/settings`)).json();
    const put = await request(federation, 'PATCH', `${CM2}/settings`, { body: JSON.stringify({ spec: { template: { data: { round: 'down' } } } }), contentType: MERGE });
    assert.equal(put.status, 500, put.body);
    const list = await request(federation, 'GET', CM2);
    assert.equal(list.status, 500);
    const unchanged = (await request(federation, 'GET', `${CM1}/settings`)).json();
    assert.equal(unchanged.metadata.resourceVersion, before.metadata.resourceVersion, 'nothing written');

    webhook = await startWebhook(files, `localhost:${port}`);
    // Stalled (stopped, its socket still accepting): the API server's timeout gives the 500.
    webhook.process.signal('SIGSTOP');
    try {
      const stalled = await request(federation, 'GET', `${CM2}/settings`, { timeoutMs: 30_000 });
      assert.equal(stalled.status, 500, stalled.body);
      assert.match(stalled.json().message, /timed out/);
    } finally {
      webhook.process.signal('SIGCONT');
    }
    const back = await request(federation, 'GET', `${CM2}/settings`);
    assert.equal(back.status, 200, back.body);
    assert.equal(back.json().spec.template.data.round, '5');
  });
});

/** The directory of the kubectl on PATH (kubectl.1.27 … kubectl.1.33 sit beside it). */
function kubectlDir(): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'kubectl');
    if (dir && fs.existsSync(candidate)) return path.dirname(fs.realpathSync(candidate));
  }
  throw new Error('no kubectl on PATH');
}

describe('topology webhook: cell placement with real kubectl (processes, network namespaces)', function () {
  this.timeout(180_000);
  const WEBHOOK_PORT = 8443;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let files: ReturnType<typeof webhookTls>;
  let fed: Federation;
  let webhook: { process: LoggedProcess; port: number } | null = null;

  const kubectlAt = (version: string, args: string[], stdin?: string) =>
    runCommand(path.join(kubectlDir(), `kubectl.${version}`), ['--kubeconfig', fed.kubeconfig, '--context', 'federation', '--request-timeout', '30s', ...args], stdin);
  const ok = async (result: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> => {
    const r = await result;
    assert.equal(r.code, 0, `kubectl failed: ${r.stderr}`);
    return r.stdout;
  };
  const memberData = (member: string, key: string) => ok(fed.kubectlMember(member, ['get', 'configmap', 'settings', '-n', 'shop', '-o', `jsonpath={.data.${key}}`]));
  const memberWait = (member: string, jsonpath: string) => ok(fed.kubectlMember(member, ['wait', '--timeout=60s', '-n', 'shop', `--for=jsonpath=${jsonpath}`, 'configmap/settings']));
  const memberGone = (member: string) => ok(fed.kubectlMember(member, ['wait', '--timeout=60s', '-n', 'shop', '--for=delete', 'configmap/settings']));

  const cellForm = (cells: string[], color: string): string => `
apiVersion: types.kubefed.io/v1beta2
kind: FederatedConfigMap
metadata: {name: settings, namespace: shop}
spec:
  topology: {type: cell}
  template:
    data: {color: ${color}, tier: base}
  placement:
    cells: [${cells.map((c) => `{name: ${c}}`).join(', ')}]
  overrides:
  - clusterName: east
    clusterOverrides: [{path: /data/tier, value: east}]
  - cellName: cell-a
    clusterOverrides: [{path: /data/tier, value: cell-a}]
`;

  before(async function () {
    baseline = await resourceBaseline();
    files = webhookTls('cells');
    fed = await joinedFederation(
      { east: ['fedtunnel.io/cell=cell-a'], west: ['fedtunnel.io/cell=cell-a'], north: ['fedtunnel.io/cell=cell-b'] },
      {
        extraServerArgs: ['--topology-webhook-url', `https://localhost.east.tunnel:${WEBHOOK_PORT}/convert`, '--topology-webhook-ca', files.ca],
        extraAgentArgs: ['--allow', `localhost:${WEBHOOK_PORT}`],
      },
    );
    // Inside east's network namespace: nothing but east's agent can reach it.
    webhook = await startWebhook(files, `localhost:${WEBHOOK_PORT}`, fed.members.east!.netns);
    await ok(fed.kubectl('federation', ['apply', '-f', '-'], `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: types.kubefed.io/v1beta1
kind: FederatedNamespace
metadata: {name: shop, namespace: shop}
spec:
  placement: {clusterSelector: {}}
`));
  });

  after(async function () {
    await webhook?.process.kill();
    await fed?.stop();
    if (files) fs.rmSync(files.dir, { recursive: true, force: true });
    await assertNoLeakedResources(baseline);
  });

  it('kubectl 1.27 applies a cell-placed v1beta2 object: only cell-a gets it, a per-cluster override beats the per-cell one', async function () {
    await ok(kubectlAt('1.27', ['apply', '-f', '-'], cellForm(['cell-a'], 'blue')));
    await ok(fed.kubectl('federation', ['wait', '--for=condition=Propagation', '--timeout=60s', '-n', 'shop', 'federatedconfigmap/settings']));
    await memberWait('east', '{.data.tier}=east');
    await memberWait('west', '{.data.tier}=cell-a');
    assert.equal(await memberData('west', 'color'), 'blue');
    const north = await fed.kubectlMember('north', ['get', 'configmap', 'settings', '-n', 'shop']);
    assert.notEqual(north.code, 0);
    assert.match(north.stderr, /NotFound|not found/);
  });

  it('kubectl get -o yaml shows the cell form in v1beta2 and the native form in v1beta1 (1.32 and 1.33)', async function () {
    for (const version of ['1.32', '1.33']) {
      const cell = YAML.parse(await ok(kubectlAt(version, ['get', 'federatedconfigmaps.v1beta2.types.kubefed.io', 'settings', '-n', 'shop', '-o', 'yaml'])));
      assert.equal(cell.apiVersion, 'types.kubefed.io/v1beta2');
      assert.deepEqual(cell.spec.topology, { type: 'cell' });
      assert.deepEqual(cell.spec.placement, { cells: [{ name: 'cell-a' }] });
      assert.deepEqual(cell.spec.overrides.map((o: { clusterName?: string; cellName?: string }) => o.clusterName ?? o.cellName), ['east', 'cell-a']);
      assert.equal(cell.metadata.annotations?.['fedtunnel.io/v1beta2-topology'], undefined);
      const native = YAML.parse(await ok(kubectlAt(version, ['get', 'federatedconfigmaps.v1beta1.types.kubefed.io', 'settings', '-n', 'shop', '-o', 'yaml'])));
      assert.equal(native.apiVersion, 'types.kubefed.io/v1beta1');
      assert.equal(native.spec.topology, undefined);
      assert.deepEqual(native.spec.placement, { clusterSelector: { matchExpressions: [{ key: 'fedtunnel.io/cell', operator: 'In', values: ['cell-a'] }] } });
      // Per-cell entries first, so the per-cluster entry (applied after) wins.
      assert.deepEqual(native.spec.overrides[0].clusterSelector, { matchExpressions: [{ key: 'fedtunnel.io/cell', operator: 'In', values: ['cell-a'] }] });
      assert.equal(native.spec.overrides[1].clusterName, 'east');
      assert.ok(native.metadata.annotations['fedtunnel.io/v1beta2-topology']);
    }
  });

  it('kubectl 1.33 get -w on v1beta2 sees an update applied with kubectl 1.32; moving to cell-b moves the object', async function () {
    const child = spawn(path.join(kubectlDir(), 'kubectl.1.33'), ['--kubeconfig', fed.kubeconfig, '--context', 'federation', 'get', 'federatedconfigmaps.v1beta2.types.kubefed.io', 'settings', '-n', 'shop', '-w', '-o', 'jsonpath={.spec.template.data.color}{"/"}{.spec.placement.cells[*].name}{"\\n"}'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    let out = '';
    const seen = (re: RegExp): Promise<void> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (!re.test(out)) return;
          child.stdout!.off('data', check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => reject(new Error(`get -w never printed ${re}: ${out}`)), 60_000);
        child.stdout!.on('data', check);
        check();
      });
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    try {
      await seen(/^blue\/cell-a$/m);
      await ok(fed.kubectl('federation', ['apply', '-f', '-'], cellForm(['cell-a'], 'green')));
      await seen(/^green\/cell-a$/m);
      await memberWait('west', '{.data.color}=green');
      await ok(kubectlAt('1.32', ['apply', '-f', '-'], cellForm(['cell-b'], 'green')));
      await seen(/^green\/cell-b$/m);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    await memberWait('north', '{.data.tier}=base');
    await memberGone('east');
    await memberGone('west');
  });

  it('kubectl 1.27 edit in v1beta2 changes the template; the cell-b member follows', async function () {
    const editor = path.join(files.dir, 'editor.sh');
    fs.writeFileSync(editor, '#!/bin/sh\nsed -i "s/tier: base/tier: edited/" "$1"\n', { mode: 0o755 });
    const edited = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = spawn(path.join(kubectlDir(), 'kubectl.1.27'), ['--kubeconfig', fed.kubeconfig, '--context', 'federation', 'edit', 'federatedconfigmaps.v1beta2.types.kubefed.io', 'settings', '-n', 'shop'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, KUBE_EDITOR: editor },
      });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
    });
    assert.equal(edited.code, 0, edited.stderr);
    await memberWait('north', '{.data.tier}=edited');
    const cell = JSON.parse(await ok(kubectlAt('1.33', ['get', 'federatedconfigmaps.v1beta2.types.kubefed.io', 'settings', '-n', 'shop', '-o', 'json'])));
    assert.deepEqual(cell.spec.placement, { cells: [{ name: 'cell-b' }] }, 'the edit kept the cell form');
  });
});
