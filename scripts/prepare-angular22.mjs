// `npm install` / `npm ci` in this repository (the `prepare` script, after prepare-nestjs11.mjs):
// installs Angular 22's @angular/core into compat/angular22 from its lock file, for the Angular 22 run
// of rxamqp/angular's tests (test/angular/angular22.test.ts). Skipped when it is there already. Not run
// when rxamqp is installed as a dependency (npm runs `prepare` only in the package's own directory).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'compat', 'angular22');
const marker = join(dir, 'node_modules', '@angular', 'core', 'package.json');
const wanted = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies['@angular/core'];
if (existsSync(marker) && JSON.parse(readFileSync(marker, 'utf8')).version === wanted) {
  console.log(`compat/angular22: Angular ${wanted} is installed`);
} else {
  console.log('compat/angular22: installing Angular 22 (npm ci)');
  if (Number(process.versions.node.split('.')[0]) < 22) {
    // Angular 22 declares `engines: node ^22.22.3 || ^24.15.0 || >=26`; @angular/core runs on Node 20
    // all the same (the Angular 22 run passes there), so npm's EBADENGINE warning below is expected.
    console.log(
      `compat/angular22: Angular 22 declares Node >= 22; on Node ${process.versions.node} npm warns`,
    );
  }
  // rxjs and zone.js are the root's (legacy peer resolution installs no copy of them here); an
  // engine-strict npm configuration would refuse Angular 22 on Node 20.
  execFileSync('npm', ['ci', '--legacy-peer-deps', '--engine-strict=false', '--no-audit', '--no-fund'], {
    cwd: dir,
    stdio: 'inherit',
  });
}
