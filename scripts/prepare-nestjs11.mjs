// `npm install` / `npm ci` in this repository (the `prepare` script): installs NestJS 11 into
// compat/nestjs11 from its lock file, for the NestJS 11 run of rxamqp/nestjs's tests
// (test/nestjs/nestjs11.test.ts). Skipped when it is there already. Not run when rxamqp is installed
// as a dependency (npm runs `prepare` only in the package's own directory).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'compat', 'nestjs11');
const marker = join(dir, 'node_modules', '@nestjs', 'core', 'package.json');
const wanted = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies['@nestjs/core'];
if (existsSync(marker) && JSON.parse(readFileSync(marker, 'utf8')).version === wanted) {
  console.log(`compat/nestjs11: NestJS ${wanted} is installed`);
} else {
  console.log('compat/nestjs11: installing NestJS 11 (npm ci)');
  // rxjs and reflect-metadata are the root's (legacy peer resolution installs no copy of them here).
  execFileSync('npm', ['ci', '--legacy-peer-deps', '--no-audit', '--no-fund'], {
    cwd: dir,
    stdio: 'inherit',
  });
}
