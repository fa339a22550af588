/**
 * `examples/rotating-credentials.ts` against RabbitMQ: the provider is asked at the connect and again
 * before the token expires (the refresh goes to the broker as connection.update-secret and the
 * connection stays open), and a secret handed over by hand is accepted.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { brokerUrl } from '../support/broker.js';

const ROOT = join(__dirname, '..', '..');

it('asks the provider at the connect and before expiry, and updates the secret by hand', async () => {
  const url = await brokerUrl();
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number }>(
    (resolve) => {
      execFile(
        join(ROOT, 'node_modules', '.bin', 'tsx'),
        [join(ROOT, 'examples', 'rotating-credentials.ts')],
        { cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { ...process.env, AMQP_URL: url } },
        (error, out, err) =>
          resolve({ stdout: out, stderr: err, code: error === null ? 0 : Number(error.code ?? 1) }),
      );
    },
  );
  expect(stderr).toBe('');
  expect(code).toBe(0);
  const lines = stdout.trim().split('\n');
  expect(lines[0]).toBe('token service: issuing token 1');
  expect(lines[1]).toMatch(/^connected to amqp:\/\/guest@/);
  expect(lines.slice(2)).toEqual([
    'token service: issuing token 2',
    'after 6 s: 2 tokens issued, connection open: true',
    'updateSecret: the broker accepted the new secret',
  ]);
}, 40_000);
