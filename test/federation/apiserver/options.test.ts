// The federation API server's command line (options.ts).
import { strict as assert } from 'node:assert';
import { parseApiServerOptions } from '../../../federation/apiserver/options.js';
import { assertUsageError } from '../../support/usage.js';

const REQUIRED = ['--ca', 'ca.crt', '--cert', 'c.crt', '--key', 'c.key'];

describe('apiserver: parseApiServerOptions', function () {
  it('listens on 127.0.0.1:6443 by default', function () {
    const options = parseApiServerOptions(REQUIRED);
    assert.ok(options !== 'help');
    assert.deepEqual(options.listen, { host: '127.0.0.1', port: 6443 });
  });

  it('fuzz regression: refuses --listen off (the options held a null listener before)', function () {
    assertUsageError(() => parseApiServerOptions([...REQUIRED, '--listen', 'off']), '--listen');
  });
});
