/**
 * The NestJS microservices transport of `rxamqp/nestjs`: {@link RxAmqpServer} (a custom transport
 * strategy for `@MessagePattern` and `@EventPattern` handlers) and {@link RxAmqpClient} (a
 * `ClientProxy`), with their options and the envelope that maps AMQP messages to Nest packets.
 *
 * @example
 * ```ts
 * import { RxAmqpClient, RxAmqpServer } from 'rxamqp/nestjs';
 *
 * const app = await NestFactory.createMicroservice(AppModule, {
 *   strategy: new RxAmqpServer({ url, exchange: 'shop', queue: 'orders' }),
 * });
 * await app.listen();
 * const client = new RxAmqpClient({ url, exchange: 'shop' });
 * await lastValueFrom(client.emit('orders.created', { id: 1 }), { defaultValue: undefined });
 * ```
 *
 * @module
 */
export { RxAmqpClient } from './client.js';
export {
  type AmqpMessage,
  type EncodedMessage,
  ERROR_HEADER,
  type IncomingPacket,
  isTopicPattern,
  type JsonEnvelopeOptions,
  jsonEnvelope,
  type OutgoingPacket,
  plainEnvelope,
  type ReplyPacket,
  type TransportEnvelope,
  topicMatches,
} from './envelope.js';
export type {
  RxAmqpClientOptions,
  RxAmqpConnectionOptions,
  RxAmqpEvents,
  RxAmqpQueueOptions,
  RxAmqpServerOptions,
  RxAmqpStatus,
} from './options.js';
export { RxAmqpContext, RxAmqpServer } from './server.js';
