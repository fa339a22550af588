/** The examples of the kit's doc comments, run as they are written there. */
import { map, toArray } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { processOrders } from '../../../examples/testing/order-flow.js';
import { ackOnSuccess, answerRequests, batchAck } from '../../../operators/index.js';
import { marbleKit, published, settlement } from '../../../src/testing/index.js';

describe('the doc examples', () => {
  it(
    'module overview: answers and acks once the reply is confirmed',
    marbles((m) => {
      const channel = marbleKit(m).channel({ reply: '--a' }); // confirms 2 frames after each publish
      const requests = channel.cold('-a|', {
        a: { body: 'hi', properties: { replyTo: 'r', correlationId: 'c' } },
      });
      m.expect(requests.pipe(answerRequests(channel, (r) => r.text().toUpperCase()))).toBeObservable(
        '---(x|)',
        {
          x: 'HI',
        },
      );
      m.expect(channel.published$).toBeObservable('-p', {
        p: published('', 'r', 'HI', { properties: { correlationId: 'c' } }),
      });
      m.expect(channel.settlements$).toBeObservable('---a', { a: settlement.ack(1) });
    }),
  );

  it(
    'MarbleKit: acks what it handled',
    marbles((m) => {
      const kit = marbleKit(m);
      const channel = kit.channel();
      const source = channel.cold('-a-b|', { a: '1', b: 'x' });
      m.expect(
        source.pipe(
          ackOnSuccess((d) => JSON.parse(d.text()) as number),
          toArray(),
        ),
      ).toBeObservable('----(r|)', { r: [1] });
      m.expect(channel.settlements$).toBeObservable('-a-b', {
        a: settlement.ack(1),
        b: settlement.reject(2), // ackOnSuccess's default 'retry': basic.reject with requeue
      });
    }),
  );

  it(
    'FakeChannel.deliveriesOf and cold with batchAck',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const { a, c } = channel.deliveriesOf({ a: 'one', b: 'two', c: 'three' }); // tags 1, 2, 3
      m.expect(m.cold('-ca|', { a, c }).pipe(batchAck())).toBeObservable('--a|', { a }); // c waits for tag 2
      const other = marbleKit(m).channel();
      const source = other.cold('-a-b---|', { a: 'one', b: { body: { n: 2 }, redelivered: true } });
      m.expect(source.pipe(batchAck({ count: 2 }))).toBeObservable('---(ab)|', source.deliveries);
    }),
  );

  it(
    'FakeConnectionObservable: states',
    marbles((m) => {
      const connection$ = marbleKit(m).connection({ marbles: 'c--x-c' });
      const states: string[] = [];
      connection$.state$.subscribe((s) => states.push(s.status));
      m.expect(connection$.pipe(map((c) => c.index))).toBeObservable('a----b', { a: 1, b: 2 });
      m.flush();
      expect(states).toEqual([
        'INITIAL',
        'CONNECTING',
        'CONNECTED',
        'RECONNECTING',
        'CONNECTING',
        'CONNECTED',
      ]);
    }),
  );
});

describe('the examples of docs/testing-your-code.md', () => {
  it(
    'the marble kit: acks an order once its result is confirmed; dead-letters the rest',
    marbles((m) => {
      const channel = marbleKit(m).channel({ reply: '-a' }); // each publish acked 1 frame later
      const orders = channel.cold('-a-b|', {
        a: { body: { id: 'o1', item: 'tea', quantity: 1 } },
        b: 'not json',
      });
      m.expect(processOrders(orders, channel)).toBeObservable('--r-|', { r: { orderId: 'o1', total: 200 } });
      m.expect(channel.published$).toBeObservable('-p', {
        p: published(
          '',
          'order-results',
          { orderId: 'o1', total: 200 },
          { properties: { contentType: 'application/json', messageId: 'o1' } },
        ),
      });
      m.expect(channel.settlements$).toBeObservable('--ab', {
        a: settlement.ack(1),
        b: settlement.reject(2, { requeue: false }),
      });
    }),
  );
});
