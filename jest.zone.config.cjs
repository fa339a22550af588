/**
 * rxamqp/angular's zone suite (test/angular/zone.isolated.ts), run in a Jest of its own by
 * test/angular/zone.test.ts: it loads zone.js, which patches Node's global event targets (MessagePort,
 * timers) for the rest of the process, and a later suite in the same worker can then crash the worker
 * from inside zone.js's patched callbacks. A child process keeps the patches away from every other suite.
 */
// RXAMQP_ANGULAR=22: against compat/angular22 (its mappings and version check), else the root's Angular.
const base =
  process.env.RXAMQP_ANGULAR === '22' ? require('./jest.angular22.config.cjs') : require('./jest.config.cjs');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/angular'],
  testMatch: ['**/zone.isolated.ts'],
};
