// `npm install` / `npm ci` in this repository (the `prepare` script): installs the other framework
// versions the tests run against, each into compat/<name> from its committed lock file: NestJS 11 for
// test/nestjs/nestjs11.test.ts and Angular 22 for test/angular/angular22.test.ts. A directory whose
// package is installed at the wanted version is skipped. Not run when rxamqp is installed as a
// dependency (npm runs `prepare` only in the package's own directory).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const COMPAT = join(dirname(fileURLToPath(import.meta.url)), '..', 'compat');

const installs = [
  // rxjs and reflect-metadata are the root's (legacy peer resolution installs no copy of them here).
  { name: 'nestjs11', label: 'NestJS 11', package: '@nestjs/core', npmArgs: [] },
  {
    name: 'angular22',
    label: 'Angular 22',
    package: '@angular/core',
    // rxjs and zone.js are the root's. Angular 22 declares `engines: node ^22.22.3 || ^24.15.0 ||
    // >=26`; @angular/core runs on Node 20 all the same (the Angular 22 run passes there), so npm's
    // EBADENGINE warning is expected there, and an engine-strict configuration must not refuse it.
    npmArgs: ['--engine-strict=false'],
    minNode: 22,
  },
];

for (const { name, label, package: pkg, npmArgs, minNode } of installs) {
  const dir = join(COMPAT, name);
  const marker = join(dir, 'node_modules', ...pkg.split('/'), 'package.json');
  const wanted = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies[pkg];
  if (existsSync(marker) && JSON.parse(readFileSync(marker, 'utf8')).version === wanted) {
    console.log(`compat/${name}: ${label} ${wanted} is installed`);
    continue;
  }
  console.log(`compat/${name}: installing ${label} (npm ci)`);
  if (minNode !== undefined && Number(process.versions.node.split('.')[0]) < minNode) {
    console.log(
      `compat/${name}: ${label} declares Node >= ${minNode}; on Node ${process.versions.node} npm warns`,
    );
  }
  execFileSync('npm', ['ci', '--legacy-peer-deps', ...npmArgs, '--no-audit', '--no-fund'], {
    cwd: dir,
    stdio: 'inherit',
  });
}
