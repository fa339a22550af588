/**
 * A channel's queue of waiting operations, through the client and the embedded broker: thousands of
 * publishes made while the channel's basic.qos and basic.consume are still in flight wait behind them
 * and go out in order (the queue is taken from a moving head and compacted as it drains, rather than
 * shifted), then a method queued after them still comes last.
 */
import { lastValueFrom } from 'rxjs';
import { openConnection } from '../../src/node.js';
import { EmbeddedBroker } from '../../src/testing/index.js';

it('keeps the order of 5,000 publishes queued behind a pending consume, and of a method after them', async () => {
  const broker = new EmbeddedBroker();
  const conn = await openConnection('amqp://guest:guest@embedded', { transport: broker.connector });
  const ch = await conn.openChannel();
  await lastValueFrom(ch.queueDeclare('ordered'));
  const n = 5000;
  const seen: number[] = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  // basic.qos and basic.consume go out with this turn's flush; the publishes below wait behind them.
  const consumer = ch.consume('ordered', { prefetch: 50 }).subscribe((d) => {
    seen.push(Number(d.text()));
    d.ack();
    if (seen.length === n) done();
  });
  const outcomes: string[] = [];
  for (let i = 0; i < n; i++) ch.publish('', 'ordered', String(i)).subscribe((o) => outcomes.push(o.status));
  // Queued after the publishes: written after all of them, so every publish was `sent` before its reply.
  const declared = lastValueFrom(ch.queueDeclare('ordered', { passive: true })).then(() => outcomes.length);
  await all;
  expect(await declared).toBe(n);
  expect(seen).toEqual(Array.from({ length: n }, (_, i) => i));
  expect(outcomes).toEqual(Array.from({ length: n }, () => 'sent'));
  consumer.unsubscribe();
  await lastValueFrom(conn.close());
  broker.close();
});

it('keeps a method behind the publishes of its channel that wait for the socket to drain', async () => {
  const broker = new EmbeddedBroker();
  // A small high-water mark: most of the publishes below wait for the transport to drain.
  const conn = await openConnection('amqp://guest:guest@embedded', {
    transport: broker.connector,
    writeHighWaterMark: 64 * 1024,
  });
  const ch = await conn.openChannel();
  await lastValueFrom(ch.queueDeclare('drained'));
  const n = 200;
  const body = new Uint8Array(16 * 1024);
  let sent = 0;
  for (let i = 0; i < n; i++) ch.publish('', 'drained', body).subscribe(() => sent++);
  expect(sent).toBeLessThan(n); // some do wait
  const declared = await lastValueFrom(ch.queueDeclare('drained', { passive: true }));
  // Written after every publish, so the broker had them all when it answered.
  expect(sent).toBe(n);
  expect(declared.messageCount).toBe(n);
  await lastValueFrom(conn.close());
  broker.close();
});
