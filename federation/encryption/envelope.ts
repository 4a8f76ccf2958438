// The stored form of an encrypted value (pure: no I/O, no KMS). One value is
//   <prefix> <header> <nonce(12)> <AES-256-GCM ciphertext + tag(16)>
// prefix  = "k8s:enc:kms:v2:<provider>:" (as kube-apiserver's KMS v2) or
//           "k8s:enc:localkey:v1:<provider>:" (fedtunnel's local key-file provider)
// header  = version(1) | u16 len + key id | u16 len + wrapped data key | u16 n + n × (u16 len +
//           annotation name, u16 len + value)
// A fresh 32-byte data key (DEK) encrypts each write; the provider's key-encryption key wraps it.
// The additional authenticated data is prefix + header + nonce + the store key: a value copied to
// another key, a swapped header or a flipped bit all fail authentication instead of decrypting.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { EncryptionError } from './errors.js';

export const ENVELOPE_VERSION = 1;
export const DEK_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Every encrypted value starts with this; JSON (the plaintext form) never does. */
export const ENCRYPTED_MARK = 'k8s:enc:';

export interface EnvelopeHeader {
  /** Key id of the key-encryption key that wrapped the DEK (the KMS's key_id, or the local key's). */
  keyId: string;
  wrappedDek: Buffer;
  /** KMS v2 annotations, handed back to Decrypt unchanged. */
  annotations: Record<string, Buffer>;
}

export interface ParsedEnvelope {
  header: EnvelopeHeader;
  nonce: Buffer;
  /** Ciphertext followed by the GCM tag. */
  sealed: Buffer;
  /** prefix + header + nonce: authenticated together with the store key. */
  authenticated: Buffer;
}

export function kmsPrefix(provider: string): string {
  return `k8s:enc:kms:v2:${provider}:`;
}

export function localKeyPrefix(provider: string): string {
  return `k8s:enc:localkey:v1:${provider}:`;
}

export function isEncrypted(stored: Buffer): boolean {
  return stored.length >= ENCRYPTED_MARK.length && stored.subarray(0, ENCRYPTED_MARK.length).toString('latin1') === ENCRYPTED_MARK;
}

/** The provider prefix of a stored value ("k8s:enc:kms:v2:name:"), or null if the value has none. */
export function prefixOf(stored: Buffer): string | null {
  if (!isEncrypted(stored)) return null;
  // kind:version:name: after the mark — three more colons.
  let at = ENCRYPTED_MARK.length;
  for (let i = 0; i < 3; i++) {
    at = stored.indexOf(0x3a, at);
    if (at < 0 || at > 200) return null;
    at += 1;
  }
  return stored.subarray(0, at).toString('latin1');
}

function u16(n: number, what: string): Buffer {
  if (n > 0xffff) throw new EncryptionError('MALFORMED', `${what} is longer than 65535 bytes`);
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function encodeHeader(h: EnvelopeHeader): Buffer {
  const keyId = Buffer.from(h.keyId, 'utf8');
  const parts = [Buffer.from([ENVELOPE_VERSION]), u16(keyId.length, 'key id'), keyId, u16(h.wrappedDek.length, 'wrapped key'), h.wrappedDek];
  const names = Object.keys(h.annotations).sort();
  parts.push(u16(names.length, 'annotations'));
  for (const name of names) {
    const n = Buffer.from(name, 'utf8');
    const v = h.annotations[name]!;
    parts.push(u16(n.length, 'annotation name'), n, u16(v.length, 'annotation'), v);
  }
  return Buffer.concat(parts);
}

function aad(authenticated: Buffer, storeKey: string): Buffer {
  return Buffer.concat([authenticated, Buffer.from(storeKey, 'utf8')]);
}

/** Encrypts `plaintext` for `storeKey` with `dek`; the header says how to get the DEK back. */
export function sealEnvelope(prefix: string, header: EnvelopeHeader, dek: Buffer, storeKey: string, plaintext: Buffer, nonce: Buffer = randomBytes(NONCE_BYTES)): Buffer {
  if (dek.length !== DEK_BYTES) throw new EncryptionError('MALFORMED', 'data key must be 32 bytes');
  const authenticated = Buffer.concat([Buffer.from(prefix, 'latin1'), encodeHeader(header), nonce]);
  const cipher = createCipheriv('aes-256-gcm', dek, nonce);
  cipher.setAAD(aad(authenticated, storeKey));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return Buffer.concat([authenticated, body]);
}

/** Splits a stored value that starts with `prefix`; MALFORMED if it is truncated or garbled. */
export function parseEnvelope(prefix: string, stored: Buffer): ParsedEnvelope {
  const malformed = (why: string) => new EncryptionError('MALFORMED', `encrypted value is malformed: ${why}`);
  if (!stored.subarray(0, prefix.length).equals(Buffer.from(prefix, 'latin1'))) throw malformed('prefix does not match the provider');
  let at = prefix.length;
  const need = (n: number): void => {
    if (at + n > stored.length) throw malformed('truncated');
  };
  const readU16 = (): number => {
    need(2);
    const n = stored.readUInt16BE(at);
    at += 2;
    return n;
  };
  const readBytes = (n: number): Buffer => {
    need(n);
    const b = stored.subarray(at, at + n);
    at += n;
    return b;
  };
  need(1);
  const version = stored[at++];
  if (version !== ENVELOPE_VERSION) throw malformed(`unknown format version ${version}`);
  const keyId = readBytes(readU16()).toString('utf8');
  const wrappedDek = Buffer.from(readBytes(readU16()));
  const annotations: Record<string, Buffer> = {};
  const count = readU16();
  for (let i = 0; i < count; i++) {
    const name = readBytes(readU16()).toString('utf8');
    annotations[name] = Buffer.from(readBytes(readU16()));
  }
  const nonce = readBytes(NONCE_BYTES);
  const authenticated = stored.subarray(0, at);
  const sealed = stored.subarray(at);
  if (sealed.length < TAG_BYTES) throw malformed('truncated');
  return { header: { keyId, wrappedDek, annotations }, nonce, sealed, authenticated };
}

/** Decrypts a parsed value for `storeKey`; DECRYPT_FAILED if anything was altered or moved. */
export function openEnvelope(parsed: ParsedEnvelope, dek: Buffer, storeKey: string): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', dek, parsed.nonce);
    decipher.setAAD(aad(parsed.authenticated, storeKey));
    decipher.setAuthTag(parsed.sealed.subarray(parsed.sealed.length - TAG_BYTES));
    return Buffer.concat([decipher.update(parsed.sealed.subarray(0, parsed.sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new EncryptionError('DECRYPT_FAILED', `value of ${storeKey} failed authentication (tampered, or stored under another key)`);
  }
}

export function newDataKey(): Buffer {
  return randomBytes(DEK_BYTES);
}
