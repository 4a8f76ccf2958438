// Authentication attempts of the API server, by method and result (bounded label sets).
import { Counter, type Registry } from 'prom-client';
import { perRegistry } from '../../common/metrics.js';

export type AuthnMethod = 'client_certificate' | 'token_file' | 'oidc';

export class AuthnMetrics {
  readonly attempts: Counter<'method' | 'result'>;

  private constructor(registry: Registry) {
    this.attempts = new Counter({
      name: 'fedtunnel_apiserver_authentication_attempts_total',
      help: 'Authentication attempts by method (client_certificate, token_file, oidc) and result: success, or for a bearer token that no method accepted: failure (token file) or the OIDC refusal reason (expired, wrong_audience, wrong_issuer, bad_signature, unknown_key, disallowed_algorithm, malformed, issuer_unavailable, …)',
      labelNames: ['method', 'result'],
      registers: [registry],
    });
  }

  static readonly of = perRegistry((registry) => new AuthnMetrics(registry));
}
