// The image entrypoint's choice of bin: package.json's map, the first argument, the rest passed on.
import { strict as assert } from 'node:assert';
import { resolveBin } from '../../../deploy/image/bins.js';

const bins = { 'proxy-server': 'dist/proxy-server/main.js', 'cluster-agent': 'dist/cluster-agent/main.js' };

describe('deploy/image/bins', function () {
  it('runs the named bin with the remaining arguments, flags untouched', function () {
    assert.deepEqual(resolveBin(bins, ['cluster-agent', '--server', 'hub:8091', '--help']), { file: 'dist/cluster-agent/main.js', args: ['--server', 'hub:8091', '--help'] });
  });

  it('no bin is a usage error (2) listing the bins; --help is the same text with 0', function () {
    const none = resolveBin(bins, []);
    assert.ok('usage' in none);
    assert.equal(none.exitCode, 2);
    assert.match(none.usage, /cluster-agent, proxy-server/);
    assert.deepEqual(resolveBin(bins, ['--help']), { usage: none.usage, exitCode: 0 });
  });

  it('an unknown name, or one inherited from Object.prototype, is refused by name', function () {
    for (const name of ['proxy', 'toString', '__proto__']) {
      const choice = resolveBin(bins, [name]);
      assert.ok('usage' in choice && choice.exitCode === 2, name);
      assert.ok(choice.usage.startsWith(`unknown bin ${JSON.stringify(name)}`));
    }
  });
});
