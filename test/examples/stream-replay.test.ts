/**
 * `examples/stream-replay.ts` against the local RabbitMQ: the first run, the resume from the stored
 * offset + 1 (exactly the rest) and the post-filtered read, as it prints them.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

it('replays, resumes after the stored offset and filters', () => {
  const result = spawnSync(
    join(ROOT, 'node_modules', '.bin', 'tsx'),
    [join(ROOT, 'examples', 'stream-replay.ts')],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  const lines = result.stdout.trim().split('\n');
  /** The message numbers a line shows (`label: n@offset n@offset ...`). */
  const numbers = (line: string | undefined): string =>
    (line ?? '')
      .slice((line ?? '').lastIndexOf(': ') + 2)
      .split(' ')
      .map((entry) => entry.split('@')[0])
      .join(' ');
  expect(lines).toHaveLength(3);
  expect(numbers(lines[0])).toBe('0 1 2 3');
  expect(numbers(lines[1])).toBe('4 5 6 7 8 9 10');
  expect(numbers(lines[2])).toBe('0 2 5 7 10');
}, 60_000);
