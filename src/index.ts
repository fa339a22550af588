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
} from './client/channel.js';
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
} from './client/connection.js';
export { Delivery, type DeliveryFields } from './client/delivery.js';
export { createPublisher, Publisher, type PublisherOptions } from './client/publisher.js';
export * from './config/options.js';
export { amqplain, BUILTIN_MECHANISMS, chooseMechanism, external, plain } from './config/sasl.js';
export { Secret } from './config/secret.js';
export { parseUrl, redactUrl, URL_QUERY_KEYS } from './config/url.js';
export {
  AmqpError,
  AuthenticationError,
  type ChannelClosedCode,
  ChannelClosedError,
  type CloseInitiator,
  type CloseReason,
  COMMAND_INVALID,
  ConfigurationError,
  ConfirmTagError,
  type ConnectionClosedCode,
  ConnectionClosedError,
  ConsumerCancelledError,
  EncodeError,
  type EncodeErrorCode,
  type ErrorCode,
  FRAME_ERROR,
  FrameError,
  type FrameErrorCode,
  isHardError,
  PublishBlockedError,
  PublisherError,
  type PublisherErrorCode,
  PublishNackedError,
  SYNTAX_ERROR,
  UNEXPECTED_FRAME,
} from './errors.js';
export * from './protocol/index.js';
export {
  type BackoffOptions,
  isRetryableError,
  type RetryPolicy,
  type RetryPolicyOptions,
  retryPolicy,
  retryWithPolicy,
} from './recovery/retry-policy.js';
export * from './topology/index.js';
export type {
  Transport,
  TransportConnector,
  TransportHandler,
  TransportTarget,
} from './transport/transport.js';
export { VERSION } from './version.js';
