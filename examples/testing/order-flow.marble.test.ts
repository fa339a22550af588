/**
 * The order flow in virtual time, with the marble kit of `rxamqp/testing`: fake deliveries on a marble,
 * a fake channel whose publishes are confirmed (or nacked) on a script, and the settlements and
 * publishes checked as marbles. No broker, no waiting.
 */
import { marbleKit, published, settlement } from 'rxamqp/testing';
import { marbles } from 'rxjs-marbles/jest';
import { processOrders, RESULTS_QUEUE } from './order-flow.js';

const JSON_RESULT = { contentType: 'application/json' };

describe('processOrders, marble-tested', () => {
  it(
    'publishes the result of a valid order and acks it once the result is confirmed; dead-letters the rest',
    marbles((m) => {
      // Each publish is acked by the (fake) broker one frame after it is made.
      const channel = marbleKit(m).channel({ reply: '-a' });
      const orders = channel.cold('-a-b-c|', {
        a: { body: { id: 'o1', item: 'coffee', quantity: 2 } },
        b: 'not json',
        c: { body: { id: 'o3', item: 'caviar', quantity: 1 } },
      });
      m.expect(processOrders(orders, channel)).toBeObservable('--r---|', {
        r: { orderId: 'o1', total: 500 },
      });
      m.expect(channel.published$).toBeObservable('-p', {
        p: published(
          '',
          RESULTS_QUEUE,
          { orderId: 'o1', total: 500 },
          {
            properties: { ...JSON_RESULT, messageId: 'o1' },
          },
        ),
      });
      m.expect(channel.settlements$).toBeObservable('--ab-c', {
        a: settlement.ack(1),
        b: settlement.reject(2, { requeue: false }),
        c: settlement.reject(3, { requeue: false }),
      });
    }),
  );

  it(
    'dead-letters an order whose result the broker nacks, and acks the next one',
    marbles((m) => {
      // The first result is nacked two frames after it is published, the next ones acked at once.
      let publishes = 0;
      const channel = marbleKit(m).channel({ reply: () => (++publishes === 1 ? '--n' : 'a') });
      const orders = channel.cold('-a--b|', {
        a: { body: { id: 'o1', item: 'tea', quantity: 1 } },
        b: { body: { id: 'o2', item: 'cake', quantity: 3 } },
      });
      m.expect(processOrders(orders, channel)).toBeObservable('----r|', {
        r: { orderId: 'o2', total: 1200 },
      });
      m.expect(channel.settlements$).toBeObservable('---ab', {
        a: settlement.reject(1, { requeue: false }),
        b: settlement.ack(2),
      });
    }),
  );
});
