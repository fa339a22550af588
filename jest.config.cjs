/** Jest runs the TypeScript sources through @swc/jest to CommonJS (see docs/testing.md). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/examples'],
  testMatch: ['**/*.test.ts'],
  // NestJS 12 and Angular ship ES modules only: Jest's CommonJS runtime gets them compiled like our sources.
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|@angular)/)'],
  transform: {
    '/node_modules/@nestjs/.+\\.js$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } },
    ],
    // Angular's packages (rxamqp/angular's tests): fesm2022/*.mjs.
    '/node_modules/@angular/.+\\.m?js$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } },
    ],
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          // NestJS's decorators (rxamqp/nestjs and its tests): legacy decorators with their metadata.
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2022',
        },
        module: { type: 'commonjs' },
      },
    ],
  },
  moduleNameMapper: {
    // The examples import the package by name, as users do: map it to the sources.
    '^rxamqp$': '<rootDir>/src/node.ts',
    '^rxamqp/operators$': '<rootDir>/operators/index.ts',
    '^rxamqp/protocol$': '<rootDir>/src/protocol/index.ts',
    '^rxamqp/testing$': '<rootDir>/src/testing/node.ts',
    '^rxamqp/mq$': '<rootDir>/src/mq/index.ts',
    '^rxamqp/nestjs$': '<rootDir>/src/nestjs/index.ts',
    '^rxamqp/angular$': '<rootDir>/src/angular/index.ts',
    '^rxamqp/relay$': '<rootDir>/src/relay/index.ts',
    '^rxamqp/otel$': '<rootDir>/src/otel/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testTimeout: 30000,
};
