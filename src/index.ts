/**
 * rxamqp: an AMQP 0-9-1 (RabbitMQ) client whose whole surface is RxJS.
 *
 * This release ships the wire codec (`FrameDecoder`, `FrameWriter`, the spec-generated method types and
 * field tables); connections, channels, consumers and confirms build on it.
 *
 * @example
 * ```ts
 * import { FrameDecoder, PROTOCOL_HEADER } from 'rxamqp';
 * ```
 *
 * @module
 */
export * from './protocol/index.js';
