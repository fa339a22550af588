/**
 * `examples/nestjs` (the NestJS shop on `rxamqp/nestjs`) end to end: started as users start it
 * (`tsx examples/nestjs/main.ts`, on a free port, against the test broker), driven over HTTP: orders
 * placed (202 once confirmed) are handled by its `@Consume` worker, prices come from its `@Rpc`
 * handler over request/reply (pipes and exceptions included), `/health` reports the connection up,
 * and SIGTERM shuts it down gracefully with exit code 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { lastValueFrom } from 'rxjs';
import { brokerUrl, withBrokerChannel } from '../support/broker.js';

const ROOT = join(__dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const MAIN = join('examples', 'nestjs', 'main.ts');
// The fixed names the example declares.
const EXCHANGE = 'shop';
const QUEUES = ['shop.orders', 'shop.prices'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let child: ChildProcess | undefined;
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
let output = '';
let base = '';
/** False when another copy of the example consumes on this broker: then nothing of it is touched. */
let ours = false;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** The consumers of a queue (0 when it does not exist). */
function consumersOf(queue: string): Promise<number> {
  return withBrokerChannel(async (ch) => {
    try {
      return (await lastValueFrom(ch.queueDeclare(queue, { passive: true }))).consumerCount;
    } catch {
      return 0;
    }
  });
}

/** What to do when tsx compiled the example without legacy decorators. */
function hint(): string {
  return output.includes('only work when experimental decorators are enabled')
    ? '\ntsx applies the compilerOptions of tsconfig.json only to the files its "include" lists: ' +
        'it must list examples/nestjs (experimentalDecorators).'
    : '';
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the example printed:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function http(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

beforeAll(async () => {
  const url = await brokerUrl();
  for (const queue of QUEUES) {
    if ((await consumersOf(queue)) > 0) {
      throw new Error(
        `${queue} already has consumers on the test broker: a copy of examples/nestjs is running there; stop it first`,
      );
    }
  }
  ours = true;
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // Its own process group: tsx runs the example in a child process, and afterAll may have to kill both.
  const started = spawn(TSX, [MAIN], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), AMQP_URL: url, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child = started;
  exited = new Promise((resolve) => started.once('exit', (code, signal) => resolve({ code, signal })));
  started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  let stopped = false;
  void exited.then(() => (stopped = true));
  const end = Date.now() + 45_000;
  while (!/listening on http:\/\/\S+/.test(output)) {
    if (stopped) throw new Error(`the example exited before listening:\n${output}${hint()}`);
    if (Date.now() > end) throw new Error(`the example did not say it listens within 45 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}, 60_000);

afterAll(async () => {
  if (
    child !== undefined &&
    child.exitCode === null &&
    child.signalCode === null &&
    child.pid !== undefined
  ) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    await exited;
  }
  if (!ours) return;
  await withBrokerChannel(async (ch) => {
    for (const queue of QUEUES) await lastValueFrom(ch.queueDelete(queue));
    await lastValueFrom(ch.exchangeDelete(EXCHANGE));
  });
});

describe('examples/nestjs', () => {
  const placed: { id: string; sku: string; quantity: number }[] = [];

  it('POST /orders: 202 with the order id once the broker confirmed the event', async () => {
    const orders = [
      { sku: 'apple', quantity: 3 },
      { sku: 'melon', quantity: 1 },
    ];
    const answers = await Promise.all(orders.map((order) => http('POST', '/orders', order)));
    for (const [i, answer] of answers.entries()) {
      expect(answer.status).toBe(202);
      const { id } = answer.json as { id: string };
      expect(id).toMatch(UUID);
      placed.push({ id, ...orders[i]! });
    }
    expect(new Set(placed.map((o) => o.id)).size).toBe(2);
  });

  it('POST /orders: the validation pipe answers 400 to a bad body', async () => {
    const answer = await http('POST', '/orders', { sku: 'apple', quantity: 0 });
    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({ message: 'quantity must be a positive integer' });
  });

  it('GET /orders: the @Consume worker handled both orders', async () => {
    const handled = await until('both orders handled', async () => {
      const { status, json } = await http('GET', '/orders');
      expect(status).toBe(200);
      const list = json as { id: string }[];
      return placed.every((p) => list.some((o) => o.id === p.id)) ? list : undefined;
    });
    expect(handled).toHaveLength(2);
    for (const order of placed) {
      expect(handled).toContainEqual(expect.objectContaining({ ...order, event: 'order.placed' }));
    }
  });

  it('GET /prices/:sku: the @Rpc handler answers over request/reply', async () => {
    expect(await http('GET', '/prices/apple?quantity=12')).toEqual({
      status: 200,
      json: {
        sku: 'apple',
        quantity: 12,
        unitPriceCents: 50,
        discountPercent: 10,
        totalCents: 540,
        currency: 'EUR',
      },
    });
    // The handler's DefaultValuePipe.
    expect(await http('GET', '/prices/pear')).toMatchObject({
      status: 200,
      json: { sku: 'pear', quantity: 1, totalCents: 65 },
    });
  });

  it("GET /prices/:sku: the RPC handler's pipe and exceptions come back as their HTTP status", async () => {
    // ParseIntPipe in the @Rpc handler refuses the quantity: an error reply with status 400.
    expect(await http('GET', '/prices/apple?quantity=lots')).toEqual({
      status: 400,
      json: { statusCode: 400, message: 'Validation failed (numeric string is expected)' },
    });
    // NotFoundException in the handler.
    expect(await http('GET', '/prices/durian')).toEqual({
      status: 404,
      json: { statusCode: 404, message: 'no price for durian' },
    });
  });

  it('GET /health: ok, with rabbitmq up', async () => {
    const { status, json } = await http('GET', '/health');
    expect(status).toBe(200);
    expect(json).toMatchObject({
      status: 'ok',
      info: { rabbitmq: { status: 'up', state: 'CONNECTED', blocked: false } },
    });
  });

  it('SIGTERM: a graceful shutdown, exit code 0, its consumers gone', async () => {
    const started = Date.now();
    child?.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      exited,
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), 15_000);
      }),
    ]).finally(() => clearTimeout(timer));
    if (result === 'timeout') throw new Error(`the example did not exit within 15 s of SIGTERM:\n${output}`);
    if (result.code !== 0)
      throw new Error(`the example exited with ${result.code ?? result.signal}:\n${output}`);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(output).not.toMatch(/\bERROR\b/);
    for (const queue of QUEUES) expect(await consumersOf(queue)).toBe(0);
  }, 30_000);
});
