/**
 * The marble kit runs anywhere: `rxamqp/testing`'s universal entry bundles for the browser with no Node
 * built-in, no Node global (`Buffer`, `process`...), and nothing from outside src/ (no jest, no
 * rxjs-marbles: the kit is handed the test's scheduler and marble helpers).
 */

import { join } from 'node:path';
import { stop } from 'esbuild';
import { checkBrowserBundle } from '../../build/browser-bundle-check.js';

afterAll(async () => {
  await stop();
});

describe('the marble kit', () => {
  it('bundles for the browser without Node, jest or rxjs-marbles', async () => {
    const { problems, inputs } = await checkBrowserBundle({
      baseDir: join(__dirname, '..', '..', '..'),
      entryPoints: ['src/testing/index.ts'],
      allowedRoots: ['src'],
      external: ['rxjs'],
    });
    expect(inputs).toContain('src/testing/marbles/channel.ts');
    expect(inputs.filter((input) => /jest|rxjs-marbles/.test(input))).toEqual([]);
    expect(problems.map((p) => p.message)).toEqual([]);
  }, 60_000);
});
