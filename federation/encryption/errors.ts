// Typed errors of encryption at rest. Messages name the provider, the key id and the store key
// (namespace/name are not secret), never key material, plaintext or ciphertext.

export type EncryptionErrorCode =
  /** The EncryptionConfiguration file is unreadable or invalid. */
  | 'INVALID_CONFIG'
  /** A stored value is truncated or its header is malformed. */
  | 'MALFORMED'
  /** Authentication failed: wrong key, tampered value, or a value copied to another key. */
  | 'DECRYPT_FAILED'
  /** The stored value names a provider (prefix) that the configuration does not have. */
  | 'UNKNOWN_PROVIDER'
  /** The value was wrapped by a key id this provider does not hold (e.g. the wrong local key file). */
  | 'WRONG_KEY'
  /** The KMS plugin could not be reached, timed out or refused the call. */
  | 'KMS_UNAVAILABLE';

export class EncryptionError extends Error {
  override name = 'EncryptionError';

  constructor(
    readonly code: EncryptionErrorCode,
    message: string,
  ) {
    super(message);
  }
}
