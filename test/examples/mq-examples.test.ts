/**
 * `examples/mq-work-queue.ts` and `examples/mq-broadcast.ts` run unchanged on both brokers: RabbitMQ
 * (the default `amqp://localhost`) and Mosquitto (`MQ_URL=mqtt://localhost:1883`), as they print it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { mqttUrl } from '../mq/support.js';
import { brokerUrl } from '../support/broker.js';

const ROOT = join(__dirname, '..', '..');

function run(example: string, url: string): string[] {
  const result = spawnSync(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(ROOT, 'examples', example)], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, MQ_URL: url },
  });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return result.stdout.trim().split('\n');
}

describe.each([
  ['amqp', brokerUrl],
  ['mqtt', mqttUrl],
])('the mq examples on %s', (_name, url) => {
  it('mq-work-queue: ten jobs, each handled once, by both workers', async () => {
    const lines = run('mq-work-queue.ts', await url());
    const handled = lines.filter((l) => /^job-\d+ by worker-[ab]$/.test(l));
    expect(handled.map((l) => l.split(' ')[0]).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `job-${i + 1}`).sort(),
    );
    expect(lines.at(-1)).toMatch(/^worker-a handled [1-9], worker-b [1-9]$/);
  }, 60_000);

  it('mq-broadcast: both listeners hear every event', async () => {
    const lines = run('mq-broadcast.ts', await url());
    expect(lines).toEqual([
      'dashboard heard: started, step 1, step 2, step 3, finished',
      'audit heard:     started, step 1, step 2, step 3, finished',
    ]);
  }, 60_000);
});
