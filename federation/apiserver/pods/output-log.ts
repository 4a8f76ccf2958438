// A container's output as `kubectl logs` and `kubectl attach` see it: the last bytes of stdout and
// stderr interleaved (bounded, like a rotated container log), and live events for followers.
import { EventEmitter } from 'node:events';

export const DEFAULT_LOG_LIMIT_BYTES = 1024 * 1024;

export interface OutputLogEvents {
  data: [chunk: Buffer, stream: 'stdout' | 'stderr'];
  end: [];
}

export class OutputLog extends EventEmitter<OutputLogEvents> {
  private chunks: Buffer[] = [];
  private bytes = 0;
  ended = false;

  constructor(private readonly limitBytes = DEFAULT_LOG_LIMIT_BYTES) {
    super();
    // Every `logs -f` and attach session listens; there is no fixed small number of them.
    this.setMaxListeners(0);
  }

  append(chunk: Buffer, stream: 'stdout' | 'stderr'): void {
    if (this.ended) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes > this.limitBytes && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const over = this.bytes - this.limitBytes;
      if (first.length <= over) {
        this.chunks.shift();
        this.bytes -= first.length;
      } else {
        this.chunks[0] = first.subarray(over);
        this.bytes -= over;
      }
    }
    this.emit('data', chunk, stream);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.emit('end');
  }

  snapshot(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** The last `n` lines of a log (pure; a final line without newline counts as a line). */
export function tailLines(log: Buffer, n: number): Buffer {
  if (n <= 0) return Buffer.alloc(0);
  let end = log.length;
  if (end > 0 && log[end - 1] === 0x0a) end--;
  let at = end;
  for (let lines = 0; at > 0; ) {
    const nl = log.lastIndexOf(0x0a, at - 1);
    lines++;
    if (nl < 0) return log;
    if (lines === n) return log.subarray(nl + 1);
    at = nl;
  }
  return log;
}
