// Kubernetes Status errors: every failure the API server returns is one of these.

export type StatusReason =
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'BadRequest'
  | 'Forbidden'
  | 'Unauthorized'
  | 'MethodNotAllowed'
  | 'RequestEntityTooLarge'
  | 'UnsupportedMediaType'
  | 'NotAcceptable'
  | 'Expired'
  | 'Gone'
  | 'ServiceUnavailable'
  /** Not one of Kubernetes' reasons: 507, the store's disk is full (kube-apiserver answers 500 for etcd's "database space exceeded"). */
  | 'InsufficientStorage'
  | 'Timeout'
  | 'InternalError';

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: Array<{ reason?: string; message: string; field?: string }>;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message: string;
  reason: StatusReason | '';
  details?: StatusDetails;
  code: number;
}

export class ApiError extends Error {
  override name = 'ApiError';

  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  toStatus(): Status {
    return statusOf(this.code, this.reason, this.message, this.details);
  }
}

export function statusOf(code: number, reason: StatusReason, message: string, details?: StatusDetails): Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

/** "configmaps" or "deployments.apps", as Kubernetes names a resource in messages. */
export function qualifiedResource(group: string, plural: string): string {
  return group === '' ? plural : `${plural}.${group}`;
}

export const errors = {
  notFound: (group: string, plural: string, name: string) =>
    new ApiError(404, 'NotFound', `${qualifiedResource(group, plural)} "${name}" not found`, { name, group, kind: plural }),
  alreadyExists: (group: string, plural: string, name: string) =>
    new ApiError(409, 'AlreadyExists', `${qualifiedResource(group, plural)} "${name}" already exists`, { name, group, kind: plural }),
  conflict: (group: string, plural: string, name: string, why: string) =>
    new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(group, plural)} "${name}": ${why}`, { name, group, kind: plural }),
  invalid: (kind: string, name: string, causes: Array<{ field: string; message: string }>) =>
    new ApiError(422, 'Invalid', `${kind} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`, {
      name,
      kind,
      causes: causes.map((c) => ({ reason: 'FieldValueInvalid', message: c.message, field: c.field })),
    }),
  badRequest: (message: string) => new ApiError(400, 'BadRequest', message),
  forbidden: (message: string) => new ApiError(403, 'Forbidden', message),
  unauthorized: () => new ApiError(401, 'Unauthorized', 'Unauthorized'),
  methodNotSupported: (method: string, what: string) => new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource: ${method} ${what}`),
  tooLarge: (limit: number) => new ApiError(413, 'RequestEntityTooLarge', `the request body is larger than the limit of ${limit} bytes`),
  unsupportedMediaType: (type: string) => new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format: ${type}`),
  expired: (message: string) => new ApiError(410, 'Expired', message),
  unavailable: (message: string) => new ApiError(503, 'ServiceUnavailable', message),
  insufficientStorage: (message: string) => new ApiError(507, 'InsufficientStorage', message),
  tooLargeResourceVersion: (rv: number) => new ApiError(504, 'Timeout', `Too large resource version: ${rv}`),
  internal: (message: string) => new ApiError(500, 'InternalError', message),
  pathNotFound: () => new ApiError(404, 'NotFound', 'the server could not find the requested resource'),
};
