/** The in-memory transport: chunking, backpressure, ordering, and no re-entrancy. */
import { lastValueFrom } from 'rxjs';
import type { TransportConnector } from '../../../src/index.js';
import { connectTo, EmbeddedBroker, first, settle, text } from './helpers.js';

describe('in-memory transport', () => {
  it('works when the client’s bytes arrive one at a time (the protocol header too)', async () => {
    const broker = new EmbeddedBroker();
    const byteByByte: TransportConnector = async (target, handler, signal) => {
      const inner = await broker.connector(target, handler, signal);
      return {
        ...inner,
        write: (chunk) => {
          let ok = true;
          for (let i = 0; i < chunk.length; i++) ok = inner.write(chunk.subarray(i, i + 1));
          return ok;
        },
        end: () => inner.end(),
        destroy: () => inner.destroy(),
        get bufferedBytes() {
          return inner.bufferedBytes;
        },
      };
    };
    const conn = await connectTo(broker, undefined, { transport: byteByByte });
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    await lastValueFrom(ch.confirmSelect());
    const body = 'x'.repeat(10_000);
    expect(await lastValueFrom(ch.publish('', 'q', body, { headers: { a: 1 } }))).toMatchObject({
      status: 'acked',
    });
    const [d] = await first(ch.consume('q'), 1);
    expect(text(d!.body)).toBe(body);
    await lastValueFrom(conn.close());
  });

  it('pushes back on a fast publisher above the write high-water mark, and drains', async () => {
    const broker = new EmbeddedBroker();
    const conn = await connectTo(broker, undefined, { writeHighWaterMark: 4096 });
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    await lastValueFrom(ch.confirmSelect());
    const body = new Uint8Array(1000);
    const outcomes = await Promise.all(
      Array.from({ length: 500 }, () => lastValueFrom(ch.publish('', 'q', body))),
    );
    expect(outcomes.every((o) => o.status === 'acked')).toBe(true);
    expect(outcomes.map((o) => (o as { seq: number }).seq)).toEqual(
      Array.from({ length: 500 }, (_, i) => i + 1),
    );
    expect(broker.queue('q')!.messageCount).toBe(500);
    await lastValueFrom(conn.close());
  });

  it('never hands the broker’s bytes to the client inside a client call', async () => {
    const broker = new EmbeddedBroker();
    let inWrite = false;
    let reentered = false;
    const watching: TransportConnector = async (target, handler, signal) => {
      const inner = await broker.connector(
        target,
        {
          onData: (chunk) => {
            if (inWrite) reentered = true;
            handler.onData(chunk);
          },
          onDrain: () => handler.onDrain(),
          onClose: (error) => handler.onClose(error),
        },
        signal,
      );
      return {
        ...inner,
        write: (chunk) => {
          inWrite = true;
          try {
            return inner.write(chunk);
          } finally {
            inWrite = false;
          }
        },
        end: () => inner.end(),
        destroy: () => inner.destroy(),
      };
    };
    const conn = await connectTo(broker, undefined, { transport: watching });
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    await lastValueFrom(conn.close());
    expect(reentered).toBe(false);
  });

  it('never runs client callbacks inside a hook call either', async () => {
    const broker = new EmbeddedBroker();
    const conn = await connectTo(broker);
    const ch = await conn.openChannel();
    await lastValueFrom(ch.queueDeclare('q'));
    const got: string[] = [];
    ch.consume('q', { noAck: true }).subscribe((d) => got.push(text(d.body)));
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    broker.publish('', 'q', 'hello');
    expect(got).toEqual([]);
    await settle();
    expect(got).toEqual(['hello']);
    await lastValueFrom(conn.close());
  });
});
