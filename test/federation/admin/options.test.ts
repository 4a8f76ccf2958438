import { strict as assert } from 'node:assert';
import { UsageError } from '../../../common/flags.js';
import { parseFedctlOptions } from '../../../federation/admin/options.js';

describe('fedctl: command line', function () {
  it('parses join with a client certificate, labels and disabled validations', function () {
    const o = parseFedctlOptions(['join', 'east', '--api-endpoint', 'https://kubernetes.default.svc', '--client-cert', 'c', '--client-key', 'k', '--label', 'region=east', '--label', 'example.com/tier=gold', '--disabled-tls-validations', 'SubjectName', '--context', 'fed']);
    assert.deepEqual(o, {
      command: 'join', cluster: 'east', apiEndpoint: 'https://kubernetes.default.svc', caFile: null, tokenFile: null, clientCert: 'c', clientKey: 'k',
      labels: { region: 'east', 'example.com/tier': 'gold' }, disabledTlsValidations: ['SubjectName'], kubeconfig: null, context: 'fed', namespace: 'kube-federation-system',
    });
  });

  it('parses unjoin, enable and disable', function () {
    assert.deepEqual(parseFedctlOptions(['unjoin', 'west', '--delete-propagated']), { command: 'unjoin', cluster: 'west', deletePropagated: true, timeoutSeconds: 60, kubeconfig: null, context: null, namespace: 'kube-federation-system' });
    assert.equal((parseFedctlOptions(['enable', 'deployments.apps']) as { type: string }).type, 'deployments.apps');
    assert.equal((parseFedctlOptions(['disable', 'configmaps', '--delete']) as { delete: boolean }).delete, true);
    assert.equal(parseFedctlOptions(['--help']), 'help');
    assert.equal(parseFedctlOptions([]), 'help');
  });

  for (const [argv, message] of [
    [['join', 'east', '--client-cert', 'c', '--client-key', 'k'], /--api-endpoint is required/],
    [['join', 'east', '--api-endpoint', 'https://x'], /a credential is required/],
    [['join', 'east', '--api-endpoint', 'https://x', '--client-cert', 'c'], /go together/],
    [['join', 'East', '--api-endpoint', 'https://x', '--token-file', 't'], /RFC 1035/],
    [['join', 'east', '--api-endpoint', 'https://x', '--token-file', 't', '--label', 'bad'], /expected key=value/],
    [['join', 'east', '--api-endpoint', 'https://x', '--token-file', 't', '--disabled-tls-validations', 'Everything'], /unknown "Everything"/],
    [['unjoin', 'east', '--timeout', '0'], /--timeout/],
    [['enable', 'deployments.apps', '--delete'], /does not apply to enable/],
    [['enable', 'Deployments'], /plural must be a lowercase/],
    [['frobnicate'], /unknown command/],
    [['join', 'east', 'extra'], /unexpected argument/],
    [['join', 'east', '--nope'], /Unknown option/],
  ] as const) {
    it(`refuses ${argv.join(' ')} with a usage error`, function () {
      assert.throws(() => parseFedctlOptions([...argv]), (err: Error) => err instanceof UsageError && message.test(err.message));
    });
  }
});
