import {
  ERROR_HEADER,
  isTopicPattern,
  jsonEnvelope,
  plainEnvelope,
  topicMatches,
} from '../../../src/nestjs/transport/envelope.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | string): string => (typeof b === 'string' ? b : new TextDecoder().decode(b));

describe('topicMatches (AMQP topic semantics)', () => {
  it.each([
    ['orders.created', 'orders.created', true],
    ['orders.created', 'orders.updated', false],
    ['orders.*', 'orders.created', true],
    ['orders.*', 'orders', false],
    ['orders.*', 'orders.eu.created', false],
    ['orders.#', 'orders', true],
    ['orders.#', 'orders.created', true],
    ['orders.#', 'orders.eu.created', true],
    ['orders.#', 'order', false],
    ['#', 'anything.at.all', true],
    ['#', '', true],
    ['*', '', false], // '' has no words, as RabbitMQ's topic exchange splits it
    ['*', 'a.b', false],
    ['#.created', 'orders.eu.created', true],
    ['#.created', 'created', true],
    ['#.created', 'orders.created.late', false],
    ['*.*.created', 'orders.eu.created', true],
    ['a.#.b.#.c', 'a.b.c', true],
    ['a.#.b.#.c', 'a.x.b.y.z.c', true],
    ['a.#.b.#.c', 'a.x.y.c', false],
    ['a.*.#', 'a', false],
    ['a.*.#', 'a.b', true],
    ['a.#.#', 'a', true],
    ['orders*', 'orders1', false],
    ['or#', 'or.x', false],
  ])('%s vs %s → %s', (pattern, key, expected) => {
    expect(topicMatches(pattern, key)).toBe(expected);
  });

  it('tells wildcard patterns apart', () => {
    expect(isTopicPattern('orders.*')).toBe(true);
    expect(isTopicPattern('#')).toBe(true);
    expect(isTopicPattern('orders.created')).toBe(false);
    expect(isTopicPattern('{"cmd":"sum*"}')).toBe(false);
  });

  it('is not exponential on many #', () => {
    const pattern = `${Array.from({ length: 30 }, () => '#').join('.')}.z`;
    const key = Array.from({ length: 200 }, () => 'a').join('.');
    const started = Date.now();
    expect(topicMatches(pattern, key)).toBe(false);
    expect(Date.now() - started).toBeLessThan(200);
  });
});

describe('jsonEnvelope (the default)', () => {
  const envelope = jsonEnvelope();

  it('decodes Nest packets: requests with id, events without', async () => {
    const request = await envelope.decode({
      body: enc(JSON.stringify({ pattern: 'sum', data: [1, 2], id: 'abc' })),
      properties: { replyTo: 'amq.rabbitmq.reply-to.x', correlationId: 'abc' },
      routingKey: 'q',
      exchange: '',
    });
    expect(request).toEqual({ pattern: 'sum', data: [1, 2], id: 'abc', metadata: undefined });
    const event = await envelope.decode({
      body: enc(JSON.stringify({ pattern: { cmd: 'x' }, data: 1, metadata: { trace: 't' } })),
      properties: {},
      routingKey: 'q',
      exchange: '',
    });
    expect(event).toEqual({ pattern: { cmd: 'x' }, data: 1, id: undefined, metadata: { trace: 't' } });
  });

  it('takes a plain body as data with the routing key as pattern', async () => {
    const event = await envelope.decode({
      body: enc('{"n":1}'),
      properties: {},
      routingKey: 'orders.created',
      exchange: 'shop',
    });
    expect(event).toEqual({ pattern: 'orders.created', data: { n: 1 }, id: undefined });
    const notJson = await envelope.decode({
      body: enc('hello'),
      properties: {},
      routingKey: 'greet',
      exchange: '',
    });
    expect(notJson.data).toBe('hello');
    const request = await envelope.decode({
      body: enc('[1,2]'),
      properties: { replyTo: 'r', correlationId: 'c1' },
      routingKey: 'sum',
      exchange: '',
    });
    expect(request.id).toBe('c1');
  });

  it('encodes requests and replies as Nest JSON, and reads replies', async () => {
    const out = await envelope.encode({ pattern: 'sum', data: [1], id: 'i', routingKey: 'sum' });
    expect(JSON.parse(text(out.body))).toEqual({ pattern: 'sum', data: [1], id: 'i' });
    expect(out.properties?.contentType).toBe('application/json');
    const reply = await envelope.encodeReply({ id: 'i', response: 3, isDisposed: true });
    expect(JSON.parse(text(reply!.body))).toEqual({ id: 'i', response: 3, isDisposed: true });
    const back = await envelope.decodeReply({
      body: enc(text(reply!.body)),
      properties: {},
      routingKey: 'x',
      exchange: '',
    });
    expect(back).toEqual({ id: 'i', response: 3, isDisposed: true });
    const foreign = await envelope.decodeReply({
      body: enc('{"total":3}'),
      properties: {},
      routingKey: 'x',
      exchange: '',
    });
    expect(foreign).toEqual({ response: { total: 3 }, isDisposed: true });
  });

  it('uses Nest serializers and deserializers, with the record options as properties', async () => {
    const custom = jsonEnvelope({
      serializer: { serialize: (p: object) => ({ ...p, options: { priority: 3 } }) },
      deserializer: {
        deserialize: (v: unknown, o?: Record<string, unknown>) => ({ pattern: o?.routingKey, data: v }),
      },
    });
    const out = await custom.encode({ pattern: 'p', data: 1, routingKey: 'p' });
    expect(out.properties?.priority).toBe(3);
    expect(JSON.parse(text(out.body))).toEqual({ pattern: 'p', data: 1 });
    const decoded = await custom.decode({
      body: enc('{"pattern":"ignored","data":2}'),
      properties: {},
      routingKey: 'rk',
      exchange: '',
    });
    expect(decoded).toEqual({ pattern: 'rk', data: { pattern: 'ignored', data: 2 } });
  });
});

describe('plainEnvelope', () => {
  const envelope = plainEnvelope();

  it('never reads a pattern from the body', async () => {
    const p = await envelope.decode({
      body: enc('{"pattern":"x","data":1}'),
      properties: {},
      routingKey: 'rk',
      exchange: 'e',
    });
    expect(p).toEqual({ pattern: 'rk', data: { pattern: 'x', data: 1 }, id: undefined });
  });

  it('replies with the bare response, errors marked by a header, nothing for a bare end', async () => {
    const ok = await envelope.encodeReply({ id: 'i', response: { a: 1 }, isDisposed: true });
    expect(text(ok!.body)).toBe('{"a":1}');
    const err = await envelope.encodeReply({ id: 'i', err: { message: 'no' }, isDisposed: true });
    expect(err!.properties?.headers?.[ERROR_HEADER]).toBe(true);
    expect(await envelope.encodeReply({ id: 'i', isDisposed: true })).toBeUndefined();
    const back = await envelope.decodeReply({
      body: enc('{"message":"no"}'),
      properties: err!.properties!,
      routingKey: '',
      exchange: '',
    });
    expect(back).toEqual({ err: { message: 'no' }, isDisposed: true });
  });

  it('encodes the data alone', async () => {
    const out = await envelope.encode({ pattern: 'p', data: { n: 1 }, id: 'i', routingKey: 'p' });
    expect(text(out.body)).toBe('{"n":1}');
  });
});
