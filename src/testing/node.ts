/**
 * `rxamqp/testing` in Node: the universal testing kit plus what needs Node (finding a broker for a
 * test suite over TCP).
 *
 * @module
 */
export * from './broker-for-tests.js';
export * from './index.js';
