/**
 * `rxamqp/relay` (Node only): a small WebSocket-to-TCP relay, so that browsers can speak AMQP 0-9-1 to
 * RabbitMQ, which takes AMQP 0-9-1 over TCP only. Each WebSocket gets one TCP (or TLS) connection to
 * the broker, and the bytes are copied both ways, never parsed and never logged. The broker still
 * authenticates every browser's own AMQP login. Needs the `ws` package (an optional peer dependency
 * that only this entry loads). See docs/relay.md.
 *
 * @example
 * ```ts
 * import { startRelay } from 'rxamqp/relay';
 *
 * const relay = await startRelay({ port: 15670, allowedOrigins: ['https://app.example.com'] });
 * // In the browser: connect('ws://relay.example.com:15670')
 * ```
 *
 * @module
 */
export { attachRelay, type Relay } from './attach.js';
export type { RelayBrokerTls, RelayOptions, StartRelayOptions } from './options.js';
export { startRelay } from './start.js';
