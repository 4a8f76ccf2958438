// Plug-in points of the benchmark: a Path carries byte streams to a destination
// (directly, through a baseline relay, or through the tunnel under test), and a
// Section measures something and records numbers.
import type { Duplex } from 'node:stream';
import type { MeasurementSizes } from './measure.js';

export interface Endpoint {
  host: string;
  port: number;
}

/** Ports of the destination servers on 127.0.0.1 that every path must be able to reach. */
export interface DestinationPorts {
  /** Throughput sink: answers `DOWNLOAD <nbytes>\n` with nbytes, then ends. */
  sinkPort: number;
  /** HTTP/1.1 keep-alive server answering `GET /` with a small fixed body. */
  httpPort: number;
}

/** A started way of reaching a target; owns whatever processes or servers it needed. */
export interface Path {
  name: string;
  /** A byte stream that reaches `target` through this path. */
  connect(target: Endpoint): Promise<Duplex>;
  /** Stops everything start() created. */
  close(): Promise<void>;
}

export interface PathFactory {
  name: string;
  start(ctx: DestinationPorts): Promise<Path>;
}

export interface BenchContext {
  sizes: MeasurementSizes;
  destinations: DestinationPorts;
  /**
   * Records a result under a dotted key (`tunnel.throughput_MBps.direct`).
   * Record NaN for a measurement that could not be taken: it prints as n/a.
   */
  record(key: string, value: number): void;
}

export interface Section {
  /** Selectable with `--only <name>`. */
  name: string;
  run(ctx: BenchContext): Promise<void>;
}
