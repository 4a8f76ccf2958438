// The local key-file provider: a 32-byte key-encryption key in a file (mode 0600) wraps each data
// key with AES-256-GCM. Its key id is a hash of the key, so a value wrapped by another key file is
// recognised as such (WRONG_KEY, naming both ids) instead of failing as "tampered".
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from '../../common/log.js';
import { localKeyPrefix, type EnvelopeHeader } from './envelope.js';
import { EncryptionError } from './errors.js';

/** What the envelope needs from a key-encryption key, wherever it lives (file or KMS plugin). */
export interface KekProvider {
  readonly name: string;
  /** The stored prefix of values this provider encrypted. */
  readonly prefix: string;
  /** Metric label: "kms" or "localKey". */
  readonly kind: string;
  wrap(dek: Buffer): Promise<EnvelopeHeader>;
  unwrap(header: EnvelopeHeader): Promise<Buffer>;
  close(): Promise<void>;
}

const WRAP_AAD = Buffer.from('fedtunnel localkey dek v1');

export function localKeyId(kek: Buffer): string {
  return `sha256:${createHash('sha256').update('fedtunnel-localkey-id\0').update(kek).digest('hex').slice(0, 16)}`;
}

/** Parses key-file contents: 32 raw bytes, or their base64 text (a trailing newline is fine). */
export function parseKeyFile(content: Buffer, path: string): Buffer {
  if (content.length === 32) return Buffer.from(content);
  const text = content.toString('latin1').trim();
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return Buffer.from(text, 'base64');
  throw new EncryptionError('INVALID_CONFIG', `local key file ${path}: expected 32 bytes (raw or base64), found ${content.length} bytes`);
}

export class LocalKeyProvider implements KekProvider {
  readonly prefix: string;
  readonly kind = 'localKey';
  readonly keyId: string;

  constructor(
    readonly name: string,
    private readonly kek: Buffer,
    private readonly path: string,
  ) {
    this.prefix = localKeyPrefix(name);
    this.keyId = localKeyId(kek);
  }

  async wrap(dek: Buffer): Promise<EnvelopeHeader> {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.kek, nonce);
    cipher.setAAD(WRAP_AAD);
    const wrappedDek = Buffer.concat([nonce, cipher.update(dek), cipher.final(), cipher.getAuthTag()]);
    return { keyId: this.keyId, wrappedDek, annotations: {} };
  }

  async unwrap(header: EnvelopeHeader): Promise<Buffer> {
    if (header.keyId !== this.keyId) {
      throw new EncryptionError('WRONG_KEY', `provider "${this.name}": value was encrypted with local key ${header.keyId}, but ${this.path} holds key ${this.keyId} (wrong or replaced key file?)`);
    }
    const w = header.wrappedDek;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.kek, w.subarray(0, 12));
      decipher.setAAD(WRAP_AAD);
      decipher.setAuthTag(w.subarray(w.length - 16));
      return Buffer.concat([decipher.update(w.subarray(12, w.length - 16)), decipher.final()]);
    } catch {
      throw new EncryptionError('DECRYPT_FAILED', `provider "${this.name}": the wrapped data key failed authentication`);
    }
  }

  async close(): Promise<void> {}
}

/** Reads the key file; warns (never logs the key) when group or others may read it. */
export function loadLocalKeyProvider(name: string, path: string, log?: Logger): LocalKeyProvider {
  let content: Buffer;
  try {
    content = fs.readFileSync(path);
    const mode = fs.statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) log?.warn({ provider: name, path, mode: mode.toString(8) }, 'local encryption key file is readable by group or others; chmod 600 it');
  } catch (err) {
    throw new EncryptionError('INVALID_CONFIG', `local key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return new LocalKeyProvider(name, parseKeyFile(content, path), path);
}

/** Creates a new random key file (0600) unless it exists; true if it was created. */
export function createKeyFile(path: string): boolean {
  try {
    // 'wx': never overwrite a key that may still protect data.
    fs.writeFileSync(path, randomBytes(32), { mode: 0o600, flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}
