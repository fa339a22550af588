/**
 * What a runtime provides to connect: the entry points pass one.
 *
 * @module
 */
import type { TransportConnector } from '../transport/transport.js';

/**
 * What the runtime provides: the Node entry gives the TCP/TLS transports and file reading; the
 * universal (browser) entry gives neither.
 */
export interface Platform {
  /** Opens transports for amqp: and amqps: URLs when the `transport` option is not given (Node: TCP/TLS). */
  readonly connector?: TransportConnector;
  /** Reads a file an option names by path (TLS ca/cert/key/pfx files). Absent in browsers. */
  readonly readFile?: (path: string) => Uint8Array;
}
