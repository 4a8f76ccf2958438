// The sandbox's topology conversion webhook (the cell form, types.kubefed.io/v1beta2): it runs "in"
// member east, on east's loopback, and the hub reaches it only through east's agent at
// https://localhost.east.tunnel:<port>/convert — as it would in a real member cluster. Its
// serving certificate names "localhost" (the inner host of that address) and is issued by the
// sandbox CA, which the hub is given as the CRDs' caBundle.
import fs from 'node:fs';
import path from 'node:path';
import { issueServerCert, keyPairPaths, readKeyPair, writeKeyPair, type KeyPairPaths } from '../../certs/pki.js';
import { spawnNode, type LoggedProcess } from '../../common/spawn.js';

/** The member whose network the webhook runs in. */
export const WEBHOOK_CLUSTER = 'east';

/** Issues (once) the webhook's serving certificate from the sandbox CA in `pkiDir`. */
export function webhookCertificate(pkiDir: string): KeyPairPaths {
  const paths = keyPairPaths(pkiDir, 'topology-webhook');
  if (fs.existsSync(paths.cert) && fs.existsSync(paths.key)) return paths;
  const ca = readKeyPair(pkiDir, 'ca');
  return writeKeyPair(pkiDir, 'topology-webhook', issueServerCert(ca, { commonName: 'topology-webhook', dnsNames: ['localhost'], ipAddresses: [] }));
}

export interface TopologyWebhook {
  process: LoggedProcess;
  port: number;
  /** The hub flags that make every Federated<Kind> also serve v1beta2 through this webhook. */
  hubArgs: string[];
  /** What east's agent must allow so the hub can reach the webhook. */
  agentAllow: string;
}

export async function startTopologyWebhook(options: { dist: string; pkiDir: string; caCert: string; logFile: string; timeoutMs: number }): Promise<TopologyWebhook> {
  const tls = webhookCertificate(options.pkiDir);
  const bin = path.join(options.dist, 'federation', 'topology-webhook', 'main.js');
  const proc = spawnNode('topology-webhook', bin, ['--listen', 'localhost:0', '--cert', tls.cert, '--key', tls.key], { logFile: options.logFile });
  const ready = await Promise.race([
    proc.waitForLog((l) => l.msg === 'topology-webhook ready', { timeoutMs: options.timeoutMs }),
    proc.exited.then(() => Promise.reject(new Error(`topology-webhook exited before it was ready\n${proc.stderr}`))),
  ]);
  const port = ready.port as number;
  return {
    process: proc,
    port,
    hubArgs: ['--topology-webhook-url', `https://localhost.${WEBHOOK_CLUSTER}.tunnel:${port}/convert`, '--topology-webhook-ca', options.caCert],
    agentAllow: `localhost:${port}`,
  };
}
