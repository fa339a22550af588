/**
 * `npm run demo` (examples/quick-demo.ts) with and without a broker: with the local RabbitMQ it runs
 * there; in a network namespace of its own, where nothing answers on 127.0.0.1:5672, it says in one
 * line that it runs on the embedded broker, and still exits 0. Needs root for `ip netns` (CI runs as
 * root); without it the test fails saying so.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const DEMO = join(ROOT, 'examples', 'quick-demo.ts');
const EMBEDDED_LINE =
  'No broker at 127.0.0.1:5672 and no AMQP_URL: running on the embedded broker (rxamqp/testing).';

/**
 * Runs the demo (behind `prefix`, a command to run it under) without AMQP_URL, so that it looks for
 * the local broker; expects it to succeed quietly on stderr and returns what it printed.
 */
function runDemo(prefix: string[]): string {
  const env = { ...process.env };
  delete env.AMQP_URL;
  const [command = TSX, ...args] = [...prefix, TSX, DEMO];
  const result = spawnSync(command, args, { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return result.stdout;
}

function expectDemoOutput(stdout: string): void {
  expect(stdout).toMatch(/Declared \S+; publishing 3 messages/);
  for (const id of [1, 2, 3]) expect(stdout).toContain(`got order-${id} (application/json`);
  expect(stdout.trimEnd().endsWith('Closed.')).toBe(true);
}

describe('the quick demo', () => {
  it('runs against the local RabbitMQ', () => {
    const stdout = runDemo([]);
    expect(stdout).not.toContain('embedded broker');
    expect(stdout).toContain('RabbitMQ');
    expectDemoOutput(stdout);
  });

  it('runs on the embedded broker, saying so, where no broker answers', () => {
    if (process.getuid?.() !== 0) {
      throw new Error('this test needs root for `ip netns` (a network namespace with no broker in it)');
    }
    const ns = `rxamqp-demo-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
      const stdout = runDemo(['ip', 'netns', 'exec', ns]);
      const lines = stdout.split('\n');
      expect(lines[0]).toBe(EMBEDDED_LINE);
      expect(lines.filter((l) => l.includes('running on the embedded broker'))).toHaveLength(1);
      expect(stdout).toContain('rxamqp embedded broker');
      expectDemoOutput(stdout);
    } finally {
      execFileSync('ip', ['netns', 'delete', ns]);
    }
  });
});
