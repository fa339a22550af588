import { EMPTY, firstValueFrom, map, merge, Observable, of, Subject, tap, throwError, toArray } from 'rxjs';
import { marbles } from 'rxjs-marbles/jest';
import { ackOnSuccess } from '../../operators/index.js';
import { ConfigurationError, type Delivery, type SettleableMessage } from '../../src/node.js';
import { marbleKit, settlement } from '../../src/testing/index.js';

const { ack, nack, reject } = settlement;
const dropped = { requeue: false };

describe('ackOnSuccess', () => {
  it(
    'acks each delivery after a synchronous handler and emits its result',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a-b-|', { a: 'a', b: 'b' });
      const { a, b } = source.deliveries;
      const settledWhenEmitted: boolean[] = [];
      const result = source.pipe(
        ackOnSuccess((d) => d.text().toUpperCase()),
        tap((value) => settledWhenEmitted.push(value === 'A' ? a.settled : b.settled)),
      );
      m.expect(result).toBeObservable('-x-y-|', { x: 'A', y: 'B' });
      m.expect(channel.settlements$).toBeObservable('-a-b', { a: ack(1), b: ack(2) });
      m.flush();
      expect(settledWhenEmitted).toEqual([true, true]);
    }),
  );

  it(
    'uses the first value of an Observable handler and unsubscribes from it',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const inner = m.cold('--rs|');
      m.expect(channel.cold('-a|', { a: 'm1' }).pipe(ackOnSuccess(() => inner))).toBeObservable('---(r|)');
      m.expect(inner).toHaveSubscriptions('-^-!');
      m.expect(channel.settlements$).toBeObservable('---a', { a: ack(1) });
    }),
  );

  it(
    'processes one delivery at a time by default, in order',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const slow = m.cold('---r|');
      const fast = m.cold('-s|');
      const source = channel.cold('-ab|', { a: 'slow', b: 'fast' });
      const result = source.pipe(ackOnSuccess((d) => (d.text() === 'slow' ? slow : fast)));
      m.expect(result).toBeObservable('----r(s|)');
      m.expect(slow).toHaveSubscriptions('-^--!');
      m.expect(fast).toHaveSubscriptions('----^!');
      m.expect(channel.settlements$).toBeObservable('----ab', { a: ack(1), b: ack(2) });
    }),
  );

  it(
    'runs up to `concurrency` handlers at once and emits results as they finish (mergeMap semantics)',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const slow = m.cold('-------r|');
      const fast = m.cold('-s|');
      const other = m.cold('t|');
      const source = channel.cold('-abc|', { a: 'slow', b: 'fast', c: 'other' });
      const handler = (d: Delivery) => (d.text() === 'slow' ? slow : d.text() === 'fast' ? fast : other);
      const result = source.pipe(ackOnSuccess(handler, { concurrency: 2 }));
      // c waits for a free slot: b's handler finishes at frame 3.
      m.expect(result).toBeObservable('---(st)-(r|)');
      m.expect(other).toHaveSubscriptions('---(^!)');
      m.expect(channel.settlements$).toBeObservable('---(bc)-a', { a: ack(1), b: ack(2), c: ack(3) });
    }),
  );

  it(
    "settles a failed delivery by 'retry' by default (basic.reject with requeue) and goes on with the next",
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const failures: [unknown, number][] = [];
      const boom = new Error('boom');
      const source = channel.cold('-a-b-c|', { a: 'throw', b: 'error', c: 'ok' });
      const result = source.pipe(
        ackOnSuccess(
          (d) => {
            if (d.text() === 'throw') throw boom;
            if (d.text() === 'error') return m.cold('-#', undefined, boom);
            return d.text();
          },
          { onFailure: (error, d) => failures.push([error, d.fields.deliveryTag]) },
        ),
      );
      m.expect(result).toBeObservable('-----x|', { x: 'ok' });
      m.expect(channel.settlements$).toBeObservable('-a--bc', {
        a: reject(1),
        b: reject(2),
        c: ack(3),
      });
      m.flush();
      expect(failures).toEqual([
        [boom, 1],
        [boom, 2],
      ]);
    }),
  );

  it(
    "settles by policy: 'requeue' nacks with requeue, 'dead-letter' rejects without",
    marbles((m) => {
      const kit = marbleKit(m);
      const [requeued, deadLettered] = [kit.channel(), kit.channel()];
      const fail = () => m.cold<string>('-#');
      const a = requeued.cold('-a|', { a: 'm1' });
      const b = deadLettered.cold('-b|', { b: 'm1' });
      m.expect(a.pipe(ackOnSuccess(fail, { onError: 'requeue' }))).toBeObservable('--|');
      m.expect(b.pipe(ackOnSuccess(fail, { onError: 'dead-letter' }))).toBeObservable('--|');
      m.expect(requeued.settlements$).toBeObservable('--a', { a: nack(1) });
      m.expect(deadLettered.settlements$).toBeObservable('--a', { a: reject(1, dropped) });
    }),
  );

  it(
    'rejects instead of requeueing a redelivered message with requeueRedelivered: false',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-ab|', { a: 'x', b: { body: 'x', redelivered: true } });
      const result = source.pipe(
        ackOnSuccess(
          () => {
            throw new Error('poison');
          },
          { onError: 'requeue', requeueRedelivered: false },
        ),
      );
      m.expect(result).toBeObservable('---|');
      m.expect(channel.settlements$).toBeObservable('-ab', { a: nack(1), b: reject(2, dropped) });
    }),
  );

  it(
    'errors the stream when onFailure throws',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const logError = new Error('logger down');
      const source = channel.cold('-ab|', { a: 'm1', b: 'm2' });
      const result = source.pipe(
        ackOnSuccess(() => throwError(() => new Error('boom')), {
          onFailure: () => {
            throw logError;
          },
        }),
      );
      m.expect(result).toBeObservable('-#', undefined, logError);
      m.flush();
      expect(channel.settlements).toEqual([reject(1)]);
    }),
  );

  it(
    'acks and emits nothing for a handler Observable that completes empty',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      m.expect(channel.cold('-a|', { a: 'm1' }).pipe(ackOnSuccess(() => EMPTY))).toBeObservable('--|');
      m.expect(channel.settlements$).toBeObservable('-a', { a: ack(1) });
    }),
  );

  it(
    'leaves running and waiting deliveries unsettled on unsubscription',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const inner = m.cold('-----r|');
      const source = channel.cold('-ab---|', { a: 'm1', b: 'm2' });
      m.expect(source.pipe(ackOnSuccess(() => inner)), '^--!').toBeObservable('----');
      m.expect(inner).toHaveSubscriptions('-^-!');
      m.flush();
      expect(channel.unsettledTags).toEqual([1, 2]);
    }),
  );

  it(
    'errors with the source error and leaves the running delivery unsettled',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const inner = m.cold('---r|');
      m.expect(channel.cold('-a-#', { a: 'm1' }).pipe(ackOnSuccess(() => inner))).toBeObservable('---#');
      m.flush();
      expect(channel.unsettledTags).toEqual([1]);
    }),
  );

  it(
    'does not settle twice a delivery the handler settled itself',
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const result = channel.cold('-a|', { a: 'm1' }).pipe(
        ackOnSuccess((d) => {
          d.nack({ requeue: false });
          return 'done';
        }),
      );
      m.expect(result).toBeObservable('-x|', { x: 'done' });
      m.flush();
      expect(channel.settlements).toEqual([nack(1, dropped)]);
    }),
  );

  it('waits for a Promise handler and settles by its outcome', async () => {
    const channel = marbleKit().channel();
    const deliveries = new Subject<Delivery>();
    const results = firstValueFrom(
      deliveries.pipe(
        ackOnSuccess(async (d) => {
          await Promise.resolve();
          if (d.text() === 'bad') throw new Error('rejected');
          return d.fields.deliveryTag * 10;
        }),
        toArray(),
      ),
    );
    for (const body of ['good', 'bad', 'good']) deliveries.next(channel.delivery(body));
    deliveries.complete();
    expect(await results).toEqual([10, 30]);
    expect(channel.settlements).toEqual([ack(1), reject(2), ack(3)]);
  });

  it('infers the result type from Promise and Observable handlers', async () => {
    const channel = marbleKit().channel();
    const fromPromise: number[] = await firstValueFrom(
      of(channel.delivery()).pipe(
        ackOnSuccess(async () => 1),
        toArray(),
      ),
    );
    const fromObservable: string[] = await firstValueFrom(
      of(channel.delivery()).pipe(
        ackOnSuccess(() => of(2).pipe(map(String))),
        toArray(),
      ),
    );
    expect([fromPromise, fromObservable]).toEqual([[1], ['2']]);
  });

  it('refuses a concurrency below 1', () => {
    expect(() => ackOnSuccess(() => 1, { concurrency: 0 })).toThrow(ConfigurationError);
    expect(() => ackOnSuccess(() => 1, { concurrency: 1.5 })).toThrow(ConfigurationError);
    expect(() => ackOnSuccess(() => 1, { concurrency: Infinity })).not.toThrow();
  });

  it(
    "'retry' is bounded: a redelivered message without a delivery count (classic queue) is rejected without requeue",
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const source = channel.cold('-a-b|', { a: 'first', b: { body: 'again', redelivered: true } });
      m.expect(source.pipe(ackOnSuccess(() => throwError(() => new Error('boom'))))).toBeObservable('----|');
      m.expect(channel.settlements$).toBeObservable('-a-b', { a: reject(1), b: reject(2, dropped) });
    }),
  );

  it(
    "'retry' reads x-delivery-count (quorum queues): requeues until the attempt that reaches maxDeliveries",
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const counted = (n: number) => ({
        body: 'poison',
        redelivered: true,
        properties: { headers: { 'x-delivery-count': n } },
      });
      const source = channel.cold('-abc|', { a: counted(1), b: counted(2), c: counted(3) });
      const result = source.pipe(
        ackOnSuccess(() => throwError(() => new Error('boom')), { maxDeliveries: 3 }),
      );
      m.expect(result).toBeObservable('----|');
      // Attempts 2 and 3 (x-delivery-count 1 and 2): the third is the last, so it is dead-lettered.
      m.expect(channel.settlements$).toBeObservable('-abc', {
        a: reject(1),
        b: reject(2, dropped),
        c: reject(3, dropped),
      });
    }),
  );

  it(
    "maps each failure policy to its AMQP method: 'requeue' basic.nack, 'reject' and 'dead-letter' basic.reject without requeue",
    marbles((m) => {
      const channel = marbleKit(m).channel();
      const fail = () => throwError(() => new Error('boom'));
      const requeue = channel.cold('-a|', { a: 'x' }).pipe(ackOnSuccess(fail, { onError: 'requeue' }));
      const rejected = channel.cold('--a|', { a: 'y' }).pipe(ackOnSuccess(fail, { onError: 'reject' }));
      const dead = channel.cold('---a|', { a: 'z' }).pipe(ackOnSuccess(fail, { onError: 'dead-letter' }));
      m.expect(requeue).toBeObservable('--|');
      m.expect(rejected).toBeObservable('---|');
      m.expect(dead).toBeObservable('----|');
      m.expect(channel.settlements$).toBeObservable('-abc', {
        a: nack(1),
        b: reject(2, dropped),
        c: reject(3, dropped),
      });
    }),
  );

  it('validates onError and maxDeliveries eagerly', () => {
    expect(() => ackOnSuccess(() => 1, { onError: 'drop' as never })).toThrow(ConfigurationError);
    expect(() => ackOnSuccess(() => 1, { maxDeliveries: 0 })).toThrow(ConfigurationError);
    expect(() => ackOnSuccess(() => 1, { maxDeliveries: 1.5 })).toThrow(ConfigurationError);
    expect(() => ackOnSuccess(() => 1, { maxDeliveries: Infinity })).not.toThrow();
  });
});

describe('ackOnSuccess when deliveries can no longer be settled (their channel closed)', () => {
  it(
    'lets go of the running handler and skips the waiting deliveries, settling nothing',
    marbles((m) => {
      const kit = marbleKit(m);
      const channel = kit.channel();
      const hung = m.cold('----------r|');
      const source = channel.cold('-ab------|', { a: 'a', b: 'b' });
      const handled: string[] = [];
      const result = source.pipe(
        ackOnSuccess((d) => {
          handled.push(d.text());
          return hung;
        }),
      );
      // A consumer timeout (or any close) of the channel at frame 4.
      kit.at(4, () => channel.fail(new Error('delivery acknowledgement on channel 1 timed out')));
      m.expect(result).toBeObservable('---------|');
      m.expect(hung).toHaveSubscriptions('-^--!');
      m.expect(channel.settlements$).toBeObservable('----#', undefined, expect.anything());
      m.flush();
      expect(handled).toEqual(['a']);
    }),
  );

  it(
    'goes on with deliveries of another channel (the one that replaced it)',
    marbles((m) => {
      const kit = marbleKit(m);
      const first = kit.channel();
      const second = kit.channel();
      const hung = m.cold('----------r|');
      const source = merge(first.cold('-a|', { a: 'a' }), second.cold('------b|', { b: 'b' }));
      const result = source.pipe(ackOnSuccess((d) => (d.text() === 'a' ? hung : of(d.text()))));
      kit.at(3, () => first.close().subscribe());
      m.expect(result).toBeObservable('------b|');
      m.expect(hung).toHaveSubscriptions('-^-!');
      m.expect(second.settlements$).toBeObservable('------a', { a: ack(1) });
    }),
  );

  it('asks a message double that can say so (watchSettlement) and ignores a late Promise result', async () => {
    let lose: (() => void) | undefined;
    let resolveLate: ((v: string) => void) | undefined;
    const acked: string[] = [];
    const message: SettleableMessage = {
      body: new TextEncoder().encode('x'),
      properties: {},
      fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'q' },
      settled: false,
      ack: () => {
        acked.push('x');
        return true;
      },
      nack: () => true,
      reject: () => true,
      markSettled: () => true,
      watchSettlement: (w) => {
        lose = () => w.settlementLost();
        return true;
      },
      unwatchSettlement: () => {
        lose = undefined;
      },
    };
    const results = firstValueFrom(
      of(message).pipe(
        ackOnSuccess(() => new Promise<string>((r) => (resolveLate = r))),
        toArray(),
      ),
    );
    await Promise.resolve();
    lose?.();
    expect(await results).toEqual([]);
    resolveLate?.('late');
    await Promise.resolve();
    expect(acked).toEqual([]);
  });
});

describe('ackOnSuccess with handlers and doubles that misbehave', () => {
  it('stops a handler Observable emitting synchronously at its first value', async () => {
    let emitted = 0;
    const endless = new Observable<number>((s) => {
      for (let i = 0; i < 1_000 && !s.closed; i++) {
        emitted++;
        s.next(i);
      }
    });
    const channel = marbleKit().channel();
    const results = await firstValueFrom(
      of(channel.delivery()).pipe(
        ackOnSuccess(() => endless),
        toArray(),
      ),
    );
    expect(results).toEqual([0]);
    expect(emitted).toBe(1);
    expect(channel.settlements).toEqual([ack(1)]);
  });

  it("errors the stream when a message double's ack or reject throws, for every kind of handler", async () => {
    const double = (fail: 'ack' | 'reject'): SettleableMessage => ({
      body: new Uint8Array(0),
      properties: {},
      fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'q' },
      settled: false,
      ack: () => {
        if (fail === 'ack') throw new Error('ack failed');
        return true;
      },
      nack: () => true,
      reject: () => {
        throw new Error('reject failed');
      },
      markSettled: () => true,
    });
    const handlers = [() => 'value', () => Promise.resolve('value'), () => of('value')];
    for (const handler of handlers) {
      await expect(firstValueFrom(of(double('ack')).pipe(ackOnSuccess(handler)))).rejects.toThrow(
        'ack failed',
      );
    }
    const failing = [
      () => {
        throw new Error('x');
      },
      () => Promise.reject(new Error('x')),
      () => throwError(() => new Error('x')),
    ];
    for (const handler of failing) {
      await expect(firstValueFrom(of(double('reject')).pipe(ackOnSuccess(handler)))).rejects.toThrow(
        'reject failed',
      );
    }
  });
});

describe('ackOnSuccess during a drain', () => {
  it('skips the deliveries a drain gives back (returnForDrain) and settles nothing for them', async () => {
    const handled: string[] = [];
    const acked: string[] = [];
    const message = (id: string, returned: boolean): SettleableMessage => ({
      body: new TextEncoder().encode(id),
      properties: {},
      fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'q' },
      settled: false,
      ack: () => {
        acked.push(id);
        return true;
      },
      nack: () => true,
      reject: () => true,
      markSettled: () => true,
      returnForDrain: () => returned,
    });
    const results = await firstValueFrom(
      of(message('a', false), message('b', true), message('c', false)).pipe(
        ackOnSuccess((d) => {
          const id = new TextDecoder().decode(d.body);
          handled.push(id);
          return id;
        }),
        toArray(),
      ),
    );
    expect(results).toEqual(['a', 'c']);
    expect(handled).toEqual(['a', 'c']);
    expect(acked).toEqual(['a', 'c']);
  });
});
