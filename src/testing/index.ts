/**
 * `rxamqp/testing`: what users test their message flows with. The embedded broker (a RabbitMQ-like
 * broker in the process, spoken to in real AMQP frames through an in-memory transport) and the marble
 * kit (fake deliveries, channels, publishers and connections for `TestScheduler.run`). This entry runs
 * anywhere; in Node, `rxamqp/testing` adds `brokerForTests` (finding a real broker for a test suite).
 *
 * @module
 */
export * from './broker/index.js';
export * from './marbles/index.js';
