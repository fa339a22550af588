/** Publishing through the real client: confirms, returns, nacks, transactions, exchange types. */
import { lastValueFrom } from 'rxjs';
import type { Channel, Confirmation, Connection, ReturnedMessage } from '../../../src/index.js';
import { FrameDecoder } from '../../../src/protocol/index.js';
import { connectTo, EmbeddedBroker, settle, text } from './helpers.js';

let broker: EmbeddedBroker;
let conn: Connection;
let ch: Channel;

beforeEach(async () => {
  broker = new EmbeddedBroker();
  conn = await connectTo(broker);
  ch = await conn.openChannel();
});
afterEach(async () => {
  if (conn.isOpen) await lastValueFrom(conn.close());
});

const bodies = (queue: string): string[] => broker.queue(queue)!.messages.map((m) => text(m.body));

describe('publisher confirms', () => {
  it('acks every publish, in order', async () => {
    await lastValueFrom(ch.queueDeclare('q'));
    await lastValueFrom(ch.confirmSelect());
    const outcomes = await Promise.all([1, 2, 3].map((i) => lastValueFrom(ch.publish('', 'q', `m${i}`))));
    expect(outcomes).toEqual([
      { status: 'acked', seq: 1 },
      { status: 'acked', seq: 2 },
      { status: 'acked', seq: 3 },
    ]);
    expect(bodies('q')).toEqual(['m1', 'm2', 'm3']);
  });

  it('acks a batch with one multiple ack, and a lone publish without multiple', async () => {
    // Watch the frames the broker sends.
    const frames: string[] = [];
    const decoder = new FrameDecoder({
      onMethod: (_c, m) => {
        if (m.name === 'basic.ack') frames.push(`ack ${m.deliveryTag}${m.multiple ? ' multiple' : ''}`);
      },
      onContent: () => {},
      onHeartbeat: () => {},
    });
    decoder.frameMax = 0;
    let started = false;
    const tap = new EmbeddedBroker();
    const spy: typeof tap.connector = async (target, handler, signal) =>
      tap.connector(
        target,
        {
          onData: (chunk) => {
            if (started) decoder.push(chunk);
            handler.onData(chunk);
          },
          onDrain: () => handler.onDrain(),
          onClose: (error) => handler.onClose(error),
        },
        signal,
      );
    const c = await connectTo(tap, undefined, { transport: spy });
    const cch = await c.openChannel();
    await lastValueFrom(cch.queueDeclare('q'));
    await lastValueFrom(cch.confirmSelect());
    started = true;
    await Promise.all([1, 2, 3].map((i) => lastValueFrom(cch.publish('', 'q', `m${i}`))));
    await lastValueFrom(cch.publish('', 'q', 'alone'));
    expect(frames).toEqual(['ack 3 multiple', 'ack 4']);
    await lastValueFrom(c.close());
  });

  it('returns an unroutable mandatory message (312 NO_ROUTE) before acking it', async () => {
    await lastValueFrom(ch.confirmSelect());
    const returned: ReturnedMessage[] = [];
    ch.returns$.subscribe((r) => returned.push(r));
    const outcome = await lastValueFrom(ch.publish('amq.direct', 'nobody', 'lost', {}, { mandatory: true }));
    expect(outcome.status).toBe('returned');
    expect(returned).toHaveLength(1);
    expect(returned[0]).toMatchObject({
      replyCode: 312,
      replyText: 'NO_ROUTE',
      exchange: 'amq.direct',
      routingKey: 'nobody',
    });
    expect(text(returned[0]!.body)).toBe('lost');
    // Not mandatory: silently dropped, acked.
    expect(await lastValueFrom(ch.publish('amq.direct', 'nobody', 'dropped'))).toMatchObject({
      status: 'acked',
    });
  });

  it('nacks the next N publishes, or those a rule picks, on request', async () => {
    await lastValueFrom(ch.queueDeclare('q'));
    await lastValueFrom(ch.confirmSelect());
    broker.nackPublishes(1);
    const stop = broker.nackPublishes((p) => p.routingKey === 'q' && text(p.body) === 'bad');
    const confirmations: Confirmation[] = [];
    ch.confirms$.subscribe((c) => confirmations.push(c));
    const outcomes = await Promise.all(
      ['first', 'good', 'bad', 'good2'].map((b) => lastValueFrom(ch.publish('', 'q', b))),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['nacked', 'acked', 'nacked', 'acked']);
    expect(bodies('q')).toEqual(['good', 'good2']);
    stop();
    expect(await lastValueFrom(ch.publish('', 'q', 'bad'))).toMatchObject({ status: 'acked' });
    expect(confirmations.map((c) => c.status)).toEqual(['nacked', 'acked', 'nacked', 'acked', 'acked']);
  });

  it('nacks what x-overflow reject-publish refuses', async () => {
    await lastValueFrom(
      ch.queueDeclare('small', { arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } }),
    );
    await lastValueFrom(ch.confirmSelect());
    const outcomes = await Promise.all(['a', 'b'].map((b) => lastValueFrom(ch.publish('', 'small', b))));
    expect(outcomes.map((o) => o.status)).toEqual(['acked', 'nacked']);
  });
});

describe('transactions', () => {
  it('holds publishes and acks until commit, and drops them on rollback', async () => {
    await lastValueFrom(ch.queueDeclare('q'));
    broker.publish('', 'q', 'old');
    await lastValueFrom(ch.txSelect());
    const d = await lastValueFrom(ch.get('q'));
    d.ack();
    await lastValueFrom(ch.publish('', 'q', 'new'));
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    expect(broker.queue('q')).toMatchObject({ messageCount: 0, unackedCount: 1 });
    await lastValueFrom(ch.txCommit());
    expect(broker.queue('q')).toMatchObject({ messageCount: 1, unackedCount: 0 });
    expect(bodies('q')).toEqual(['new']);

    const d2 = await lastValueFrom(ch.get('q'));
    d2.ack();
    await lastValueFrom(ch.publish('', 'q', 'rolled back'));
    await lastValueFrom(ch.txRollback());
    expect(broker.queue('q')).toMatchObject({ messageCount: 0, unackedCount: 1 });
    // The ack rolled back: the delivery is unacked again, and can be acked in the next transaction.
    ch.ack(d2.fields.deliveryTag);
    await lastValueFrom(ch.txCommit());
    expect(broker.queue('q')).toMatchObject({ messageCount: 0, unackedCount: 0 });
  });
});

describe('exchanges', () => {
  it('routes by topic pattern', async () => {
    await lastValueFrom(ch.queueDeclare('usd'));
    await lastValueFrom(ch.queueDeclare('all'));
    await lastValueFrom(ch.queueBind('usd', 'amq.topic', 'stock.usd.*'));
    await lastValueFrom(ch.queueBind('all', 'amq.topic', 'stock.#'));
    for (const k of ['stock.usd.nyse', 'stock.eur.xetra', 'stock', 'bond.usd'])
      broker.publish('amq.topic', k, k);
    expect(bodies('usd')).toEqual(['stock.usd.nyse']);
    expect(bodies('all')).toEqual(['stock.usd.nyse', 'stock.eur.xetra', 'stock']);
  });

  it('routes by headers with x-match any and all', async () => {
    await lastValueFrom(ch.queueDeclare('any'));
    await lastValueFrom(ch.queueDeclare('all'));
    await lastValueFrom(
      ch.queueBind('any', 'amq.match', '', { arguments: { 'x-match': 'any', color: 'red', size: 'L' } }),
    );
    await lastValueFrom(ch.queueBind('all', 'amq.headers', '', { arguments: { color: 'red', size: 'L' } }));
    await lastValueFrom(ch.publish('amq.match', '', 'red-S', { headers: { color: 'red', size: 'S' } }));
    await lastValueFrom(ch.publish('amq.headers', '', 'red-L', { headers: { color: 'red', size: 'L' } }));
    await lastValueFrom(ch.publish('amq.match', '', 'blue-M', { headers: { color: 'blue', size: 'M' } }));
    await lastValueFrom(ch.queueDeclare('any', { passive: true }));
    expect(bodies('any')).toEqual(['red-S']);
    expect(bodies('all')).toEqual(['red-L']);
  });

  it('routes through exchange-to-exchange bindings, and unbinds', async () => {
    await lastValueFrom(ch.exchangeDeclare('front', 'fanout'));
    await lastValueFrom(ch.exchangeDeclare('back', 'direct'));
    await lastValueFrom(ch.exchangeBind('back', 'front', ''));
    await lastValueFrom(ch.queueDeclare('q'));
    await lastValueFrom(ch.queueBind('q', 'back', 'k'));
    await lastValueFrom(ch.publish('front', 'k', 'via front'));
    await lastValueFrom(ch.publish('front', 'other', 'not for q'));
    await lastValueFrom(ch.exchangeUnbind('back', 'front', ''));
    await lastValueFrom(ch.publish('front', 'k', 'after unbind'));
    await lastValueFrom(ch.queueDeclare('q', { passive: true }));
    expect(bodies('q')).toEqual(['via front']);
    expect(broker.bindings()).toEqual([
      { source: 'back', destination: 'q', destinationType: 'queue', routingKey: 'k', arguments: {} },
    ]);
  });

  it('sends what nothing routes to the alternate exchange', async () => {
    await lastValueFrom(ch.exchangeDeclare('ae', 'fanout'));
    await lastValueFrom(ch.exchangeDeclare('main', 'direct', { arguments: { 'alternate-exchange': 'ae' } }));
    await lastValueFrom(ch.queueDeclare('unrouted'));
    await lastValueFrom(ch.queueBind('unrouted', 'ae', ''));
    await lastValueFrom(ch.confirmSelect());
    const outcome = await lastValueFrom(ch.publish('main', 'nobody', 'x', {}, { mandatory: true }));
    expect(outcome.status).toBe('acked');
    expect(broker.queue('unrouted')!.messages[0]).toMatchObject({ exchange: 'main', routingKey: 'nobody' });
  });

  it('deletes an auto-delete exchange when its last binding goes', async () => {
    await lastValueFrom(ch.exchangeDeclare('temp', 'fanout', { autoDelete: true }));
    await lastValueFrom(ch.queueDeclare('q'));
    await lastValueFrom(ch.queueBind('q', 'temp', ''));
    expect(broker.exchange('temp')).toMatchObject({ type: 'fanout', autoDelete: true });
    await lastValueFrom(ch.queueUnbind('q', 'temp', ''));
    expect(broker.exchange('temp')).toBeUndefined();
  });

  it('keeps durable flags for inspection', async () => {
    await lastValueFrom(ch.queueDeclare('d', { durable: true }));
    await lastValueFrom(ch.exchangeDeclare('dx', 'topic', { durable: true }));
    expect(broker.queue('d')).toMatchObject({
      durable: true,
      exclusive: false,
      autoDelete: false,
      type: 'classic',
    });
    expect(broker.exchange('dx')).toMatchObject({ durable: true, type: 'topic', internal: false });
  });

  it('routes CC and removes BCC', async () => {
    await lastValueFrom(ch.queueDeclare('a'));
    await lastValueFrom(ch.queueDeclare('b'));
    await lastValueFrom(ch.queueDeclare('c'));
    await lastValueFrom(ch.publish('', 'a', 'x', { headers: { CC: ['b'], BCC: ['c'] } }));
    await lastValueFrom(ch.queueDeclare('a', { passive: true }));
    await settle();
    expect(broker.queue('b')!.messageCount).toBe(1);
    expect(broker.queue('c')!.messages[0]!.properties.headers).toEqual({ CC: ['b'] });
  });
});
