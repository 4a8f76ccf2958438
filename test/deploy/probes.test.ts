// The manifests' containers, run for real: the hub's and the agent's args exactly as kustomize
// renders them (through the image's entrypoint), with each volume mount pointed at a local
// directory holding what its Secret or ConfigMap holds, the $(VARS) expanded as kubelet would, and
// only the listen addresses moved to free loopback ports. Their probes must answer: the hub's
// /readyz and /healthz, the agent's /readyz once it has linked through the hub's agent port. The
// hub's EncryptionConfiguration is the ConfigMap's, so a real KMS v2 plugin on the shared socket
// must be reached.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawnNode, type LoggedProcess } from '../../common/spawn.js';
import { TestKmsPlugin } from '../support/kms-plugin.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { ENTRYPOINT, podOwners, render, type Container, type KubeObject, type PodSpec, type Probe } from '../support/manifests.js';
import { scratchDir } from '../support/paths.js';
import { testPki } from '../support/pki.js';

function probe(port: number, target: Probe): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: target.httpGet!.path, agent: false }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

/**
 * A container's args as kubelet runs them here: `$(VAR)` from `vars`, every path under a mount
 * moved to that volume's local directory, every `0.0.0.0:PORT` listener to a free loopback port.
 */
function localArgs(container: Container, mounts: Map<string, string>, vars: Record<string, string>): string[] {
  return container.args!.map((arg) => {
    let value = arg.replace(/\$\(([A-Z_]+)\)/g, (_, name: string) => {
      assert.ok(container.env?.some((e) => e.name === name), `$(${name}) is not in ${container.name}'s env`);
      assert.ok(name in vars, `no test value for $(${name})`);
      return vars[name]!;
    });
    for (const mount of container.volumeMounts ?? []) {
      if (value.startsWith(`${mount.mountPath}/`)) value = path.join(mounts.get(mount.name)!, value.slice(mount.mountPath.length));
    }
    return value.replace(/^0\.0\.0\.0:\d+$/, '127.0.0.1:0');
  });
}

/** A volume's local stand-in: a directory with the keys of its Secret or ConfigMap. */
function volumeDir(dir: string, name: string, files: Record<string, string>): string {
  const local = path.join(dir, name);
  fs.mkdirSync(local, { recursive: true });
  for (const [key, content] of Object.entries(files)) fs.writeFileSync(path.join(local, key), content, { mode: 0o600 });
  return local;
}

function podOf(objects: KubeObject[], name: string): PodSpec {
  return podOwners(objects).find((o) => o.object.metadata.name === name)!.spec;
}

describe('deploy/kubernetes containers run as rendered: probes answer (processes)', function () {
  this.timeout(120_000);
  const dir = scratchDir('deploy-probes');
  const pki = testPki();
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let kms: TestKmsPlugin;
  let hub: LoggedProcess | undefined;
  let agent: LoggedProcess | undefined;

  before(async function () {
    baseline = await resourceBaseline();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
  });

  after(async function () {
    await agent?.kill();
    await hub?.kill();
    await kms?.stop();
    await assertNoLeakedResources(baseline);
  });

  it('the hub (overlays/hub-ha) starts with its KMS plugin and answers /readyz and /healthz; the agent (overlays/agent) links to it and answers too', async function () {
    const hubObjects = await render('overlays/hub-ha');
    const hubPod = podOf(hubObjects, 'fedtunnel-hub');
    const proxy = hubPod.containers.find((c) => c.name === 'proxy-server')!;
    const encryption = hubObjects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'fedtunnel-hub-encryption')!.data as Record<string, string>;

    const mounts = new Map<string, string>();
    const kmsDir = path.join(dir, 'kms-socket');
    fs.mkdirSync(kmsDir);
    mounts.set('kms-socket', kmsDir);
    const kmsMount = proxy.volumeMounts!.find((m) => m.name === 'kms-socket')!.mountPath;
    // The ConfigMap's config, its socket path moved with the shared volume.
    mounts.set('encryption', volumeDir(dir, 'encryption', { 'encryption.yaml': encryption['encryption.yaml']!.replaceAll(`unix://${kmsMount}/`, `unix://${kmsDir}/`) }));
    mounts.set('tls', volumeDir(dir, 'hub-tls', { 'ca.crt': fs.readFileSync(pki.ca.cert, 'utf8'), 'tls.crt': fs.readFileSync(pki.server.cert, 'utf8'), 'tls.key': fs.readFileSync(pki.server.key, 'utf8') }));
    kms = new TestKmsPlugin(path.join(kmsDir, 'plugin.sock'));
    await kms.start();

    const hubArgs = localArgs(proxy, mounts, { POD_NAME: 'fedtunnel-hub-0', FEDERATION_STORE: `sqlite://${path.join(dir, 'federation.db')}` });
    hub = spawnNode('hub', ENTRYPOINT, hubArgs);
    const ready = await hub.waitForLog((l) => l.msg === 'proxy-server ready');
    assert.equal(ready.instance, 'fedtunnel-hub-0', '--instance is the pod name');
    assert.ok(kms.calls.Status >= 1, 'the hub asked the KMS plugin on the shared socket for its status');
    const adminPort = ready.adminPort as number;
    assert.equal(await probe(adminPort, proxy.readinessProbe!), 200);
    assert.equal(await probe(adminPort, proxy.livenessProbe!), 200);

    const agentObjects = await render('overlays/agent');
    const agentPod = podOf(agentObjects, 'fedtunnel-agent');
    const container = agentPod.containers.find((c) => c.name === 'cluster-agent')!;
    const agentMounts = new Map([['tls', volumeDir(dir, 'agent-tls', {
      'ca.crt': fs.readFileSync(pki.ca.cert, 'utf8'), 'tls.crt': fs.readFileSync(pki.agents.alpha!.cert, 'utf8'), 'tls.key': fs.readFileSync(pki.agents.alpha!.key, 'utf8'),
    })]]);
    const since = hub.mark;
    agent = spawnNode('agent', ENTRYPOINT, localArgs(container, agentMounts, { POD_NAME: 'fedtunnel-agent-7d9f-abcde', HUB_ADDRESS: `127.0.0.1:${ready.agentPort as number}` }));
    const started = await agent.waitForLog((l) => l.msg === 'cluster-agent started');
    await hub.waitForLog((l) => l.msg === 'agent registered' && l.cluster === 'alpha', { since });
    await agent.waitForLog((l) => l.msg === 'link established');
    const healthPort = started.healthPort as number;
    assert.equal(await probe(healthPort, container.readinessProbe!), 200, 'ready with a link');
    assert.equal(await probe(healthPort, container.livenessProbe!), 200);

    // And not ready without one: the probe means what it says.
    const linked = agent.mark;
    await hub.kill();
    hub = undefined;
    await agent.waitForLog((l) => l.msg === 'reconnecting', { since: linked });
    assert.equal(await probe(healthPort, container.readinessProbe!), 503, 'not ready while the hub is gone');
  });
});
