/**
 * rxamqp/angular on Angular 22 (the other suites load the root's Angular 21): runs the configuration,
 * service, zone and relay suites again in a child Jest whose `@angular/*` imports, Angular's own
 * included, resolve to compat/angular22, where `npm install` (the prepare script) puts Angular 22.
 * rxjs and zone.js are the root's. Angular 22 declares `engines: node ^22.22.3 || ^24.15.0 || >=26`,
 * but `@angular/core` runs on Node 20 as well (CI's oldest): the run happens on every Node.
 * relay.test.ts needs a broker, as in the Angular 21 run.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

it('the config, service and relay suites pass on Angular 22 (the zone suite: zone.test.ts)', async () => {
  if (!existsSync(join(ROOT, 'compat', 'angular22', 'node_modules', '@angular', 'core'))) {
    throw new Error(
      'Angular 22 is not installed in compat/angular22: run `npm install` (or `npm run prepare`)',
    );
  }
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'), '--config', 'jest.angular22.config.cjs', '--ci'],
      { cwd: ROOT, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : (error.code as number | null), output: `${stdout}${stderr}` }),
    );
  });
  const lines = output.split('\n');
  const summary = lines.filter((l) => /^(Tests|Test Suites):/.test(l));
  // The child's report of its first failure, so that a failure here says why.
  const first = lines.findIndex((l) => /^ +● /.test(l));
  const failure = first < 0 ? undefined : lines.slice(first, first + 24).filter((l) => l.trim() !== '');
  const passed = lines
    .filter((l) => l.startsWith('PASS '))
    .map((l) => l.replace(/^PASS | \(.*\)$/g, ''))
    .sort();
  expect({
    code,
    summary,
    failure,
    passed,
    versions: [...new Set(output.match(/\[angular 22\.[\d.]+\]/g) ?? [])],
  }).toEqual({
    code: 0,
    summary: [
      expect.stringMatching(/^Test Suites: +3 passed, 3 total/),
      expect.stringMatching(/^Tests: +(\d+) passed, \1 total/),
    ],
    failure: undefined,
    passed: ['test/angular/config.test.ts', 'test/angular/relay.test.ts', 'test/angular/service.test.ts'],
    versions: [expect.stringMatching(/^\[angular 22\./)],
  });
}, 150_000);
