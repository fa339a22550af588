/**
 * The benchmark clients (bench/clients) against the real broker: every client does the contract's
 * work, and the broker, inspected through a separate rxamqp connection, agrees.
 */
import { lastValueFrom, switchMap } from 'rxjs';
import { CLIENT_FACTORIES } from '../../bench/clients/index.js';
import {
  type BenchClient,
  CLIENT_NAMES,
  type ClientName,
  naturalPublishVariants,
} from '../../bench/lib/clients.js';
import { type Connection, openConnection } from '../../src/node.js';
import { brokerUrl, stopBroker } from '../support/broker.js';

const BODY = Buffer.alloc(256, 0x61);
/** 1 MiB with a pattern, so that a body cut or shuffled anywhere shows. */
const MIB = Buffer.alloc(1024 * 1024);
for (let i = 0; i < MIB.length; i++) MIB[i] = (i * 31 + (i >>> 12)) & 0xff;

let url: string;
/** The broker as seen from outside the client under test. */
let inspector: Connection;

beforeAll(async () => {
  url = await brokerUrl();
  inspector = await openConnection(url, { name: 'rxamqp bench clients test (inspector)' });
});

afterAll(async () => {
  if (inspector !== undefined) await lastValueFrom(inspector.close());
  await stopBroker();
});

/** messageCount and consumerCount of `queue`, from a passive declare on the inspector. */
function inspect(queue: string): Promise<{ messageCount: number; consumerCount: number }> {
  return lastValueFrom(
    inspector.cachedChannel().pipe(switchMap((ch) => ch.queueDeclare(queue, { passive: true }))),
  );
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function slug(name: ClientName): string {
  return name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');
}

describe.each(CLIENT_NAMES)('bench client %s (real broker)', (name) => {
  let client: BenchClient;
  const queues: string[] = [];
  const run = `${process.pid}-${Date.now().toString(36)}`;

  /** A fresh queue, declared by the client under test and deleted after the tests. */
  async function freshQueue(what: string): Promise<string> {
    const queue = `rxamqp-test-bench-${slug(name)}-${what}-${run}`;
    queues.push(queue);
    await client.declareQueue(queue);
    return queue;
  }

  beforeAll(async () => {
    client = await (await CLIENT_FACTORIES[name]())(url);
  });

  afterAll(async () => {
    for (const queue of queues) {
      await lastValueFrom(inspector.cachedChannel().pipe(switchMap((ch) => ch.queueDelete(queue)))).catch(
        () => undefined,
      );
    }
    await client?.close().catch(() => undefined);
  });

  it('is named after its client', () => {
    expect(client.name).toBe(name);
  });

  it('declares, purges, reports the depth of and deletes a queue', async () => {
    const queue = await freshQueue('ops');
    await client.declareQueue(queue); // idempotent
    expect(await client.queueDepth(queue)).toBe(0);
    await client.publish(queue, BODY, 10);
    await until(async () => (await client.queueDepth(queue)) === 10, '10 messages');
    expect((await inspect(queue)).messageCount).toBe(10);
    await client.purgeQueue(queue);
    expect(await client.queueDepth(queue)).toBe(0);
    await client.deleteQueue(queue);
    await expect(inspect(queue)).rejects.toThrow(/NOT_FOUND|404/);
  });

  it('publishes 2,000 without confirms, and the queue then holds them all', async () => {
    const queue = await freshQueue('publish');
    await client.publish(queue, BODY, 2000);
    await until(async () => (await client.queueDepth(queue)) >= 2000, '2,000 messages');
    expect(await client.queueDepth(queue)).toBe(2000);
  });

  it('publishes 2,000 with confirms, at most 100 unconfirmed', async () => {
    const queue = await freshQueue('confirm');
    await client.publishConfirmed(queue, BODY, 2000, 100);
    // Confirmed transient messages are in the queue already.
    expect((await inspect(queue)).messageCount).toBe(2000);
    await client.publishConfirmed(queue, BODY, 500, 100); // the channel is reused
    expect((await inspect(queue)).messageCount).toBe(2500);
  });

  it('consumes 2,000 with prefetch 100, acking each, then leaves an empty queue and no consumer', async () => {
    const queue = await freshQueue('consume');
    await client.publish(queue, BODY, 2000);
    await until(async () => (await inspect(queue)).messageCount === 2000, '2,000 messages');
    await client.consume(queue, 2000, 100);
    expect(await inspect(queue)).toEqual({ queue, messageCount: 0, consumerCount: 0 });
    // Unacked messages would come back once their channel closed: none do.
    await new Promise((r) => setTimeout(r, 100));
    expect(await inspect(queue)).toEqual({ queue, messageCount: 0, consumerCount: 0 });
    // The client consumes again (a fresh consumer each call).
    await client.publish(queue, BODY, 300);
    await until(async () => (await inspect(queue)).messageCount === 300, '300 messages');
    await client.consume(queue, 300, 100);
    expect(await inspect(queue)).toEqual({ queue, messageCount: 0, consumerCount: 0 });
  });

  it('leaves messages beyond n in the queue', async () => {
    const queue = await freshQueue('beyond');
    await client.publish(queue, BODY, 250);
    await until(async () => (await inspect(queue)).messageCount === 250, '250 messages');
    await client.consume(queue, 200, 100);
    await until(async () => (await inspect(queue)).messageCount === 50, '50 messages back in the queue');
    expect((await inspect(queue)).consumerCount).toBe(0);
  });

  it('makes 50 round trips, one at a time, and reports 50 positive latencies', async () => {
    const queue = await freshQueue('latency');
    const latencies = await client.roundTrips(queue, BODY, 50);
    expect(latencies).toHaveLength(50);
    for (const ms of latencies) {
      expect(Number.isFinite(ms)).toBe(true);
      expect(ms).toBeGreaterThan(0);
    }
    expect(await inspect(queue)).toEqual({ queue, messageCount: 0, consumerCount: 0 });
  });

  it('carries 1 MiB bodies intact through publishConfirmed and consume', async () => {
    const queue = await freshQueue('large');
    await client.publishConfirmed(queue, MIB, 3, 2);
    expect((await inspect(queue)).messageCount).toBe(3);
    const got = await lastValueFrom(
      inspector.cachedChannel().pipe(switchMap((ch) => ch.get(queue, { noAck: true }))),
    );
    expect(got).toBeDefined();
    expect(Buffer.compare(got!.body, MIB)).toBe(0);
    await client.consume(queue, 2, 2);
    expect(await inspect(queue)).toEqual({ queue, messageCount: 0, consumerCount: 0 });
  });

  // The raw client is the ceiling of the streaming scenarios and has no natural ways to publish or
  // consume: these tests exist for the four real clients only.
  const natural = name === 'raw' ? undefined : it;

  natural?.('publishes 300 the natural ways, without confirms and with them', async () => {
    const queue = await freshQueue('natural');
    for (const confirm of [false, true]) {
      for (const variant of naturalPublishVariants(name, confirm)) {
        await client.publishNatural!(queue, BODY, 300, variant, confirm);
        if (confirm) expect((await inspect(queue)).messageCount).toBe(300);
        else await until(async () => (await inspect(queue)).messageCount === 300, `300 (${variant})`);
        await client.purgeQueue(queue);
      }
    }
  });

  natural?.('consumes 400 of 500 with an async handler, leaving about 100 and no consumer', async () => {
    const queue = await freshQueue('natural-consume');
    await client.publish(queue, BODY, 500);
    await until(async () => (await inspect(queue)).messageCount === 500, '500 messages');
    await client.consumeNatural!(queue, 400, 100);
    // rxamqp's idiomatic pipeline lets the handlers still running when take(n) completes (at most 9 of
    // its 10) finish and ack: up to 9 messages beyond n may be gone.
    const least = name === 'rxamqp' ? 91 : 100;
    await until(async () => {
      const { messageCount } = await inspect(queue);
      return messageCount >= least && messageCount <= 100;
    }, 'the messages beyond n back in the queue');
    expect((await inspect(queue)).consumerCount).toBe(0);
  });

  it('rejects rather than hangs when the broker refuses (consuming a queue that does not exist)', async () => {
    const missing = `rxamqp-test-bench-${slug(name)}-missing-${run}`;
    await expect(client.consume(missing, 10, 10)).rejects.toThrow(/NOT_FOUND|404|no queue/i);
  });
});
