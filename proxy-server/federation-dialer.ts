// The dialer the embedded federation API server uses for outgoing connections (CRD conversion
// webhooks): "<host>.<cluster>.tunnel:<port>" goes through the tunnel of that cluster (the same
// naming as the CONNECT frontend), anything else is dialed directly from the proxy-server.
import type { Dialer } from '../federation/apiserver/conversion.js';
import { netDialer } from '../federation/apiserver/conversion.js';
import { parseHostPort } from '../common/address.js';
import { CLUSTER_HOST_SUFFIX, resolveConnectTarget } from './connect-frontend.js';
import type { DialFunction } from './dialer.js';

export function federationDialer(dial: DialFunction, direct: Dialer = netDialer): Dialer {
  return async (hostPort) => {
    const target = parseHostPort(hostPort);
    if (target && target.host.toLowerCase().endsWith(CLUSTER_HOST_SUFFIX)) {
      const { cluster, address } = resolveConnectTarget(hostPort, undefined, null);
      return dial(cluster, address, { requester: 'federation-apiserver' });
    }
    return direct(hostPort);
  };
}
