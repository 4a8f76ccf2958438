// The dialer the embedded federation API server uses for outgoing connections (CRD conversion
// webhooks, the topology webhook): "<host>.<cluster>.tunnel:<port>" goes through the tunnel of that
// cluster (targets.ts, the same naming as the CONNECT frontend; the hub itself is not RBAC-checked). Any other address is refused unless direct
// egress was turned on (--federation-direct-egress): by default the hub opens no connection of its
// own to the networks around it, everything it reaches goes through an agent's tunnel.
import type { Dialer } from '../federation/apiserver/conversion.js';
import { netDialer } from '../federation/apiserver/conversion.js';
import { serverNameOf, tunnelTarget } from './targets.js';
import type { DialFunction } from './dialer.js';

/** A non-tunnel address while direct egress is off (the conversion reports it as a 500 Status). */
export class DirectEgressRefused extends Error {
  override readonly name = 'DirectEgressRefused';
  constructor(hostPort: string) {
    super(`${hostPort} is not a <host>.<cluster>.tunnel address and direct egress from the hub is off (--federation-direct-egress enables it)`);
  }
}

export interface FederationDialerOptions {
  /** Dial non-tunnel addresses from the hub itself (default: refuse them). */
  directEgress?: boolean;
  /** How direct egress dials (tests observe it). */
  direct?: Dialer;
}

export function federationDialer(dial: DialFunction, options: FederationDialerOptions = {}): Dialer {
  const direct = options.direct ?? netDialer;
  const dialer: Dialer = async (hostPort) => {
    const target = tunnelTarget(hostPort);
    if (target) return dial(target.cluster, target.address, { requester: 'federation-apiserver' });
    if (!options.directEgress) throw new DirectEgressRefused(hostPort);
    return direct(hostPort);
  };
  // The webhook's certificate names the host inside its cluster, not our .tunnel address.
  dialer.serverNameOf = serverNameOf;
  return dialer;
}
