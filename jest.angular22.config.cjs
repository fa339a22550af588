/**
 * The Angular 22 run of rxamqp/angular's tests (launched by test/angular/angular22.test.ts): the same
 * suites with every `@angular/*` import (rxamqp's and Angular's own) taken from compat/angular22, where
 * `npm install` (the prepare script) puts Angular 22. rxjs and zone.js stay the root's.
 *
 * Angular's packages have no `main` and no subpath directories, only `exports` (`@angular/core/primitives/signals`
 * is fesm2022/primitives-signals.mjs): a mapping to the package's directory would not resolve, so each
 * export of compat/angular22's `@angular/core` is mapped to its file. Any other `@angular/*` maps into
 * compat/angular22 too, where it is not installed: it fails rather than loading the root's Angular 21.
 */
const { existsSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const base = require('./jest.config.cjs');

const core = join(__dirname, 'compat', 'angular22', 'node_modules', '@angular', 'core');
const exported = {};
if (existsSync(join(core, 'package.json'))) {
  const { exports } = JSON.parse(readFileSync(join(core, 'package.json'), 'utf8'));
  for (const [subpath, target] of Object.entries(exports)) {
    // '.', './primitives/signals', ...: not './package.json' nor './schematics/*'.
    const file = typeof target.default === 'string' && !subpath.includes('*') ? target.default : '';
    if (file.endsWith('.mjs')) {
      exported[`^${`@angular/core${subpath.slice(1)}`.replace(/[/.]/g, '\\$&')}$`] = join(core, file);
    }
  }
}

module.exports = {
  ...base,
  roots: ['<rootDir>/test/angular'],
  // The zone suite runs in a process of its own (jest.zone.config.cjs, RXAMQP_ANGULAR=22).
  testMatch: ['**/config.test.ts', '**/service.test.ts', '**/relay.test.ts'],
  moduleNameMapper: {
    ...exported,
    '^@angular/(.*)$': '<rootDir>/compat/angular22/node_modules/@angular/$1',
    ...base.moduleNameMapper,
  },
  setupFiles: ['<rootDir>/test/angular/angular22-setup.ts'],
};
