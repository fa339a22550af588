/**
 * Zero loss across forced reconnects, against the real broker: 20,000 persistent messages published
 * with confirms through a republishing publisher to a durable queue, while a consumer with manual acks
 * runs on the same recovering connection, and `rabbitmqctl close_connection` force-closes that
 * connection 10 times during the run. Every message must be confirmed and consumed at least once;
 * duplicates (republished or redelivered messages) are counted and reported.
 */
import { randomUUID } from 'node:crypto';
import { lastValueFrom, Subject, switchMap } from 'rxjs';
import { publishConfirmed } from '../../operators/index.js';
import { type ConnectionState, connect, createPublisher, openConnection } from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';
import { closeConnectionsNamed, eventually } from '../support/rabbitmqctl.js';

const TOTAL = 20_000;
const CLOSES = 10;
const PER_EPOCH = TOTAL / CLOSES;

describe('zero loss across forced reconnects (real broker)', () => {
  it(`${TOTAL} confirmed persistent messages, ${CLOSES} forced closes: every one consumed at least once`, async () => {
    const url = await brokerUrl();
    const name = `rxamqp-test-zero-loss-${randomUUID().slice(0, 8)}`;
    const queue = `${name}-q`;
    const connection$ = connect(url, { name, recovery: { reconnect: { delays: [20, 50, 100, 200] } } });
    const states: ConnectionState[] = [];
    const stateSub = connection$.state$.subscribe((s) => states.push(s));

    // The consumer: manual acks, re-declared and re-consumed on every new connection.
    const seen = new Uint16Array(TOTAL);
    let deliveries = 0;
    let unique = 0;
    const consumerErrors: unknown[] = [];
    const consumer = connection$
      .pipe(
        switchMap((conn) => conn.channel()),
        switchMap((ch) =>
          ch
            .queueDeclare(queue, { durable: true })
            .pipe(switchMap(() => ch.consume(queue, { prefetch: 500 }))),
        ),
      )
      .subscribe({
        next: (d) => {
          const id = Number(d.body.toString());
          deliveries++;
          if (seen[id] === 0) unique++;
          seen[id] = (seen[id] ?? 0) + 1;
          d.ack();
        },
        error: (e) => consumerErrors.push(e),
      });

    // The publisher: confirms, republishing what a lost connection left unconfirmed.
    const publisher = createPublisher(connection$, { republish: true, bufferTimeout: 60_000 });
    const messages = new Subject<{
      exchange: string;
      routingKey: string;
      body: string;
      properties: { deliveryMode: 2 };
    }>();
    const outcomes: string[] = [];
    let publishError: unknown;
    let published = false;
    messages.pipe(publishConfirmed(publisher, { window: 200 })).subscribe({
      next: (r) => outcomes.push(r.outcome.status),
      error: (e) => (publishError = e),
      complete: () => (published = true),
    });

    const connectedCount = () => states.filter((s) => s.status === 'CONNECTED').length;
    try {
      expect(await eventually(() => connectedCount() === 1)).toBe(true);
      let next = 0;
      for (let epoch = 0; epoch < CLOSES; epoch++) {
        // Publish this epoch's share, paced (40 messages every 20 ms), while the connection is force-closed.
        const pacing = (async () => {
          const end = next + PER_EPOCH;
          while (next < end) {
            for (let i = 0; i < 40 && next < end; i++, next++) {
              messages.next({
                exchange: '',
                routingKey: queue,
                body: String(next),
                properties: { deliveryMode: 2 },
              });
            }
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        await new Promise((r) => setTimeout(r, 200));
        const before = connectedCount();
        await closeConnectionsNamed(name, `zero-loss test close ${epoch + 1}`);
        expect(await eventually(() => connectedCount() === before + 1, 20_000)).toBe(true);
        await pacing;
      }
      messages.complete();
      expect(await eventually(() => published || publishError !== undefined, 60_000)).toBe(true);
      expect(publishError).toBeUndefined();
      expect(outcomes).toHaveLength(TOTAL);
      expect(outcomes.every((s) => s === 'acked')).toBe(true);
      expect(await eventually(() => unique === TOTAL, 60_000)).toBe(true);
      expect(consumerErrors).toEqual([]);
      expect(states.filter((s) => s.status === 'RECONNECTING')).toHaveLength(CLOSES);
      // Reported, not asserted: at-least-once delivery may repeat messages.
      console.log(
        `zero loss: ${TOTAL} published, ${CLOSES} forced closes, ${publisher.republishedCount} republished, ` +
          `${deliveries} deliveries for ${unique} messages (${deliveries - unique} duplicates)`,
      );
    } finally {
      await lastValueFrom(publisher.close()).catch(() => undefined);
      consumer.unsubscribe();
      stateSub.unsubscribe();
      const conn = await openConnection(url);
      const ch = await conn.openChannel();
      await lastValueFrom(ch.queueDelete(queue)).catch(() => undefined);
      await lastValueFrom(conn.close());
    }
  }, 180_000);
});
