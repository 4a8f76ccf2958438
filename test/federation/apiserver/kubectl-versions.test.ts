// kubectl version matrix: every kubectl.1.27 … kubectl.1.33 installed beside the kubectl on PATH runs
// version, apply -f, get -o name and delete against one API server binary. A missing version is
// skipped with a printed reason on a workstation; under CI (CI=true) it fails, as a missing MySQL
// does: the machines CI runs on have every version, so a missing one is a broken machine.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { OPENAPI_V2_PROTOBUF, openApiV2Protobuf } from '../../../federation/apiserver/openapiv2.js';
import { request, startApiServer, type ApiServerProcess } from './harness.js';

const VERSIONS = [27, 28, 29, 30, 31, 32, 33];

/** The directory of the kubectl on PATH after resolving symlinks (like `readlink -f $(which kubectl)`). */
function kubectlDir(): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'kubectl');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return path.dirname(fs.realpathSync(candidate));
    } catch {
      // not here
    }
  }
  return null;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe('apiserver: kubectl version matrix', function () {
  const dir = kubectlDir();
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;

  before(async function () {
    baseline = await resourceBaseline();
    server = await startApiServer('kubectl-versions');
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  const run = (bin: string, minor: number, args: string[]): Promise<Result> =>
    new Promise((resolve) => {
      const home = path.join(server.home, `kubectl-1.${minor}`);
      fs.mkdirSync(home, { recursive: true });
      const env = { ...process.env, KUBECONFIG: server.kubeconfig, HOME: home, KUBECACHEDIR: path.join(home, 'cache') };
      execFile(bin, args, { env, timeout: 30_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });

  it('serves an empty OpenAPI v2 document as protobuf and as JSON', async function () {
    const proto = await request(server, 'GET', '/openapi/v2', { accept: OPENAPI_V2_PROTOBUF });
    assert.equal(proto.status, 200);
    assert.equal(proto.headers['content-type'], 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf');
    assert.deepEqual(Buffer.from(proto.body, 'latin1'), openApiV2Protobuf());
    // field 1 "2.0", field 2 Info{title, version}, field 8 empty Paths
    assert.deepEqual([...openApiV2Protobuf().subarray(0, 5)], [0x0a, 3, 0x32, 0x2e, 0x30]);
    assert.deepEqual([...openApiV2Protobuf().subarray(-2)], [0x42, 0]);
    const json = await request(server, 'GET', '/openapi/v2', { accept: 'application/json' });
    assert.equal(json.status, 200);
    assert.equal(json.json().swagger, '2.0');
    assert.equal((await request(server, 'GET', '/openapi/v2', { as: 'anonymous' })).status, 401);
  });

  for (const minor of VERSIONS) {
    it(`kubectl 1.${minor}: version, apply -f, get -o name, delete`, async function () {
      const bin = dir === null ? null : path.join(dir, `kubectl.1.${minor}`);
      if (bin === null || !fs.existsSync(bin)) {
        const why = bin === null ? 'no kubectl on PATH' : `${bin} not found`;
        if (process.env.CI) assert.fail(`kubectl 1.${minor} is required under CI: ${why}`);
        console.log(`      skipped kubectl 1.${minor}: ${why}`);
        this.skip();
      }
      const name = `matrix-1-${minor}`;
      let r = await run(bin, minor, ['version']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Server Version: (v1\.32\.0|version\.Info\{.*GitVersion:"v1\.32\.0)/);
      assert.match(r.stdout, new RegExp(`Client Version: (v1\\.${minor}\\.|version\\.Info\\{Major:"1", Minor:"${minor}")`));

      const file = path.join(server.home, `${name}.yaml`);
      fs.writeFileSync(file, `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: default\ndata:\n  kubectl: "1.${minor}"\n`);
      r = await run(bin, minor, ['apply', '-f', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^configmap/${name} created$`, 'm'));

      // A second apply patches (kubectl 1.27/1.28 fetch /openapi/v2 for the patch strategy).
      fs.writeFileSync(file, `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: default\ndata:\n  kubectl: "1.${minor}"\n  again: "yes"\n`);
      r = await run(bin, minor, ['apply', '-f', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^configmap/${name} configured$`, 'm'));

      r = await run(bin, minor, ['get', 'cm', '-o', 'name']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^configmap/${name}$`, 'm'));

      r = await run(bin, minor, ['delete', '-f', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`configmap "${name}" deleted`));

      r = await run(bin, minor, ['get', 'cm', name, '-o', 'name']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /NotFound|not found/);
    });
  }
});
