/**
 * rxamqp/nestjs on NestJS 11 (the newest 12.x is what the other suites load): runs the module's
 * handler suite (decorators, guards, interceptors, pipes, filters, request scope, request/reply) and the
 * microservices transport's suite again in a child Jest whose `@nestjs/*` imports resolve to
 * compat/nestjs11, where `npm install` (the prepare script) puts NestJS 11. (The failure policies, the
 * embedded broker and the lifecycle go through the same code with either version, and CI's time is
 * counted: those run on NestJS 12 only.)
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

it('the module and transport suites pass on NestJS 11', async () => {
  if (!existsSync(join(ROOT, 'compat', 'nestjs11', 'node_modules', '@nestjs', 'core'))) {
    throw new Error(
      'NestJS 11 is not installed in compat/nestjs11: run `npm install` (or `npm run prepare`)',
    );
  }
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'), '--config', 'jest.nestjs11.config.cjs', '--ci'],
      { cwd: ROOT, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : (error.code as number | null), output: `${stdout}${stderr}` }),
    );
  });
  const summary = output.split('\n').filter((l) => /^(Tests|Test Suites):/.test(l));
  expect({ code, summary, versions: [...new Set(output.match(/\[nestjs 11\.[\d.]+\]/g) ?? [])] }).toEqual({
    code: 0,
    summary: [
      expect.stringMatching(/^Test Suites: +2 passed, 2 total/),
      expect.stringMatching(/^Tests: +\d+ passed/),
    ],
    versions: [expect.stringMatching(/^\[nestjs 11\./)],
  });
}, 150_000);
