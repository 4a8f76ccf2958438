// The tests' HAProxy (common/haproxy.ts): its configuration in a scratch directory, its frontends
// on free ports.
import { Haproxy, type BackendServer } from '../../common/haproxy.js';
import { scratchDir } from './paths.js';
import { freePort } from './ports.js';

export { Haproxy, HAPROXY_BIN, type BackendServer } from '../../common/haproxy.js';

export async function startHaproxy(servers: BackendServer[]): Promise<Haproxy> {
  return Haproxy.start(servers, scratchDir('haproxy'), { agentPort: await freePort(), connectPort: await freePort(), federationPort: await freePort() });
}
