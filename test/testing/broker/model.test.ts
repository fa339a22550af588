/** The model without the protocol: virtual host rules, routing, queues, expiry and dead-lettering. */
import { field, fieldTypesOf } from '../../../src/protocol/index.js';
import type { Entry } from '../../../src/testing/broker/message.js';
import { NameGenerator } from '../../../src/testing/broker/names.js';
import type { Queue, QueueConsumer } from '../../../src/testing/broker/queue.js';
import { VirtualHost } from '../../../src/testing/broker/vhost.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function vhost(clock = { now: 1_000_000 }): VirtualHost {
  return new VirtualHost('/', { now: () => clock.now, names: new NameGenerator(1) });
}

const owner = {};
function declare(v: VirtualHost, queue: string, args: Record<string, unknown> = {}, flags = {}): Queue {
  return v.declareQueue(
    {
      queue,
      passive: false,
      durable: false,
      exclusive: false,
      autoDelete: false,
      arguments: args as never,
      ...flags,
    },
    owner,
  );
}

function publish(v: VirtualHost, exchange: string, key: string, body = 'x', properties = {}): number {
  return v.publish(v.exchange(exchange), key, properties, bytes(body)).routed;
}

function bodies(q: Queue): string[] {
  return q.readyEntries().map((e) => text(e.content.body));
}

/** A consumer that takes up to `limit` messages and records them. */
function consumer(limit = Number.POSITIVE_INFINITY): QueueConsumer & { got: Entry[] } {
  const got: Entry[] = [];
  return {
    tag: 'c',
    exclusive: false,
    noAck: false,
    priority: 0,
    got,
    canTake: () => got.length < limit,
    deliver: (_q, e) => {
      got.push(e);
    },
  };
}

function fault(run: () => unknown): { replyCode: number; replyText: string } {
  try {
    run();
  } catch (e) {
    return e as { replyCode: number; replyText: string };
  }
  throw new Error('expected a fault');
}

describe('virtual host', () => {
  it('has the default exchange and the amq.* exchanges', () => {
    const v = vhost();
    expect([...v.exchanges.keys()]).toEqual([
      '',
      'amq.direct',
      'amq.fanout',
      'amq.topic',
      'amq.headers',
      'amq.match',
    ]);
  });

  it('refuses the amq. prefix and the default exchange with RabbitMQ texts', () => {
    const v = vhost();
    const d = { passive: false, durable: false, autoDelete: false, internal: false, arguments: {} };
    expect(fault(() => v.declareExchange({ exchange: 'amq.foo', type: 'direct', ...d }))).toMatchObject({
      replyCode: 403,
      replyText: "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'",
    });
    expect(fault(() => v.deleteExchange('amq.direct', false)).replyText).toBe(
      "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed",
    );
    expect(fault(() => v.deleteExchange('', false)).replyText).toBe(
      'ACCESS_REFUSED - operation not permitted on the default exchange',
    );
    expect(fault(() => declare(v, 'amq.q')).replyText).toBe(
      "ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'",
    );
    // An equivalent redeclare of a built-in exchange is fine.
    v.declareExchange({ exchange: 'amq.direct', type: 'direct', ...d, durable: true });
  });

  it('checks queue equivalence in RabbitMQ order with its texts', () => {
    const v = vhost();
    declare(v, 'q', { 'x-message-ttl': 1000 });
    expect(fault(() => declare(v, 'q', {}, { durable: true })).replyText).toBe(
      "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'",
    );
    expect(fault(() => declare(v, 'q', { 'x-message-ttl': 2000 })).replyText).toBe(
      "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received '2000' but current is '1000'",
    );
    expect(fault(() => declare(v, 'q', {})).replyText).toBe(
      "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received none but current is the value '1000' of type 'signedint'",
    );
    // Integers of another width are equivalent; other arguments are not compared.
    declare(v, 'q', { 'x-message-ttl': field.int64(1000), other: 'x' });
    expect(fault(() => declare(v, 'q', { 'x-message-ttl': 1000 }, { exclusive: true })).replyCode).toBe(405);
  });

  it('server-names queues amq.gen-… deterministically', () => {
    const a = declare(vhost(), '');
    const b = declare(vhost(), '');
    expect(a.name).toMatch(/^amq\.gen-[A-Za-z0-9_-]{22}$/);
    expect(b.name).toBe(a.name);
  });

  it('routes through direct, fanout, topic, headers and exchange-to-exchange bindings once per queue', () => {
    const v = vhost();
    const q1 = declare(v, 'q1');
    const q2 = declare(v, 'q2');
    v.bind(q1, 'amq.topic', 'a.*', {});
    v.bind(q1, 'amq.topic', '#', {});
    v.bind(q2, 'amq.fanout', '', {});
    v.bind(v.exchange('amq.fanout'), 'amq.topic', 'a.#', {});
    expect(publish(v, 'amq.topic', 'a.b')).toBe(2);
    expect(bodies(q1)).toEqual(['x']);
    expect(bodies(q2)).toEqual(['x']);
    expect(publish(v, '', 'q1')).toBe(1);
    expect(publish(v, '', 'nope')).toBe(0);
  });

  it('survives exchange-binding cycles', () => {
    const v = vhost();
    const d = { passive: false, durable: false, autoDelete: false, internal: false, arguments: {} };
    v.declareExchange({ exchange: 'e1', type: 'fanout', ...d });
    v.declareExchange({ exchange: 'e2', type: 'fanout', ...d });
    v.bind(v.exchange('e2'), 'e1', '', {});
    v.bind(v.exchange('e1'), 'e2', '', {});
    const q = declare(v, 'q');
    v.bind(q, 'e2', '', {});
    expect(publish(v, 'e1', '')).toBe(1);
  });

  it('uses the alternate exchange for what the main one cannot route', () => {
    const v = vhost();
    const d = { passive: false, durable: false, autoDelete: false, internal: false };
    v.declareExchange({ exchange: 'ae', type: 'fanout', ...d, arguments: {} });
    v.declareExchange({ exchange: 'main', type: 'direct', ...d, arguments: { 'alternate-exchange': 'ae' } });
    const q = declare(v, 'unrouted');
    v.bind(q, 'ae', '', {});
    expect(publish(v, 'main', 'nobody')).toBe(1);
    expect(q.readyEntries()[0]!.content.exchange).toBe('main');
  });

  it('deletes an auto-delete exchange with its last binding', () => {
    const v = vhost();
    v.declareExchange({
      exchange: 'ad',
      type: 'fanout',
      passive: false,
      durable: false,
      autoDelete: true,
      internal: false,
      arguments: {},
    });
    const q = declare(v, 'q');
    v.bind(q, 'ad', '', {});
    v.unbind(q, 'ad', '', {});
    expect(v.exchanges.has('ad')).toBe(false);
  });
});

describe('queue', () => {
  it('delivers round robin to the consumers that can take a message', () => {
    const v = vhost();
    const q = declare(v, 'q');
    const a = consumer();
    const b = consumer(1);
    q.addConsumer(a, 0);
    q.addConsumer(b, 0);
    for (const s of ['1', '2', '3', '4']) publish(v, '', 'q', s);
    expect(a.got.map((e) => text(e.content.body))).toEqual(['1', '3', '4']);
    expect(b.got.map((e) => text(e.content.body))).toEqual(['2']);
    expect(q.unacked).toBe(4);
  });

  it('requeues to the original position, marked redelivered', () => {
    const v = vhost();
    const q = declare(v, 'q');
    for (const s of ['1', '2', '3', '4']) publish(v, '', 'q', s);
    const e1 = q.take(0, false)!;
    const e2 = q.take(0, false)!;
    q.requeue([e2, e1], 0);
    expect(bodies(q)).toEqual(['1', '2', '3', '4']);
    expect(q.readyEntries().map((e) => e.redelivered)).toEqual([true, true, false, false]);
    const e3 = q.take(0, false)!;
    q.take(0, false);
    const e5 = q.take(0, false)!;
    q.requeue([e5, e3], 0);
    expect(bodies(q)).toEqual(['1', '3', '4']);
  });

  it('expires messages only at the head (per-message TTL), as RabbitMQ', () => {
    const clock = { now: 1_000_000 };
    const v = vhost(clock);
    const q = declare(v, 'q');
    publish(v, '', 'q', 'long', { expiration: '10000' });
    publish(v, '', 'q', 'short', { expiration: '10' });
    clock.now += 100;
    v.expire(clock.now);
    expect(bodies(q)).toEqual(['long', 'short']);
    q.take(clock.now, true);
    v.expire(clock.now);
    expect(q.messageCount).toBe(0);
  });

  it('drops the head past x-max-length, dead-lettering it with reason maxlen', () => {
    const v = vhost();
    const dlq = declare(v, 'dlq');
    const q = declare(v, 'q', {
      'x-max-length': 2,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'dlq',
    });
    for (const s of ['1', '2', '3']) publish(v, '', 'q', s);
    expect(bodies(q)).toEqual(['2', '3']);
    expect(bodies(dlq)).toEqual(['1']);
    const death = (
      dlq.readyEntries()[0]!.content.properties.headers!['x-death'] as Record<string, unknown>[]
    )[0]!;
    expect(Object.keys(death)).toEqual(['count', 'reason', 'queue', 'time', 'exchange', 'routing-keys']);
    expect(death).toMatchObject({ reason: 'maxlen', queue: 'q', exchange: '', 'routing-keys': ['q'] });
  });

  it('refuses publishes past the limit with reject-publish', () => {
    const v = vhost();
    const q = declare(v, 'q', { 'x-max-length-bytes': 3, 'x-overflow': 'reject-publish' });
    expect(v.publish(v.exchange(''), 'q', {}, bytes('ab')).rejected).toBe(false);
    expect(v.publish(v.exchange(''), 'q', {}, bytes('cd')).rejected).toBe(true);
    expect(bodies(q)).toEqual(['ab']);
  });

  it('counts the deaths of a message in one x-death entry per queue and reason', () => {
    const v = vhost();
    const q = declare(v, 'q', { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'q' });
    publish(v, '', 'q', 'm', { headers: { keep: 1 } });
    for (let i = 0; i < 3; i++) q.discard(q.take(0, false)!);
    const props = q.readyEntries()[0]!.content.properties;
    const deaths = props.headers!['x-death'] as Record<string, unknown>[];
    expect(deaths).toHaveLength(1);
    expect(deaths[0]!.count).toBe(3);
    expect(fieldTypesOf(deaths[0] as never)).toEqual({ count: 'l' });
    expect(props.headers!['x-first-death-reason']).toBe('rejected');
    expect(fieldTypesOf(props.headers!)).toEqual({});
  });

  it('keeps a priority queue in (priority, publish) order through publishes and requeues', () => {
    const v = vhost();
    const q = declare(v, 'q', { 'x-max-priority': 3 });
    const order = [
      ['a', 0],
      ['b', 2],
      ['c', 1],
      ['d', 2],
      ['e', 9],
      ['f', 0],
    ] as const;
    for (const [body, priority] of order) publish(v, '', 'q', body, { priority });
    expect(bodies(q)).toEqual(['e', 'b', 'd', 'c', 'a', 'f']); // 9 counts as the maximum, 3
    const c = consumer(4);
    q.addConsumer(c, 0);
    expect(c.got.map((e) => text(e.content.body))).toEqual(['e', 'b', 'd', 'c']);
    publish(v, '', 'q', 'g', { priority: 2 });
    q.removeConsumer(c, 0);
    // Requeued out of order and across levels: each goes back to its place.
    q.requeue([c.got[3]!, c.got[0]!, c.got[2]!], 0);
    expect(bodies(q)).toEqual(['e', 'd', 'g', 'c', 'a', 'f']);
    expect(q.messageCount).toBe(6);
    expect(q.readyBytes).toBe(6);
    expect(q.purge()).toBe(6);
    expect(bodies(q)).toEqual([]);
  });

  it('x-expires deletes an unused queue', () => {
    const clock = { now: 0 };
    const v = vhost(clock);
    declare(v, 'q', { 'x-expires': 1000 });
    clock.now = 999;
    v.expire(clock.now);
    expect(v.queues.has('q')).toBe(true);
    clock.now = 1000;
    v.expire(clock.now);
    expect(v.queues.has('q')).toBe(false);
  });

  it('validates arguments with RabbitMQ texts', () => {
    const v = vhost();
    expect(fault(() => declare(v, 'q', { 'x-message-ttl': -5 })).replyText).toBe(
      "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-5}",
    );
    expect(fault(() => declare(v, 'q', { 'x-overflow': 'foo' })).replyText).toBe(
      "PRECONDITION_FAILED - invalid arg 'x-overflow' for queue 'q' in vhost '/': invalid_overflow",
    );
    expect(fault(() => declare(v, 'q', { 'x-queue-type': 'foo' })).replyText).toBe(
      `PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'foo'"`,
    );
    expect(fault(() => declare(v, 'q', { 'x-delivery-limit': 2 })).replyText).toBe(
      "PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for queue 'q' in vhost '/' of queue type rabbit_classic_queue",
    );
    expect(fault(() => declare(v, 'q', { 'x-dead-letter-exchange': 5 })).replyText).toBe(
      "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'",
    );
    expect(fault(() => declare(v, 'q', { 'x-max-priority': 300 })).replyText).toBe(
      "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q' in vhost '/': {max_value_exceeded,300}",
    );
    expect(fault(() => declare(v, 'q', { 'x-single-active-consumer': 'yes' })).replyText).toBe(
      "PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue 'q' in vhost '/': {unacceptable_type,longstr}",
    );
    expect(fault(() => declare(v, 'q', { 'x-expires': 0 })).replyText).toBe(
      "PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}",
    );
    expect(fault(() => declare(v, 'q', { 'x-queue-type': 'quorum' })).replyText).toBe(
      "PRECONDITION_FAILED - invalid property 'non-durable' for queue 'q' in vhost '/'",
    );
  });
});
