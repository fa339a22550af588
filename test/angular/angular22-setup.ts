/**
 * Setup of the Angular 22 run (jest.angular22.config.cjs): fails every suite unless `@angular/core`
 * (and the subpaths Angular imports itself) really resolves to compat/angular22's Angular 22, and says
 * which version runs. It resolves without loading Angular, so that zone.isolated.ts still loads zone.js
 * before `@angular/core`, as an application does.
 */
import { readFileSync } from 'node:fs';
import { join, sep } from 'node:path';

const compat = join(__dirname, '..', '..', 'compat', 'angular22', 'node_modules', '@angular', 'core') + sep;
for (const name of ['@angular/core', '@angular/core/primitives/signals', '@angular/core/primitives/di']) {
  const file = require.resolve(name);
  if (!file.startsWith(compat)) {
    throw new Error(`the Angular 22 run resolves ${name} to ${file}: check jest.angular22.config.cjs`);
  }
}
const { version } = JSON.parse(readFileSync(`${compat}package.json`, 'utf8')) as { version: string };
if (!version.startsWith('22.')) {
  throw new Error(`the Angular 22 run loads @angular/core ${version}: check compat/angular22`);
}
process.stdout.write(`[angular ${version}]\n`);
