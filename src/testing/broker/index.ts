/**
 * The embedded broker of `rxamqp/testing`: an AMQP 0-9-1 broker with RabbitMQ 3.10's observable
 * behaviour, in the process, reached by the real client through an in-memory transport.
 *
 * @module
 */
export { type ConnectionSelector, EmbeddedBroker } from './broker.js';
export {
  fieldEquals,
  type HeadersMatchMode,
  headersMatch,
  headersMatchMode,
  topicMatch,
  topicMatchWords,
  topicWords,
} from './routing.js';
export type {
  BindingInfo,
  BrokerUser,
  ConnectionInfo,
  EmbeddedBrokerOptions,
  ExchangeInfo,
  MessageInfo,
  PublishedMessage,
  QueueInfo,
} from './types.js';
