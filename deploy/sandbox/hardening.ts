// The sandbox's hostile-input demo: a user certificate that is revoked from the start (its
// CONNECT is refused with 403 CERTIFICATE_REVOKED), and a client that sends random bytes to the
// CONNECT port (refused as not_tls and counted in the hub's /metrics); and users that RBAC does
// not let proxy a cluster are refused with 403 FORBIDDEN.
import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';
import type { PkiPaths } from '../../certs/bundle.js';
import { connectProxyUrl } from '../../common/federation-processes.js';
import { getText } from '../../common/http-get.js';

/** The demo user whose certificate is on the hub's --revoked list. */
export const REVOKED_USER = 'mallory';

/** Writes the --revoked list naming REVOKED_USER's certificate (the format `fedtunnel-certs revoke` writes). */
export function writeDemoRevocationList(pki: PkiPaths, file: string): void {
  const serial = new X509Certificate(fs.readFileSync(pki.users[REVOKED_USER]!.cert)).serialNumber;
  fs.writeFileSync(file, `# sandbox demo: ${REVOKED_USER}'s certificate is revoked\n${serial} ${REVOKED_USER}\n`);
}

export interface HardeningCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/**
 * curl through the CONNECT frontend with a user's certificate: the CONNECT answer code, and for a
 * refusal its Tunnel-Error (e.g. "403 FORBIDDEN"); "200" when the tunnel was opened.
 */
export async function connectAnswer(pki: PkiPaths, userName: string, cluster: string, connectPort: number, target: string): Promise<string> {
  const user = pki.users[userName]!;
  const args = ['-sS', '-v', '-o', '/dev/null', '-w', '%{http_connect}', '--max-time', '10', '-p', '-x', connectProxyUrl(cluster, connectPort), '--proxy-cacert', pki.ca.cert, '--proxy-cert', user.cert, '--proxy-key', user.key, target];
  const answer = (stdout: string, stderr: string): string => [stdout.trim(), /< Tunnel-Error: (\S+)/.exec(stderr)?.[1]].filter(Boolean).join(' ');
  try {
    const { stdout, stderr } = await promisify(execFile)('curl', args);
    return answer(stdout, stderr);
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return answer(String(e.stdout ?? ''), String(e.stderr ?? ''));
  }
}

/** What CONNECT answers whom: only pat may proxy, and only north (examples/payments.yaml); viewer nowhere. */
const reachExpected = [
  { user: 'viewer', cluster: 'east', want: '403 FORBIDDEN' },
  { user: 'viewer', cluster: 'north', want: '403 FORBIDDEN' },
  { user: 'pat', cluster: 'north', want: '200' },
  { user: 'pat', cluster: 'east', want: '403 FORBIDDEN' },
];

/** `targets`: an address inside each member (its API server) by cluster name. */
export async function hardeningChecks(pki: PkiPaths, ports: { connectPort: number; adminPort: number }, cluster: string, targets: Record<string, string>): Promise<HardeningCheck[]> {
  const target = targets[cluster]!;
  const status = await connectAnswer(pki, REVOKED_USER, cluster, ports.connectPort, target);
  const revoked: HardeningCheck = { name: 'revoked certificate', ok: status === '403 CERTIFICATE_REVOKED', detail: `CONNECT as ${REVOKED_USER} answered ${status || 'nothing'} (want 403 CERTIFICATE_REVOKED)` };

  // Who may reach which cluster (README "Using the CONNECT frontend"): RBAC verb proxy on clusters.
  const reach: HardeningCheck[] = [];
  for (const { user, cluster: to, want } of reachExpected) {
    const got = await connectAnswer(pki, user, to, ports.connectPort, targets[to]!);
    reach.push({ name: 'CONNECT authorization', ok: got === want, detail: `CONNECT as ${user} to ${to} answered ${got || 'nothing'} (want ${want})` });
  }

  const socket = net.connect(ports.connectPort, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.end(randomBytes(512));
  socket.resume();
  await once(socket, 'close');
  const metrics = await getText(ports.adminPort, '/metrics');
  const line = metrics.split('\n').find((l) => l.startsWith('fedtunnel_listener_refusals_total{') && l.includes('listener="connect_tls"') && l.includes('reason="not_tls"'));
  const refusals: HardeningCheck = { name: 'listener limits', ok: line !== undefined, detail: line ? `random bytes refused and counted: ${line}` : 'no not_tls refusal in /metrics' };
  return [revoked, ...reach, refusals];
}
