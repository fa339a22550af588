/**
 * `rxamqp/testing`: what users test their message flows with. The embedded broker (a RabbitMQ-like
 * broker in the process, spoken to in real AMQP frames through an in-memory transport) and the marble
 * kit (fake deliveries, channels, publishers and connections for `TestScheduler.run`). This entry runs
 * anywhere; in Node, `rxamqp/testing` adds `brokerForTests` (finding a real broker for a test suite).
 *
 * @module
 */

// Both parts name what a publish looked like `PublishedMessage`: the marble kit's (what `published$`
// emits) keeps the name; the embedded broker's (what `nackPublishes` rules see) is re-exported as
// `BrokerPublishedMessage`.
export type { PublishedMessage as BrokerPublishedMessage } from './broker/index.js';
export * from './broker/index.js';
export type { PublishedMessage } from './marbles/index.js';
export * from './marbles/index.js';
