// Every flag of the topology conversion webhook, validated in one place (exit 2 with a message).
import type { LevelWithSilent } from 'pino';
import type { HostPort } from '../../common/address.js';
import { integerFlag, logLevelFlag, parseFlags, requiredFlag, requiredListenFlag } from '../../common/flags.js';
import type { ListenerLimits } from '../../common/listener-guard.js';
import { LISTENER_LIMITS_HELP, LISTENER_LIMIT_FLAGS, listenerLimitOptions } from '../../common/listener-flags.js';
import { LOG_LEVELS } from '../../common/log.js';

/** A ConversionReview of a 1,000-object list is well under this; anything larger is refused with 413. */
export const DEFAULT_MAX_REVIEW_BYTES = 32 * 1024 * 1024;

/** With the listener limits (README "Listener limits"). */
export interface TopologyWebhookOptions extends ListenerLimits {
  listen: HostPort;
  /** The serving certificate and key (PEM); the hub checks them against --topology-webhook-ca. */
  certFile: string;
  keyFile: string;
  maxReviewBytes: number;
  logLevel: LevelWithSilent;
}

export const TOPOLOGY_WEBHOOK_HELP = `usage: fedtunnel-topology-webhook --cert FILE --key FILE [options]
  Converts Federated<Kind> objects between types.kubefed.io/v1beta2 (cells) and v1beta1 (native):
  POST /convert (ConversionReview v1), GET /healthz, GET /metrics, all on one HTTPS listener.
  --listen HOST:PORT          [0.0.0.0:8443]
  --cert FILE                 serving certificate (PEM), its names must include the host the hub dials
                              (for https://<service>.<cluster>.tunnel:<port>: <service>); re-read on SIGHUP
  --key FILE                  its private key (PEM)
  --max-review-bytes N        request body limit [${DEFAULT_MAX_REVIEW_BYTES}]
${LISTENER_LIMITS_HELP}
  --log-level LEVEL           ${LOG_LEVELS.join('|')} [info]`;

export function parseTopologyWebhookOptions(argv: string[]): TopologyWebhookOptions | 'help' {
  const v = parseFlags(argv, {
    listen: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    'max-review-bytes': { type: 'string' },
    ...LISTENER_LIMIT_FLAGS,
    'log-level': { type: 'string' },
  });
  if (v.help) return 'help';
  return {
    listen: requiredListenFlag('listen', v.listen, '0.0.0.0:8443'),
    certFile: requiredFlag('cert', v.cert),
    keyFile: requiredFlag('key', v.key),
    maxReviewBytes: integerFlag('max-review-bytes', v['max-review-bytes'], DEFAULT_MAX_REVIEW_BYTES, 1024, 1024 * 1024 * 1024),
    ...listenerLimitOptions(v),
    logLevel: logLevelFlag(v['log-level']),
  };
}
