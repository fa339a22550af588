/**
 * `examples/tracing.ts` against RabbitMQ: it prints one trace in which each of the three publishes
 * holds the consumer's process span, which holds the handler's own span and the ack; then the metrics
 * of the run.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { brokerUrl } from '../support/broker.js';

const ROOT = join(__dirname, '..', '..');

it('prints one trace from the request through publish, process, the handler and the ack, then metrics', async () => {
  const url = await brokerUrl();
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number }>(
    (resolve) => {
      execFile(
        join(ROOT, 'node_modules', '.bin', 'tsx'),
        [join(ROOT, 'examples', 'tracing.ts')],
        { cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { ...process.env, AMQP_URL: url } },
        (error, out, err) =>
          resolve({ stdout: out, stderr: err, code: error === null ? 0 : Number(error.code ?? 1) }),
      );
    },
  );
  expect(stderr).toBe('');
  expect(code).toBe(0);
  const lines = stdout.split('\n');
  expect(lines.filter((l) => /^trace [0-9a-f]{32}$/.test(l))).toHaveLength(1);
  expect(lines.filter((l) => /^POST \/orders \[SERVER\]/.test(l))).toHaveLength(1);
  expect(lines.filter((l) => /^[├└]─ publish example\.orders \[PRODUCER\]/.test(l))).toHaveLength(3);
  expect(lines.filter((l) => /^[│ ] {2}└─ process example\.billing\.\d+ \[CONSUMER\]/.test(l))).toHaveLength(
    3,
  );
  expect(lines.filter((l) => /^[│ ] {5}├─ reserve stock \[INTERNAL\]/.test(l))).toHaveLength(3);
  expect(lines.filter((l) => /^[│ ] {5}└─ ack example\.billing\.\d+ \[CLIENT\]/.test(l))).toHaveLength(3);
  expect(stdout).toMatch(/messaging\.client\.sent\.messages \{[^}]*\} 3$/m);
  expect(stdout).toMatch(/rxamqp\.settlements \{[^}]*rxamqp\.settlement=ack\} 3$/m);
}, 40_000);
