/**
 * The TLS transport: `tls.connect` with the resolved TLS settings, ready once the handshake (and the
 * certificate and host-name verification) is done. Shares the socket adapter and the connect procedure
 * with the TCP transport.
 *
 * @module
 */
import { type ConnectionOptions, checkServerIdentity, connect as tlsConnect } from 'node:tls';
import { isIPv4, isIPv6 } from '../config/host.js';
import { establishTransport } from './tcp.js';
import type { ResolvedTlsOptions, TransportConnector, TransportTarget } from './transport.js';

/** Options `tls.connect` passes on to the TCP connection, missing from @types/node's ConnectionOptions. */
type TlsConnectOptions = ConnectionOptions & {
  family?: number;
  localAddress?: string;
  /** Sets the writable (and readable) high-water mark of the TLS socket. */
  highWaterMark?: number;
};

/** Node's defaults: verification on, Node's CA store, no SNI. */
const DEFAULT_TLS: ResolvedTlsOptions = {
  ca: undefined,
  cert: undefined,
  key: undefined,
  passphrase: undefined,
  pfx: undefined,
  rejectUnauthorized: true,
  servername: undefined,
  minVersion: undefined,
  checkServerIdentity: undefined,
};

/** A Uint8Array as the Buffer @types/node asks for: the same memory, no copy (a Buffer stays as it is). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function pem(value: string | Uint8Array): string | Buffer {
  return typeof value === 'string' ? value : asBuffer(value);
}

function tlsOptionsFor(target: TransportTarget): TlsConnectOptions {
  const tls = target.tls ?? DEFAULT_TLS;
  const options: TlsConnectOptions = {
    host: target.hostname,
    port: target.port,
    family: target.socket.family,
    highWaterMark: target.writeHighWaterMark,
    rejectUnauthorized: tls.rejectUnauthorized,
  };
  if (target.socket.localAddress !== undefined) options.localAddress = target.socket.localAddress;
  if (tls.ca !== undefined) options.ca = tls.ca.map(pem);
  if (tls.cert !== undefined) options.cert = pem(tls.cert);
  if (tls.key !== undefined) options.key = pem(tls.key);
  if (tls.passphrase !== undefined) options.passphrase = tls.passphrase.reveal();
  if (tls.pfx !== undefined) options.pfx = asBuffer(tls.pfx);
  if (tls.minVersion !== undefined) options.minVersion = tls.minVersion;
  if (tls.checkServerIdentity !== undefined) options.checkServerIdentity = tls.checkServerIdentity;
  if (tls.servername !== undefined) {
    applyServerName(options, tls.servername, tls.checkServerIdentity ?? checkServerIdentity);
  }
  return options;
}

/**
 * Sets the SNI name and the host-name check for `servername` on `tls.connect` options. RFC 6066
 * forbids an IP address as SNI (Node warns): for one, none is sent, but the certificate is still
 * verified against that address (with `check`) rather than against the host connected to. Shared by
 * the TLS transport and the relay's broker sockets.
 *
 * @example
 * ```ts
 * const options: ConnectionOptions = { host: '10.0.0.5', port: 5671 };
 * applyServerName(options, 'mq.internal'); // options.servername === 'mq.internal'
 * ```
 */
export function applyServerName(
  options: ConnectionOptions,
  servername: string,
  check: typeof checkServerIdentity = checkServerIdentity,
): void {
  // The project's own checks rather than node:net's isIP, whose IPv6 expression costs a cold
  // process over 10 ms to compile.
  if (!isIPv4(servername) && !isIPv6(servername)) {
    options.servername = servername;
  } else {
    options.checkServerIdentity = (_host, cert) => check(servername, cert);
  }
}

/**
 * Opens a TLS transport: `tls.connect` to `target.hostname:target.port` with `target.tls` (`ca`,
 * `cert`, `key`, `passphrase`, `pfx`, `rejectUnauthorized`, `servername`, `minVersion`,
 * `checkServerIdentity`; undefined `target.tls` means Node's defaults, verification on), resolving on
 * `secureConnect`. `servername` undefined sends no SNI; the certificate is then checked against
 * `target.hostname`. `target.timeoutMs` covers the TCP connection and the handshake together.
 *
 * Rejects with a {@link ConnectionClosedError}: `TLS_HANDSHAKE_FAILED` (the TLS error as `cause`: an
 * untrusted certificate, a host-name mismatch, a peer that hung up mid-handshake),
 * `CONNECTION_LOST` (no TCP connection), `CONNECT_TIMEOUT`, or the abort reason of `signal`.
 *
 * @example
 * ```ts
 * const transport = await connectTls(
 *   {
 *     scheme: 'amqps',
 *     url: 'amqps://localhost:5671/%2F',
 *     hostname: 'localhost',
 *     port: 5671,
 *     tls: {
 *       ca: [readFileSync('/etc/ssl/mq-ca.pem')],
 *       cert: undefined,
 *       key: undefined,
 *       passphrase: undefined,
 *       pfx: undefined,
 *       rejectUnauthorized: true,
 *       servername: 'localhost',
 *       minVersion: 'TLSv1.2',
 *       checkServerIdentity: undefined,
 *     },
 *     socket: { noDelay: true, keepAlive: false, localAddress: undefined, family: 0 },
 *     timeoutMs: 30_000,
 *     writeHighWaterMark: 1024 * 1024,
 *   },
 *   handler,
 *   AbortSignal.timeout(30_000),
 * );
 * transport.secure; // true
 * ```
 */
export const connectTls: TransportConnector = (target, handler, signal) =>
  establishTransport(target, handler, signal, {
    secure: true,
    open: () => tlsConnect(tlsOptionsFor(target)),
  });
