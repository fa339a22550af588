/**
 * Runs the zone suite (zone.isolated.ts: the connection is set up outside Angular's zone, deliveries,
 * states and outcomes come back inside it, and an idle connection never makes the zone unstable) in a
 * child Jest (jest.zone.config.cjs): zone.js patches the process's global event targets, which must not
 * leak into the other suites' worker.
 */
// On Angular 21 (the root's) and on Angular 22 (compat/angular22, see angular22.test.ts).
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

it.each([
  ['21', {}],
  ['22', { RXAMQP_ANGULAR: '22' }],
])(
  'the zone suite passes in a process of its own on Angular %s',
  async (version, env) => {
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'), '--config', 'jest.zone.config.cjs', '--ci'],
        { cwd: ROOT, timeout: 120_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...env } },
        (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : (error.code as number | null), output: `${stdout}${stderr}` }),
      );
    });
    const summary = output.split('\n').filter((l) => /^(Tests|Test Suites):/.test(l));
    const tests = /^Tests: +(\d+) passed, (\d+) total/m.exec(output);
    const loaded = version === '22' ? (/\[angular (22\.[\d.]+)\]/.exec(output)?.[1] ?? 'not 22') : '21';
    expect({ code, summary: summary[0], allPassed: tests !== null && tests[1] === tests[2], loaded }).toEqual(
      {
        code: 0,
        summary: expect.stringMatching(/^Test Suites: +1 passed, 1 total/),
        allPassed: true,
        loaded: expect.stringMatching(new RegExp(`^${version}`)),
      },
    );
  },
  150_000,
);
