/**
 * The public surface shared by both entry points ('rxamqp' in Node and everywhere else): everything
 * but `connect` and `openConnection`, which each entry binds to its runtime's transports.
 *
 * @module
 */
export { Channel, type RequestOptions, type UnclaimedDelivery } from './client/channel.js';
export { ConnectionObservable, type ConnectionState, type ConnectionStatus } from './client/connect.js';
export { Connection, type ConnectionCounters, type Tune } from './client/connection.js';
export {
  type DeathReason,
  type DeathRecord,
  Delivery,
  deathsOf,
  deliveryCountOf,
} from './client/delivery.js';
export type {
  DrainOptions,
  DrainPhase,
  DrainProgress,
  PublisherDrainOptions,
  PublisherDrainReport,
} from './client/drain.js';
export type {
  DeliveryFields,
  PublishCallback,
  PublishHandle,
  PublishTarget,
  SettleableMessage,
  SettlementWatcher,
} from './client/interfaces.js';
export { createPublisher, Publisher, type PublisherOptions } from './client/publisher.js';
export { withChannel } from './client/scope.js';
export {
  consumeStream,
  encodeStreamOffset,
  STREAM_FILTER_VALUE_HEADER,
  STREAM_OFFSET_HEADER,
  type StreamConsumeOptions,
  StreamDelivery,
  type StreamFilter,
  type StreamInterval,
  withStreamFilterValue,
} from './client/streams.js';
export type {
  BlockedEvent,
  ChannelOptions,
  Confirmation,
  ConsumeOptions,
  ExchangeDeclareOptions,
  NoWait,
  PublishOptions,
  PublishOutcome,
  QueueDeclareOk,
  QueueDeclareOptions,
  ReturnedMessage,
} from './client/types.js';
export type { CredentialsProvider, ProvidedCredentials, SubscribableLike } from './config/credentials.js';
export type {
  ConnectOptions,
  Credentials,
  HostAddress,
  RecoveryOptions,
  SaslMechanism,
  SocketOptions,
  TlsOptions,
} from './config/options.js';
export type { Platform } from './config/platform.js';
export { amqplain, external, plain } from './config/sasl.js';
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
  DrainingError,
  EncodeError,
  type EncodeErrorCode,
  type ErrorCode,
  FRAME_ERROR,
  FrameError,
  type FrameErrorCode,
  HeadersDecodeError,
  isConsumerTimeout,
  isHardError,
  NoBrokerError,
  PublishBlockedError,
  PublisherError,
  type PublisherErrorCode,
  PublishNackedError,
  SYNTAX_ERROR,
  UNEXPECTED_FRAME,
} from './errors.js';
export {
  Decimal,
  FIELD_TYPES,
  type FieldTable,
  type FieldType,
  type FieldTypeMap,
  type FieldValue,
  field,
  fieldTypesOf,
  TypedField,
} from './protocol/field-table.js';
export { type BasicProperties, ReplyCode } from './protocol/generated.js';
export {
  type BackoffOptions,
  isRetryableError,
  type RetryPolicy,
  type RetryPolicyOptions,
  retryPolicy,
  retryWithPolicy,
} from './recovery/retry-policy.js';
export {
  type DiagnosticEvent,
  type DiagnosticSource,
  type DiagnosticType,
  diagnostics$,
} from './telemetry/diagnostics.js';
export {
  type AmbientContext,
  type DeliveryEnd,
  type DeliveryProbe,
  type DeliveryStart,
  type Instrumentation,
  type Peer,
  type PublishProbe,
  type PublishStart,
  probeOf,
  setAmbientContext,
  withinDelivery,
} from './telemetry/instrumentation.js';
export * from './topology/index.js';
export type {
  ResolvedSocketOptions,
  ResolvedTlsOptions,
  SecretValue,
  ServerIdentityCheck,
  Transport,
  TransportConnector,
  TransportHandler,
  TransportTarget,
} from './transport/transport.js';
export {
  type WebSocketConnectorOptions,
  type WebSocketConstructor,
  type WebSocketLike,
  webSocketConnector,
} from './transport/websocket.js';
export { VERSION } from './version.js';
