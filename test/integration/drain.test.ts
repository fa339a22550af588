/**
 * Connection.drain against RabbitMQ: the issue's figure (a drain during a run with 50 handlers in
 * flight: each finishes and is acked, the rest stay in the queue, nothing acked twice) and the
 * timeout. The same scenarios run on the embedded broker in test/client/drain.test.ts.
 */
import { lastValueFrom } from 'rxjs';
import { type Connection, openConnection } from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import { drainUnderLoad } from '../support/drain-scenario.js';

let url: string;
const open = (): Promise<Connection> => openConnection(url, { name: 'rxamqp drain tests' });

beforeAll(async () => {
  url = await brokerUrl();
});

describe('Connection.drain (real broker)', () => {
  it('drains with 50 handlers in flight: each finishes and is acked once, the rest stay in the queue', async () => {
    const f = await drainUnderLoad(open, `rxamqp.drain.fifty.${process.pid}`, {
      messages: 500,
      prefetch: 50,
      concurrency: 50,
      handlerMs: (i) => 20 + ((i * 37) % 200),
      drainAfterStarted: 50,
      drain: { timeout: 10_000 },
    });
    // The figures of the run, for the report.
    console.log(
      `drain figures: started ${f.started}, finished ${f.finished}, acked ${f.acked.size}, double acks ${f.doubleAcks}, ` +
        `left in queue ${f.leftInQueue.length}/${f.published}, lost ${f.lost.length}, results confirmed ${f.resultsConfirmed}, ` +
        `phases ${f.progress.map((p) => `${p.phase}@${p.elapsed}ms(u${p.unsettled},c${p.unconfirmed})`).join(' ')}`,
    );
    expect(f.started).toBe(50);
    expect(f.finished).toBe(50);
    expect(f.acked.size).toBe(50);
    expect(f.doubleAcks).toBe(0);
    expect(f.leftInQueue).toHaveLength(450);
    expect(f.ackedAndLeft).toEqual([]);
    expect(f.lost).toEqual([]);
    // A double ack would have closed the channel with 406 and errored the stream.
    expect(f.consumerEnd).toBe('complete');
    expect(f.resultsConfirmed).toBe(50);
    expect(f.progress.map((p) => p.phase)).toEqual(['settling', 'publishing', 'closing', 'closed']);
    expect(f.progress[0]).toMatchObject({ consumers: 1, unsettled: 50 });
    expect(f.progress.at(-1)).toMatchObject({ unsettled: 0, unconfirmed: 0, timedOut: false });
  });

  it("prefetched: 'return' requeues what waited for a slot; the handlers running finish", async () => {
    const f = await drainUnderLoad(open, `rxamqp.drain.return.${process.pid}`, {
      messages: 300,
      prefetch: 50,
      concurrency: 10,
      handlerMs: () => 50,
      drainAfterStarted: 10,
      drain: { timeout: 10_000, prefetched: 'return' },
    });
    expect(f.finished).toBe(10);
    expect(f.acked.size).toBe(10);
    expect(f.doubleAcks).toBe(0);
    expect(f.leftInQueue).toHaveLength(290);
    expect(f.lost).toEqual([]);
    expect(f.consumerEnd).toBe('complete');
  });

  it('closes at the timeout when handlers hang: the broker requeues every delivery', async () => {
    const f = await drainUnderLoad(open, `rxamqp.drain.hang.${process.pid}`, {
      messages: 100,
      prefetch: 20,
      concurrency: 20,
      handlerMs: () => 0,
      drainAfterStarted: 20,
      hang: true,
      drain: { timeout: 300 },
    });
    expect(f.finished).toBe(0);
    expect(f.leftInQueue).toHaveLength(100);
    expect(f.lost).toEqual([]);
    expect(f.progress.at(-1)).toMatchObject({ phase: 'closed', timedOut: true, unsettled: 20 });
  });

  it('a drained connection is closed and its connect() completes', async () => {
    const conn = await open();
    await lastValueFrom(conn.drain());
    expect(conn.isOpen).toBe(false);
    expect(conn.error).toBeUndefined();
  });
});
