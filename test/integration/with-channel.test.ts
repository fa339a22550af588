/**
 * withChannel scopes a connection and a channel to a piece of work: `lastValueFrom` over it returns
 * when the work ends, and both are closed then. (The same program written with switchMap over
 * connect() never completes: the connection Observable stays open while it is subscribed.)
 */
import { concat, filter, firstValueFrom, lastValueFrom, map, range, take, throwError, toArray } from 'rxjs';
import { ackOnSuccess, publishConfirmed } from '../../operators/index.js';
import { ChannelClosedError, type Connection, connect, withChannel } from '../../src/node.js';
import { brokerUrl } from '../support/broker.js';

let url: string;

beforeAll(async () => {
  url = await brokerUrl();
}, 180_000);

describe('withChannel (real broker)', () => {
  it('runs declare, 100 confirmed publishes and consuming with acks, then closes the channel and the connection', async () => {
    const connection$ = connect(url);
    let connection: Connection | undefined;
    const queue = `with-channel-${Date.now()}`;
    const bodies = await lastValueFrom(
      withChannel(connection$, (ch, conn) => {
        connection = conn;
        return concat(
          ch.queueDeclare(queue, { autoDelete: true }),
          ch.confirmSelect(),
          range(0, 100).pipe(
            map((i) => ({ exchange: '', routingKey: queue, body: `job ${i}` })),
            publishConfirmed(ch),
            filter(() => false),
          ),
          ch.consume(queue, { prefetch: 20 }).pipe(
            take(100),
            ackOnSuccess((d) => d.text()),
          ),
        ).pipe(
          filter((v): v is string => typeof v === 'string'),
          toArray(),
        );
      }),
    );
    expect(bodies).toEqual(Array.from({ length: 100 }, (_, i) => `job ${i}`));
    await firstValueFrom(connection$.state$.pipe(filter((s) => s.status === 'CLOSED')));
    expect(connection?.isOpen).toBe(false);
  });

  it('errors with the work and closes everything; a channel error ends the scope too', async () => {
    const connection$ = connect(url);
    await expect(
      lastValueFrom(withChannel(connection$, () => throwError(() => new Error('boom')))),
    ).rejects.toThrow('boom');
    await firstValueFrom(connection$.state$.pipe(filter((s) => s.status === 'CLOSED')));
    await expect(
      lastValueFrom(
        withChannel(connect(url), (ch) => ch.queueDeclare(`missing-${Date.now()}`, { passive: true })),
      ),
    ).rejects.toBeInstanceOf(ChannelClosedError);
  });
});
