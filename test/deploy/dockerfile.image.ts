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
      console.log('      skipped: no Node 20 base image (docker.io unreachable and no localhost/fedtunnel-node:20; test/setup/image-prepare.mjs makes one: npm run test:image)');
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

  it('runs every bin through the entrypoint with the same --help as this build, as uid 10001, with better-sqlite3 and no dev dependency', async function () {
    this.timeout(120_000);
    // One container for every check (each run costs seconds): it starts the entrypoint per bin.
    const names = Object.keys(packageBins());
    const { stdout } = await inImage(['--input-type=module', '-e', `
      import { execFileSync } from 'node:child_process';
      import { createRequire } from 'node:module';
      const require = createRequire('/app/package.json');
      const help = {};
      for (const bin of ${JSON.stringify(names)}) help[bin] = execFileSync('node', ['/app/dist/deploy/image/entrypoint.js', bin, '--help'], { encoding: 'utf8' });
      const Database = require('better-sqlite3');
      const x = new Database(':memory:').prepare('select 41 + 1 as x').get().x;
      let typescript = 'absent';
      try { require.resolve('typescript'); typescript = 'present'; } catch {}
      console.log(JSON.stringify({ help, uid: process.getuid(), gid: process.getgid(), x, typescript }));
    `], 'node');
    const result = JSON.parse(stdout) as { help: Record<string, string>; uid: number; gid: number; x: number; typescript: string };
    for (const bin of names) assert.equal(result.help[bin], await helpOf(bin), `${bin} --help in the image`);
    assert.deepEqual({ uid: result.uid, gid: result.gid, x: result.x, typescript: result.typescript }, { uid: 10001, gid: 10001, x: 42, typescript: 'absent' });
  });

  it('the default command prints the bins (exit 0); an unknown bin exits 2 naming it', async function () {
    this.timeout(120_000);
    const { stdout } = await inImage([]);
    assert.match(stdout, /bin one of: cluster-agent, fedctl, .*proxy-server/);
    const bad = await inImage(['no-such-bin']).then(() => null, (error: { code: number; stderr: string }) => error);
    assert.equal(bad?.code, 2);
    assert.match(bad!.stderr, /unknown bin "no-such-bin"/);
  });

  it("exposes the bins' default ports", async function () {
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
  });
});
