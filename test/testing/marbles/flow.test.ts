/**
 * A whole pipeline on the kit: consume, decode, process, publish with confirms, settle by the
 * outcome, across a dropped connection.
 */
import { catchError, EMPTY, map, mergeMap, switchMap, tap } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { marbles } from 'rxjs-marbles/jest';
import { decodeJson, publishConfirmed } from '../../../operators/index.js';
import type { Delivery } from '../../../src/index.js';
import {
  type FakeChannel,
  type MarbleKit,
  marbleKit,
  published,
  settlement,
} from '../../../src/testing/index.js';

interface Order {
  readonly id: number;
  readonly amount: number;
}

/** Orders in, invoices out: each order is acked once its invoice is confirmed, requeued if it is nacked. */
function invoicing(kit: MarbleKit, connectionMarbles: string, reply: string | ((text: string) => string)) {
  const channels: FakeChannel[] = [];
  const connection$ = kit.connection({
    marbles: connectionMarbles,
    channel: typeof reply === 'string' ? { reply } : { reply: (p) => reply(p.text) },
  });
  const invoiced = connection$.pipe(
    switchMap((conn) => conn.channel()),
    tap((ch) => channels.push(ch)),
    switchMap((ch) =>
      ch.consume('orders', { prefetch: 10 }).pipe(
        decodeJson<Order>(),
        map(({ delivery, value }) => ({
          exchange: 'billing',
          routingKey: 'invoice',
          body: JSON.stringify({ order: value.id, total: value.amount * 2 }),
          delivery,
        })),
        publishConfirmed(ch, { onNack: 'emit' }),
        map(({ message, outcome }) => {
          const delivery: Delivery = message.delivery;
          if (outcome.status === 'acked') delivery.ack();
          else delivery.nack({ requeue: true });
          return `${delivery.json<Order>().id}:${outcome.status}`;
        }),
        catchError(() => EMPTY), // a publish in flight when the connection drops
      ),
    ),
  );
  return { invoiced, channels, connection$ };
}

describe('a consume -> decode -> process -> publish -> settle flow on the kit', () => {
  it(
    'acks each order once its invoice is confirmed, rejects an undecodable one, requeues a nacked one',
    marbles((m) => {
      const kit = marbleKit(m);
      const orders = kit.queue('orders', '-a-b-c', {
        a: { body: { id: 1, amount: 5 } },
        b: 'not json',
        c: { body: { id: 3, amount: 7 } },
      });
      // The invoice of order 3 is nacked once, then acked when the requeued order comes back.
      let nacked = false;
      const { invoiced, channels } = invoicing(kit, 'c', (text) => {
        if (text.includes('"order":3') && !nacked) {
          nacked = true;
          return '-n';
        }
        return '-a';
      });
      m.expect(invoiced).toBeObservable('--a---b-c', { a: '1:acked', b: '3:nacked', c: '3:acked' });
      m.flush();
      const [channel] = channels;
      expect(channel?.published.map((p) => p.text)).toEqual([
        '{"order":1,"total":10}',
        '{"order":3,"total":14}',
        '{"order":3,"total":14}',
      ]);
      expect(channel?.settlements).toEqual([
        settlement.ack(1),
        settlement.reject(2, { requeue: false }),
        settlement.nack(3),
        settlement.ack(4),
      ]);
      expect(orders.deadLettered.map((o) => o.text)).toEqual(['not json']);
      expect([orders.acked, orders.depth]).toEqual([2, 0]);
    }),
  );

  it('carries on across a dropped connection: the order whose invoice was in flight is redelivered and invoiced again', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run((helpers) => {
      const kit = marbleKit({ ...helpers, scheduler });
      const orders = kit.queue('orders', '-a', { a: { body: { id: 1, amount: 5 } } });
      // The invoice is acked 3 frames after it is published: the connection drops before that.
      const { invoiced, channels } = invoicing(kit, 'c-x--c', '---a');
      helpers.expectObservable(invoiced).toBe('--------a', { a: '1:acked' });
      helpers.flush();
      const [lost, next] = channels;
      expect(lost?.published).toEqual([published('billing', 'invoice', '{"order":1,"total":10}')]);
      expect(lost?.confirms.map((c) => c.status)).toEqual(['failed']);
      expect(lost?.settlements).toEqual([]);
      expect(next?.settlements).toEqual([settlement.ack(1)]);
      // Published twice in all: at-least-once.
      expect(channels.flatMap((c) => c.published)).toHaveLength(2);
      expect([orders.acked, orders.depth]).toEqual([1, 0]);
    });
  });

  it(
    'processes with concurrency and time: slow handlers, confirms as they come, settlements in order of confirms',
    marbles((m) => {
      const kit = marbleKit(m);
      const channel = kit.channel({ reply: (p) => (p.text === 'B' ? '---a' : '-a') });
      const source = channel.cold('-ab|', { a: 'a', b: 'b' });
      const out = source.pipe(
        mergeMap((d) => m.cold('--x|', { x: d }), 2),
        map((d) => ({ exchange: '', routingKey: 'out', body: d.text().toUpperCase(), d })),
        publishConfirmed(channel),
        map(({ message }) => {
          message.d.ack();
          return message.body;
        }),
      );
      m.expect(out).toBeObservable('----a--(b|)', { a: 'A', b: 'B' });
      m.expect(channel.published$.pipe(map((p) => p.text))).toBeObservable('---ab', { a: 'A', b: 'B' });
      m.expect(channel.settlements$).toBeObservable('----a--b', {
        a: settlement.ack(1),
        b: settlement.ack(2),
      });
    }),
  );
});
