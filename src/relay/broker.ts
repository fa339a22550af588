/**
 * Opens the relay's socket to the broker, plain TCP or TLS, for one browser. The relay copies bytes
 * only, so this is a bare `net`/`tls` socket rather than the client's `Transport`: its reads arrive as
 * fresh Buffers that can go to the WebSocket without a copy.
 *
 * @module
 */
import { connect as netConnect, type Socket, type TcpNetConnectOpts } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { applyServerName } from '../transport/tls.js';
import type { ResolvedBroker } from './options.js';

/**
 * Bytes queued towards the broker before the relay stops reading from the browser. The broker normally
 * reads as fast as a browser can send; it stops when RabbitMQ's flow control holds a publishing
 * connection, and then the browser should be held too, by TCP, rather than the relay's memory.
 */
export const BROKER_WRITE_HIGH_WATER_MARK = 256 * 1024;

/**
 * A socket on its way to the broker, and the event that says it is ready for AMQP bytes:
 * `secureConnect` (after the TLS handshake and the certificate checks) or `connect`.
 */
export interface BrokerSocket {
  readonly socket: Socket;
  readonly readyEvent: 'connect' | 'secureConnect';
}

/**
 * Starts connecting to the broker. Errors come as the socket's `error` events: the caller attaches its
 * listener in the same tick, before any can be emitted.
 *
 * @example
 * ```ts
 * const { socket, readyEvent } = connectBroker(options.broker);
 * socket.on('error', onError);
 * socket.once(readyEvent, onReady);
 * ```
 */
export function connectBroker(broker: ResolvedBroker): BrokerSocket {
  if (!broker.secure) {
    const options: TcpNetConnectOpts & { writableHighWaterMark: number } = {
      host: broker.host,
      port: broker.port,
      writableHighWaterMark: BROKER_WRITE_HIGH_WATER_MARK,
    };
    const socket = netConnect(options);
    socket.setNoDelay(true);
    return { socket, readyEvent: 'connect' };
  }
  const { tls } = broker;
  const options: ConnectionOptions & { highWaterMark: number } = {
    host: broker.host,
    port: broker.port,
    rejectUnauthorized: tls.rejectUnauthorized,
    highWaterMark: BROKER_WRITE_HIGH_WATER_MARK,
  };
  if (tls.ca !== undefined) options.ca = [...tls.ca];
  // SNI and the certificate check: the name asked for, else the URL's host.
  applyServerName(options, tls.servername ?? broker.host);
  const socket = tlsConnect(options);
  socket.setNoDelay(true);
  return { socket, readyEvent: 'secureConnect' };
}
