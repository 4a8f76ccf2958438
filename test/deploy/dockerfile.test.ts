// deploy/Dockerfile, built for real with podman: the image runs every bin of package.json with the
// same --help as the build here, as uid 10001, exposes the bins' default ports, holds no dev
// dependency, and its native addon (better-sqlite3) loads. The first build compiles the native
// addons and takes minutes; later ones reuse podman's layer cache up to the sources.
import { strict as assert } from 'node:assert';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { DOCKERFILE, flagsOfHelp, helpOf, intendedImage, packageBins, portOf } from '../support/manifests.js';
import { ROOT } from '../support/paths.js';
import { containerFlags, nodeBaseImage, podman, podmanMissing } from '../support/podman.js';

describe('deploy/Dockerfile: the image builds and runs every bin (podman)', function () {
  const image = intendedImage();
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;

  before(async function () {
    // The first build compiles native addons; later ones reuse the layer cache.
    this.timeout(40 * 60_000);
    baseline = await resourceBaseline();
    const missing = await podmanMissing();
    if (missing) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    const base = await nodeBaseImage();
    if (!base) {
      console.log('      skipped: no Node 20 base image (docker.io unreachable and no localhost/fedtunnel-node:20; test/setup/prepare.mjs makes one)');
      this.skip();
    }
    // The build needs the network (apt, npm): the host's, as a sandbox may have no container network.
    await podman(['build', ...containerFlags(), '--network', 'host', '--build-arg', `NODE_IMAGE=${base}`, '-t', image, '-f', DOCKERFILE, ROOT], 40 * 60_000);
  });

  after(async function () {
    await assertNoLeakedResources(baseline);
  });

  const inImage = (args: string[], entrypoint?: string): Promise<{ stdout: string; stderr: string }> =>
    podman(['run', '--rm', ...containerFlags(), ...(entrypoint ? ['--entrypoint', entrypoint] : []), image, ...args]);

  it('runs every bin with the same --help as this build; no bin prints the list and exits 2', async function () {
    this.timeout(120_000);
    for (const bin of Object.keys(packageBins())) {
      const { stdout } = await inImage([bin, '--help']);
      assert.equal(stdout, await helpOf(bin), `${bin} --help in the image`);
    }
    const noBin = await inImage([]).then(() => null, (error: { code: number; stderr: string }) => error);
    assert.equal(noBin, null, 'the default CMD is --help: exit 0');
    const bad = await inImage(['no-such-bin']).then(() => null, (error: { code: number; stderr: string }) => error);
    assert.equal(bad?.code, 2);
    assert.match(bad!.stderr, /unknown bin "no-such-bin"/);
  });

  it('runs as 10001, exposes the bins\' default ports, holds no dev dependency, loads better-sqlite3', async function () {
    this.timeout(120_000);
    const { stdout } = await podman(['image', 'inspect', image, '--format', '{{json .Config}}']);
    const config = JSON.parse(stdout) as { User: string; ExposedPorts: Record<string, object> };
    assert.equal(config.User, '10001:10001');
    const helpPorts = new Set<number>();
    for (const bin of Object.keys(packageBins())) {
      for (const { flag, fallback } of flagsOfHelp(await helpOf(bin)).values()) {
        if (flag.endsWith('-listen') && fallback && /:\d+$/.test(fallback)) helpPorts.add(portOf(fallback));
      }
    }
    helpPorts.add(6443); // the federation API server's --listen default (its bin is not in package.json)
    assert.deepEqual(Object.keys(config.ExposedPorts).map((p) => Number(p.split('/')[0])).sort(), [...helpPorts].sort());
    const { stdout: id } = await inImage(['-u'], 'id');
    assert.equal(id.trim(), '10001');
    const probe = await inImage(['--input-type=module', '-e', `
      import { createRequire } from 'node:module';
      const require = createRequire('/app/package.json');
      const Database = require('better-sqlite3');
      const row = new Database(':memory:').prepare('select 41 + 1 as x').get();
      let dev = 'absent';
      try { require.resolve('typescript'); dev = 'present'; } catch {}
      console.log(JSON.stringify({ x: row.x, typescript: dev }));
    `], 'node');
    assert.deepEqual(JSON.parse(probe.stdout), { x: 42, typescript: 'absent' });
  });
});
