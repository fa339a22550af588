/**
 * rxamqp: an AMQP 0-9-1 (RabbitMQ) client whose whole surface is RxJS.
 *
 * @example
 * ```ts
 * import { connect } from 'rxamqp';
 * import { switchMap } from 'rxjs';
 *
 * connect('amqp://localhost').pipe(
 *   switchMap((conn) => conn.channel()),
 *   switchMap((ch) => ch.queueDeclare('jobs')),
 * ).subscribe(({ queue }) => console.log('declared', queue));
 * ```
 *
 * @module
 */
export {
  Channel,
  type Confirmation,
  type ConsumeOptions,
  type ExchangeDeclareOptions,
  type NoWait,
  type PublishOptions,
  type PublishOutcome,
  type QueueDeclareOk,
  type QueueDeclareOptions,
  type ReturnedMessage,
} from './channel.js';
export {
  type BlockedEvent,
  type ChannelOptions,
  Connection,
  type ConnectionCounters,
  ConnectionObservable,
  type ConnectionState,
  type ConnectionStatus,
  connect,
  openConnection,
  type Tune,
} from './connection.js';
export { Delivery, type DeliveryFields } from './delivery.js';
export {
  AuthenticationError,
  ChannelClosedError,
  type CloseInitiator,
  type CloseReason,
  ConfigurationError,
  ConnectionClosedError,
  ConsumerCancelledError,
  PublishBlockedError,
  PublishNackedError,
} from './errors.js';
export * from './options.js';
export * from './protocol/index.js';
export { createPublisher, Publisher, PublisherError, type PublisherOptions } from './publisher.js';
export {
  type BackoffOptions,
  isRetryableError,
  type RetryPolicy,
  type RetryPolicyOptions,
  retryPolicy,
  retryWithPolicy,
} from './recovery/retry-policy.js';
export { amqplain, BUILTIN_MECHANISMS, chooseMechanism, external, plain } from './sasl.js';
export { Secret } from './secret.js';
export * from './topology/index.js';
export type {
  Transport,
  TransportConnector,
  TransportHandler,
  TransportTarget,
} from './transport/transport.js';
export { parseUrl, redactUrl, URL_QUERY_KEYS } from './url.js';
export { VERSION } from './version.js';
