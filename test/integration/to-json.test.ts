/**
 * The public objects go through JSON.stringify (as loggers do) without a circular-structure error,
 * show what identifies them, and never the password. Before, JSON.stringify(connection) threw.
 */
import { filter, firstValueFrom, lastValueFrom, take } from 'rxjs';
import { connect, createPublisher, field, openConnection } from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';

let url: string;

beforeAll(async () => {
  url = await brokerUrl();
}, 180_000);

describe('toJSON of the public objects (real broker)', () => {
  it('Connection, Channel, Delivery, ConnectionObservable and Publisher stringify safely', async () => {
    const connection$ = connect(url, { recovery: true });
    const held = connection$.subscribe(); // recovering connections are shared: this one keeps it open
    const conn = await firstValueFrom(connection$);
    try {
      const ch = await conn.openChannel();
      const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));
      await lastValueFrom(
        ch.publish('', queue, 'body', { headers: { big: field.int64(2n ** 62n), raw: new Uint8Array(3) } }),
      );
      const delivery = await firstValueFrom(ch.get(queue));
      const publisher = createPublisher(connection$);
      await lastValueFrom(publisher.publish('', queue, 'again'));

      const json = {
        connection: JSON.parse(JSON.stringify(conn)),
        channel: JSON.parse(JSON.stringify(ch)),
        delivery: JSON.parse(JSON.stringify(delivery)),
        state: JSON.parse(JSON.stringify(connection$)),
        publisher: JSON.parse(JSON.stringify(publisher)),
      };
      expect(json.connection).toMatchObject({ open: true, blocked: false });
      expect(json.connection.url).not.toContain(':guest@');
      expect(json.channel).toEqual({ id: ch.id, open: true, confirmMode: false });
      expect(json.delivery).toMatchObject({
        fields: { deliveryTag: 1, routingKey: queue },
        properties: { headers: { big: String(2n ** 62n), raw: { bytes: 3 } } },
        bodySize: 4,
        settled: false,
      });
      expect(json.state).toMatchObject({ status: 'CONNECTED' });
      expect(json.publisher).toMatchObject({ ready: true, confirmMode: true, buffered: 0, closed: false });
      for (const text of Object.values(json).map((v) => JSON.stringify(v)))
        expect(text).not.toContain(':guest@'); // the user name may show, the password never
      delivery.ack();
      await lastValueFrom(publisher.close());
    } finally {
      held.unsubscribe();
      await firstValueFrom(
        connection$.state$.pipe(
          filter((s) => s.status === 'CLOSED'),
          take(1),
        ),
      );
    }
  });

  it('openConnection gives the same Connection shape', async () => {
    const conn = await openConnection(url);
    expect(Object.keys(JSON.parse(JSON.stringify(conn)))).toEqual(['url', 'host', 'open', 'blocked']);
    await lastValueFrom(conn.close());
  });
});
