/**
 * `examples/mq-work-queue.ts` and `examples/mq-broadcast.ts` run unchanged on both brokers: RabbitMQ
 * (the default `amqp://localhost`) and Mosquitto (`MQ_URL=mqtt://localhost:1883`), as they print it;
 * the work queue also over TLS (`amqps://`, `mqtts://` through a TLS terminator, its CA in `MQ_CA`).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MQTT_HOST, MQTT_PORT, mqttUrl } from '../mq/support.js';
import { brokerUrl } from '../support/broker.js';
import { startTlsTerminator } from '../support/tls-terminator.js';

const ROOT = join(__dirname, '..', '..');

/**
 * Runs an example with tsx; resolves its stdout's lines after checking it exited 0 with nothing on
 * stderr. Not spawnSync: the TLS cases' terminator runs in this process and must go on forwarding.
 */
function run(example: string, url: string, env: Record<string, string> = {}): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(
      join(ROOT, 'node_modules', '.bin', 'tsx'),
      [join(ROOT, 'examples', example)],
      { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, MQ_URL: url, ...env } },
      (error, stdout, stderr) => {
        try {
          expect(stderr).toBe('');
          expect(error).toBeNull();
          resolve(stdout.trim().split('\n'));
        } catch (e) {
          reject(e);
        }
      },
    );
  });
}

describe.each([
  ['amqp', brokerUrl],
  ['mqtt', mqttUrl],
])('the mq examples on %s', (_name, url) => {
  it('mq-work-queue: ten jobs, each handled once, by both workers', async () => {
    const lines = await run('mq-work-queue.ts', await url());
    const handled = lines.filter((l) => /^job-\d+ by worker-[ab]$/.test(l));
    expect(handled.map((l) => l.split(' ')[0]).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `job-${i + 1}`).sort(),
    );
    expect(lines.at(-1)).toMatch(/^worker-a handled [1-9], worker-b [1-9]$/);
  }, 60_000);

  it('mq-broadcast: both listeners hear every event', async () => {
    const lines = await run('mq-broadcast.ts', await url());
    expect(lines).toEqual([
      'dashboard heard: started, step 1, step 2, step 3, finished',
      'audit heard:     started, step 1, step 2, step 3, finished',
    ]);
  }, 60_000);
});

describe('the mq work queue example over TLS', () => {
  it.each([['amqps'], ['mqtts']])(
    '%s: with MQ_CA, the same ten jobs',
    async (scheme) => {
      if (scheme === 'mqtts') await mqttUrl(); // fails with instructions when Mosquitto is not there
      const upstream = scheme === 'mqtts' ? { host: MQTT_HOST, port: MQTT_PORT } : undefined;
      const terminator = await startTlsTerminator(upstream);
      const dir = mkdtempSync(join(tmpdir(), 'rxamqp-mq-ca-'));
      try {
        const caFile = join(dir, 'ca.pem');
        writeFileSync(caFile, terminator.caPem);
        let url = `mqtts://localhost:${terminator.port}`;
        if (scheme === 'amqps') {
          const amqp = new URL(await brokerUrl());
          amqp.protocol = 'amqps:';
          amqp.hostname = 'localhost';
          amqp.port = String(terminator.port);
          url = amqp.toString();
        }
        const lines = await run('mq-work-queue.ts', url, { MQ_CA: caFile });
        expect(lines[0]).toBe(`sent 10 jobs over ${scheme}; the broker took each one`);
        expect(lines.filter((l) => /^job-\d+ by worker-[ab]$/.test(l))).toHaveLength(10);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        await terminator.close();
      }
    },
    60_000,
  );
});
