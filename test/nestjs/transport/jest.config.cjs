/**
 * Jest for the NestJS transport tests: the root configuration, plus NestJS 12's packages (ESM only)
 * compiled to CommonJS by @swc/jest, since Jest's CommonJS runtime on Node 20 cannot require them.
 * Run: `npx jest -c test/nestjs/transport/jest.config.cjs`. (The root configuration needs the same
 * transform for `npx jest test/nestjs/transport` to load NestJS.)
 */
const path = require('node:path');
const root = require('../../../jest.config.cjs');

module.exports = {
  ...root,
  rootDir: path.resolve(__dirname, '../../..'),
  roots: ['<rootDir>/test/nestjs/transport'],
  transform: {
    ...root.transform,
    '^.+/node_modules/@nestjs/.+\\.js$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!@nestjs/)'],
};
