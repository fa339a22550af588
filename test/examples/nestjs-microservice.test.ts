/**
 * `examples/nestjs/microservice` (a NestJS microservice on the `RxAmqpServer` transport, with an
 * `RxAmqpClient` in the same program) end to end: started as users start it (`tsx
 * examples/nestjs/microservice/main.ts`, against the test broker), it handles both order events with
 * its `@EventPattern('order.*')` handler, prints the stock its `@MessagePattern('stock.get')` handler
 * answered, closes and exits 0 on its own, leaving no consumer and no message behind. A refused login
 * exits 1 with a message that does not show the password.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { lastValueFrom } from 'rxjs';
import { brokerUrl, withBrokerChannel } from '../support/broker.js';

const ROOT = join(__dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const MAIN = join('examples', 'nestjs', 'microservice', 'main.ts');
// The fixed names the example declares.
const EXCHANGE = 'example.ms.events';
const QUEUES = ['example.ms.orders', 'example.ms.stock'];

/** False when another copy of the example consumes on this broker: then nothing of it is touched. */
let ours = false;

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The consumers and messages of a queue (zeros when it does not exist). */
function countsOf(queue: string): Promise<{ consumerCount: number; messageCount: number }> {
  return withBrokerChannel(async (ch) => {
    try {
      const { consumerCount, messageCount } = await lastValueFrom(ch.queueDeclare(queue, { passive: true }));
      return { consumerCount, messageCount };
    } catch {
      return { consumerCount: 0, messageCount: 0 };
    }
  });
}

/** Runs the example to its exit (killed, with its tsx child, after `ms`). */
function runExample(amqpUrl: string, ms = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    // Its own process group: tsx runs the example in a child process, and a timeout kills both.
    const child = spawn(TSX, [MAIN], {
      cwd: ROOT,
      env: { ...process.env, AMQP_URL: amqpUrl, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, ms);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // 'close': the process has exited and its output is read to the end.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new Error(`the example did not exit within ${ms} ms:\n${stdout}${stderr}`));
      } else {
        resolve({ code, signal, stdout, stderr });
      }
    });
  });
}

/** What to do when tsx compiled the example without legacy decorators. */
function hint(run: Run): string {
  return `${run.stdout}${run.stderr}`.includes('only work when experimental decorators are enabled')
    ? '\ntsx applies the compilerOptions of tsconfig.json only to the files its "include" lists: ' +
        'it must list examples/nestjs (experimentalDecorators).'
    : '';
}

beforeAll(async () => {
  for (const queue of QUEUES) {
    if ((await countsOf(queue)).consumerCount > 0) {
      throw new Error(
        `${queue} already has consumers on the test broker: a copy of examples/nestjs/microservice is running there; stop it first`,
      );
    }
  }
  ours = true;
  // A clean start: no message left by a run of the example that was stopped half-way.
  await withBrokerChannel(async (ch) => {
    for (const queue of QUEUES) await lastValueFrom(ch.queueDelete(queue));
  });
}, 30_000);

afterAll(async () => {
  if (!ours) return;
  await withBrokerChannel(async (ch) => {
    for (const queue of QUEUES) await lastValueFrom(ch.queueDelete(queue));
    await lastValueFrom(ch.exchangeDelete(EXCHANGE));
  });
});

describe('examples/nestjs/microservice', () => {
  it('handles both events, prints the stock reply, closes and exits 0', async () => {
    const run = await runExample(await brokerUrl());
    if (run.code !== 0) {
      throw new Error(
        `the example exited with ${run.code ?? run.signal}:\n${run.stdout}${run.stderr}${hint(run)}`,
      );
    }
    // Nest logs only warnings and errors here (warnings on stdout): none.
    expect(run.stderr).toBe('');
    expect(run.stdout).not.toMatch(/\b(WARN|ERROR)\b/);
    const lines = run.stdout.split('\n').filter((line) => line !== '');
    expect(lines).toContain('microservice listening on example.ms.orders and example.ms.stock');
    expect(lines).toContain('event order.placed {"id":1} (from example.ms.orders)');
    expect(lines).toContain('event order.paid {"id":1} (from example.ms.orders)');
    expect(lines).toContain('emitted order.placed and order.paid (confirmed)');
    expect(lines).toContain('stock of apple: 12');
    // Each event handled once, and `done` only after everything else.
    expect(lines.filter((line) => line.startsWith('event '))).toHaveLength(2);
    expect(lines.at(-1)).toBe('done');
    // Closed: its consumers are gone, and every message was acked.
    for (const queue of QUEUES) expect(await countsOf(queue)).toEqual({ consumerCount: 0, messageCount: 0 });
  }, 40_000);

  it('a refused login: exit 1 with the reason, the password not shown', async () => {
    const url = new URL(await brokerUrl());
    url.password = 'not-the-password-x7q';
    const run = await runExample(url.toString());
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^The example failed: .*refused/m);
    expect(`${run.stdout}${run.stderr}`).not.toContain('not-the-password-x7q');
    expect(run.stdout).not.toContain('done');
  }, 40_000);
});
