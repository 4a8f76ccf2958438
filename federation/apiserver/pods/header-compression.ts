// SPDY/3 header-block compression: one zlib stream per direction for the whole session, primed
// with the SPDY/3 dictionary, each header block ending on a sync flush (SPDY/3 §2.6.10.1). The
// context must stay in step with the peer's, so every received block is inflated even when its
// headers are not needed. pako gives synchronous streaming zlib with a preset dictionary (Node's
// zlib has that only through an internal method), which keeps the session's frame handling in order.
import { Deflate, Inflate, Z_SYNC_FLUSH } from 'pako';
import { SPDY3_DICTIONARY } from './spdy-dictionary.js';
import { SpdyProtocolError } from './spdy.js';

/** Compresses the header blocks one side sends. */
export class HeaderCompressor {
  private readonly deflate = new Deflate({ level: 6, dictionary: SPDY3_DICTIONARY });
  private out: Uint8Array[] = [];

  constructor() {
    this.deflate.onData = (chunk: Uint8Array) => this.out.push(chunk);
  }

  compress(block: Buffer): Buffer {
    this.out = [];
    this.deflate.push(block, Z_SYNC_FLUSH);
    if (this.deflate.err) throw new SpdyProtocolError('COMPRESSION', `header compression failed: ${this.deflate.msg}`);
    return Buffer.concat(this.out);
  }
}

/** Inflates the header blocks one side receives; a corrupt block is a SpdyProtocolError (the session is then dead). */
export class HeaderDecompressor {
  private readonly inflate = new Inflate({ dictionary: SPDY3_DICTIONARY });
  private out: Uint8Array[] = [];
  private outBytes = 0;

  constructor(private readonly maxBlockBytes = 1024 * 1024) {
    this.inflate.onData = (chunk: Uint8Array) => {
      this.outBytes += chunk.length;
      if (this.outBytes <= this.maxBlockBytes) this.out.push(chunk);
    };
  }

  decompress(block: Buffer): Buffer {
    this.out = [];
    this.outBytes = 0;
    if (block.length === 0) throw new SpdyProtocolError('COMPRESSION', 'empty compressed header block');
    this.inflate.push(block, Z_SYNC_FLUSH);
    if (this.inflate.err) throw new SpdyProtocolError('COMPRESSION', `header decompression failed: ${this.inflate.msg || `zlib error ${this.inflate.err}`}`);
    if (this.outBytes > this.maxBlockBytes) throw new SpdyProtocolError('COMPRESSION', `header block inflates beyond ${this.maxBlockBytes} bytes`);
    return Buffer.concat(this.out);
  }
}
