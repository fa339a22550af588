/** What the rxamqp/nestjs suites share. */
export { until } from '../support/until.js';
