// The heap flags of common/node-flags.ts reach every way a fedtunnel process starts: the bins'
// shebang lines (npm's bin links), the image's ENTRYPOINT (the Kubernetes manifests set only
// args), and spawnNode() (sandbox, tests, benchmark helpers). Each process is asked what it runs with.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_HEAP_FLAGS } from '../../common/node-flags.js';
import { spawnNodeChild } from '../../common/spawn.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The long-running bins that carry tunnel traffic. */
const TUNNEL_BINS = ['dist/proxy-server/main.js', 'dist/cluster-agent/main.js'];

describe('common: node heap flags', function () {
  let dir: string;
  let script: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-flags-'));
    script = path.join(dir, 'exec-argv.js');
    fs.writeFileSync(script, 'process.stdout.write(JSON.stringify(process.execArgv));\n');
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const bin of TUNNEL_BINS) {
    it(`${bin}: its shebang line starts node with the flags`, function () {
      const shebang = fs.readFileSync(path.join(ROOT, bin), 'utf8').split('\n', 1)[0]!;
      const match = /^#!(\S+)(.*)$/.exec(shebang);
      assert.ok(match, `no shebang in ${bin}`);
      // What the kernel runs: the interpreter with the rest of the line as one argument (env -S splits it).
      const execArgv = JSON.parse(execFileSync(match[1]!, [match[2]!.trim(), script], { encoding: 'utf8' })) as string[];
      assert.deepEqual(execArgv, [...NODE_HEAP_FLAGS]);
    });
  }

  it("the image's ENTRYPOINT starts node with the flags", function () {
    const dockerfile = fs.readFileSync(path.join(ROOT, 'deploy', 'Dockerfile'), 'utf8');
    const line = dockerfile.split('\n').find((l) => l.startsWith('ENTRYPOINT '));
    assert.ok(line, 'no ENTRYPOINT');
    const argv = JSON.parse(line.slice('ENTRYPOINT '.length)) as string[];
    assert.deepEqual(argv.slice(0, 1 + NODE_HEAP_FLAGS.length), ['node', ...NODE_HEAP_FLAGS]);
  });

  it('spawnNode() starts children with the flags', async function () {
    const child = spawnNodeChild(script, []);
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await new Promise((resolve) => child.once('close', resolve));
    assert.deepEqual(JSON.parse(out), [...NODE_HEAP_FLAGS]);
  });
});
