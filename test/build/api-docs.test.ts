/**
 * `npm run docs` builds the API reference from the doc comments with TypeDoc (typedoc.json: every entry
 * point, warnings are errors). This runs the same build into a temporary folder, so that a broken
 * {@link}, an exported type left out of the reference or a stray @internal reference fails the tests.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

describe('the API reference (npm run docs)', () => {
  it('builds with TypeDoc without a warning', () => {
    const out = mkdtempSync(join(tmpdir(), 'rxamqp-api-'));
    try {
      const typedoc = join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc');
      const run = spawnSync(process.execPath, [typedoc, '--out', out], { cwd: ROOT, encoding: 'utf8' });
      const output = `${run.stdout}${run.stderr}`;
      expect({
        status: run.status,
        warnings: output.split('\n').filter((l) => /warning|error/i.test(l)),
      }).toEqual({
        status: 0,
        warnings: [],
      });
      for (const page of ['index.html', 'hierarchy.html', 'classes'])
        expect(existsSync(join(out, page))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
