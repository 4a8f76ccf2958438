/**
 * Certificate revocation as a deny-list of serial numbers: one serial a line (hex, any case, colons
 * allowed as in `openssl x509 -serial` or a browser's certificate viewer), optionally followed by
 * free text (date, subject, reason); `#` starts a comment. Serials are integers, so `00:4A` and
 * `4a` name the same certificate. The parser is pure and reports the line of the first bad entry;
 * reading the file is the only I/O here.
 *
 * A deny-list rather than an X.509 CRL: node-forge cannot parse or sign CRLs, and a list of serials
 * is what an operator revoking one leaked agent key needs. Serial numbers are not secrets.
 */
import fs from 'node:fs';

/** RFC 5280 §4.1.2.2: serials are at most 20 octets. */
const MAX_SERIAL_HEX_DIGITS = 40;
const SERIAL_TEXT = /^[0-9a-fA-F:]+$/;

export const REVOCATION_FILE_NAME = 'revoked.txt';

export class RevocationListError extends Error {
  override readonly name = 'RevocationListError';
  readonly code = 'BAD_REVOCATION_LIST';

  constructor(
    message: string,
    /** 1-based line of the bad entry; undefined when the file as a whole is the problem. */
    readonly line?: number,
  ) {
    super(message);
  }
}

export interface RevocationEntry {
  /** Canonical form: lower-case hex without colons or leading zeros. */
  serial: string;
  /** Whatever followed the serial on its line (date, subject, reason), trimmed; '' if none. */
  note: string;
  line: number;
}

/**
 * The canonical form of a serial number written in hex (case- and colon-insensitive, leading zeros
 * ignored), or null when `text` is not one. Node's `PeerCertificate.serialNumber` is upper-case hex.
 */
export function normalizeSerial(text: string): string | null {
  if (!SERIAL_TEXT.test(text)) return null;
  const digits = text.replaceAll(':', '').toLowerCase();
  if (digits === '' || text.startsWith(':') || text.endsWith(':') || text.includes('::')) return null;
  const canonical = digits.replace(/^0+/, '') || '0';
  return canonical.length <= MAX_SERIAL_HEX_DIGITS ? canonical : null;
}

/** Parses a deny-list; throws RevocationListError naming the line of the first bad entry. */
export function parseRevocationList(text: string): RevocationEntry[] {
  const entries: RevocationEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const content = lines[index]!.replace(/#.*$/, '').trim();
    if (content === '') continue;
    const [first] = content.split(/\s/, 1) as [string];
    const serial = normalizeSerial(first);
    if (serial === null) {
      throw new RevocationListError(
        `line ${index + 1}: ${JSON.stringify(first.slice(0, 80))} is not a serial number (hex digits, colons allowed, at most 20 octets)`,
        index + 1,
      );
    }
    entries.push({ serial, note: content.slice(first.length).trim(), line: index + 1 });
  }
  return entries;
}

/** Why a note cannot be written into a list, or null if it can. */
export function invalidNoteReason(note: string): string | null {
  if (note.includes('#')) return "must not contain '#' (it starts a comment)";
  if (/[\u0000-\u001f\u007f]/.test(note)) return 'must not contain line breaks or control characters';
  return null;
}

/** One line of a deny-list (without the newline); parseRevocationList reads it back. */
export function formatRevocationEntry(serial: string, note = ''): string {
  const canonical = normalizeSerial(serial);
  if (canonical === null) throw new RevocationListError(`${JSON.stringify(serial)} is not a serial number`);
  const problem = invalidNoteReason(note);
  if (problem !== null) throw new RevocationListError(`the note ${problem}`);
  return note.trim() === '' ? canonical : `${canonical} ${note.trim()}`;
}

export class RevocationList {
  static readonly EMPTY = new RevocationList([]);
  private readonly serials: ReadonlySet<string>;

  constructor(readonly entries: readonly RevocationEntry[]) {
    this.serials = new Set(entries.map((entry) => entry.serial));
  }

  static parse(text: string): RevocationList {
    return new RevocationList(parseRevocationList(text));
  }

  /** Distinct serials revoked. */
  get size(): number {
    return this.serials.size;
  }

  /** `serialHex` in any accepted spelling (Node's upper-case hex, colons, leading zeros). */
  isRevoked(serialHex: string | undefined): boolean {
    if (serialHex === undefined) return false;
    const serial = normalizeSerial(serialHex);
    return serial !== null && this.serials.has(serial);
  }

  entry(serialHex: string): RevocationEntry | undefined {
    const serial = normalizeSerial(serialHex);
    return this.entries.find((entry) => entry.serial === serial);
  }
}

/** Reads and parses a deny-list file; every error names the file (and the line, if one is bad). */
export function loadRevocationFile(filePath: string): RevocationList {
  let text: string;
  try {
    text = fs.readFileSync(filePath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    const hint = code === 'ENOENT' ? ' (create an empty file, or revoke with fedtunnel-certs revoke)' : '';
    throw new RevocationListError(`cannot read revocation list ${filePath}: ${code}${hint}`);
  }
  try {
    return RevocationList.parse(text);
  } catch (error) {
    if (!(error instanceof RevocationListError)) throw error;
    throw new RevocationListError(`revocation list ${filePath} ${error.message}`, error.line);
  }
}
