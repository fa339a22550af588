/**
 * The NestJS 11 run of rxamqp/nestjs's tests (launched by test/nestjs/nestjs11.test.ts): the same
 * suites with every `@nestjs/*` import (rxamqp's and NestJS's own) taken from compat/nestjs11, where
 * `npm install` (the prepare script) puts NestJS 11. NestJS 11 is CommonJS: nothing in node_modules is
 * compiled.
 */
const base = require('./jest.config.cjs');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/nestjs'],
  testMatch: ['**/module.test.ts', '**/transport/transport.test.ts'],
  transformIgnorePatterns: ['/node_modules/'],
  moduleNameMapper: {
    '^@nestjs/(.*)$': '<rootDir>/compat/nestjs11/node_modules/@nestjs/$1',
    ...base.moduleNameMapper,
  },
  setupFiles: ['<rootDir>/test/nestjs/nestjs11-setup.ts'],
};
