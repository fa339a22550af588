/**
 * Conformance: routing. The default exchange, direct, fanout, topic (`*`, `#`, a `#` that matches
 * zero words, empty words, the empty key) and headers (`x-match` all, any and their `-with-x`
 * forms, value types, void, `x-` arguments) exchanges, CC and BCC headers, bindings told apart by
 * their arguments, exchange-to-exchange bindings (chains, diamonds and cycles deliver one copy per
 * queue), and alternate exchanges. Each table case publishes every key to every binding and
 * compares which queue got what, as one table.
 *
 * @module
 */
import { lastValueFrom } from 'rxjs';
import { type Channel, type FieldTable, field } from '../../src/node.js';
import { backends } from './backends.js';
import { type BrokerScope, channelError, drain, errorOf, getOne, publish, useBroker } from './support.js';

/**
 * Binds one queue per binding to `exchange`, publishes each message in turn (confirmed), and returns
 * for each binding's label the bodies its queue received, in order.
 */
async function routeTable(
  broker: BrokerScope,
  ch: Channel,
  exchange: string,
  bindings: readonly { label: string; key?: string; arguments?: FieldTable }[],
  messages: readonly { body: string; key?: string; headers?: FieldTable }[],
): Promise<Record<string, string[]>> {
  const queues: string[] = [];
  for (const b of bindings) {
    const q = broker.queue('route');
    queues.push(q);
    await lastValueFrom(ch.queueDeclare(q));
    await lastValueFrom(
      ch.queueBind(q, exchange, b.key ?? '', b.arguments === undefined ? {} : { arguments: b.arguments }),
    );
  }
  for (const m of messages) {
    const outcome = await publish(
      ch,
      exchange,
      m.key ?? '',
      m.body,
      m.headers === undefined ? {} : { headers: m.headers },
    );
    expect(outcome.status).toBe('acked');
  }
  const table: Record<string, string[]> = {};
  for (const [i, b] of bindings.entries()) table[b.label] = await drain(ch, queues[i]!);
  return table;
}

describe.each(backends)('routing [$name]', (backend) => {
  const broker = useBroker(backend);

  it('routes through the default exchange by queue name, with exchange "" on the delivery', async () => {
    const ch = await broker.confirmChannel();
    const q = broker.queue('default');
    await lastValueFrom(ch.queueDeclare(q));
    expect(await publish(ch, '', q, 'to the queue')).toEqual({ status: 'acked', seq: 1 });
    // No queue of that name: dropped, and still acked.
    expect(await publish(ch, '', broker.name('nobody'), 'dropped')).toEqual({ status: 'acked', seq: 2 });
    const d = await getOne(ch, q, { noAck: true });
    expect(d?.fields).toEqual({
      deliveryTag: 1,
      redelivered: false,
      exchange: '',
      routingKey: q,
      messageCount: 0,
    });
    expect(d?.text()).toBe('to the queue');
  });

  it('routes a direct exchange by exact key, one copy per queue however many of its bindings match', async () => {
    const ch = await broker.confirmChannel();
    const x = broker.exchange('direct');
    await lastValueFrom(ch.exchangeDeclare(x, 'direct'));
    const table = await routeTable(
      broker,
      ch,
      x,
      [
        { label: 'red', key: 'red' },
        { label: 'red again', key: 'red' },
        { label: 'empty', key: '' },
        { label: 'Red', key: 'Red' },
      ],
      [
        { body: '1', key: 'red' },
        { body: '2', key: '' },
        { body: '3', key: 'Red' },
        { body: '4', key: 'red.x' },
      ],
    );
    expect(table).toEqual({ red: ['1'], 'red again': ['1'], empty: ['2'], Red: ['3'] });

    // A queue bound twice with the same key (and once with another) gets one copy.
    const q = broker.queue('twice');
    await lastValueFrom(ch.queueDeclare(q));
    await lastValueFrom(ch.queueBind(q, x, 'k'));
    await lastValueFrom(ch.queueBind(q, x, 'k'));
    await lastValueFrom(ch.queueBind(q, x, 'other'));
    await publish(ch, x, 'k', 'once');
    expect(await drain(ch, q)).toEqual(['once']);
  });

  it('routes a fanout exchange to every bound queue whatever the key', async () => {
    const ch = await broker.confirmChannel();
    const x = broker.exchange('fanout');
    await lastValueFrom(ch.exchangeDeclare(x, 'fanout'));
    const table = await routeTable(
      broker,
      ch,
      x,
      [
        { label: 'a', key: 'a' },
        { label: 'none', key: '' },
      ],
      [{ body: '1', key: 'a' }, { body: '2', key: 'zzz' }, { body: '3' }],
    );
    expect(table).toEqual({ a: ['1', '2', '3'], none: ['1', '2', '3'] });
  });

  it('matches topic patterns: * is exactly one word, # zero or more, empty words are words, "" is zero words', async () => {
    const ch = await broker.confirmChannel();
    const x = broker.exchange('topic');
    await lastValueFrom(ch.exchangeDeclare(x, 'topic'));
    const patterns = [
      '*',
      '#',
      'a.*',
      'a.#',
      '#.c',
      'a.*.c',
      'a.#.c',
      '*.*',
      '',
      'a..c',
      'a.*.#',
      '#.#',
      '*.#.*',
    ];
    const keys = ['', 'a', 'c', 'a.b', 'a.c', 'b.c', 'a.b.c', 'a..c', '.', 'a.', 'a.b.b.c'];
    const table = await routeTable(
      broker,
      ch,
      x,
      patterns.map((p) => ({ label: `pattern '${p}'`, key: p })),
      keys.map((k) => ({ body: `'${k}'`, key: k })),
    );
    expect(table).toEqual({
      "pattern '*'": ["'a'", "'c'"],
      "pattern '#'": keys.map((k) => `'${k}'`),
      "pattern 'a.*'": ["'a.b'", "'a.c'", "'a.'"],
      "pattern 'a.#'": ["'a'", "'a.b'", "'a.c'", "'a.b.c'", "'a..c'", "'a.'", "'a.b.b.c'"],
      "pattern '#.c'": ["'c'", "'a.c'", "'b.c'", "'a.b.c'", "'a..c'", "'a.b.b.c'"],
      "pattern 'a.*.c'": ["'a.b.c'", "'a..c'"],
      "pattern 'a.#.c'": ["'a.c'", "'a.b.c'", "'a..c'", "'a.b.b.c'"],
      "pattern '*.*'": ["'a.b'", "'a.c'", "'b.c'", "'.'", "'a.'"],
      "pattern ''": ["''"],
      "pattern 'a..c'": ["'a..c'"],
      "pattern 'a.*.#'": ["'a.b'", "'a.c'", "'a.b.c'", "'a..c'", "'a.'", "'a.b.b.c'"],
      "pattern '#.#'": keys.map((k) => `'${k}'`),
      "pattern '*.#.*'": ["'a.b'", "'a.c'", "'b.c'", "'a.b.c'", "'a..c'", "'.'", "'a.'", "'a.b.b.c'"],
    });
  });

  it('delivers one copy to a queue that several topic bindings match', async () => {
    const ch = await broker.confirmChannel();
    const x = broker.exchange('topic-multi');
    await lastValueFrom(ch.exchangeDeclare(x, 'topic'));
    const q = broker.queue('multi');
    await lastValueFrom(ch.queueDeclare(q));
    for (const key of ['#', 'a.*', 'a.b', '*.b']) await lastValueFrom(ch.queueBind(q, x, key));
    await publish(ch, x, 'a.b', 'one');
    expect(await drain(ch, q)).toEqual(['one']);
  });

  it('matches headers bindings with x-match all and any, by value and type class', async () => {
    const ch = await broker.confirmChannel();
    const x = broker.exchange('headers');
    await lastValueFrom(ch.exchangeDeclare(x, 'headers'));
    const table = await routeTable(
      broker,
      ch,
      x,
      [
        { label: 'all a=1 b=x', arguments: { 'x-match': 'all', a: 1, b: 'x' } },
        { label: 'any a=1 b=x', arguments: { 'x-match': 'any', a: 1, b: 'x' } },
        { label: 'default a=1', arguments: { a: 1 } },
        { label: 'all, nothing', arguments: { 'x-match': 'all' } },
        { label: 'any, nothing', arguments: { 'x-match': 'any' } },
        { label: 'no arguments' },
        { label: 'all a=void', arguments: { 'x-match': 'all', a: null } },
        { label: 'all a=1 x-extra', arguments: { 'x-match': 'all', a: 1, 'x-extra': 'not matched' } },
      ],
      [
        { body: 'a=1 b=x', headers: { a: 1, b: 'x' } },
        { body: 'a=1', headers: { a: 1 } },
        { body: 'b=x c=3', headers: { b: 'x', c: 3 } },
        { body: 'none' },
        { body: "a='1' b=x", headers: { a: '1', b: 'x' } },
        { body: 'a=1 b=y', headers: { a: 1, b: 'y' } },
        { body: 'a=void', headers: { a: null } },
        { body: 'a=int64 1', headers: { a: field.int64(1) } },
        { body: 'a=1.0 double', headers: { a: field.float64(1) } },
        { body: 'a=1 x-extra', headers: { a: 1, 'x-extra': 'other value' } },
      ],
    );
    const every = [
      'a=1 b=x',
      'a=1',
      'b=x c=3',
      'none',
      "a='1' b=x",
      'a=1 b=y',
      'a=void',
      'a=int64 1',
      'a=1.0 double',
      'a=1 x-extra',
    ];
    // RabbitMQ's rules, pinned here:
    // - x-match defaults to all; `all` over no header arguments matches every message (even one
    //   without headers), `any` over none matches no message;
    // - a void (null) binding value matches any value of the header: it only asks that it be present;
    // - numbers compare by value across types: int32 1, int64 1 and the double 1.0 all match 1, but
    //   the string '1' does not;
    // - binding arguments whose names start with x- take no part in the match.
    expect(table).toEqual({
      'all a=1 b=x': ['a=1 b=x'],
      'any a=1 b=x': [
        'a=1 b=x',
        'a=1',
        'b=x c=3',
        "a='1' b=x",
        'a=1 b=y',
        'a=int64 1',
        'a=1.0 double',
        'a=1 x-extra',
      ],
      'default a=1': ['a=1 b=x', 'a=1', 'a=1 b=y', 'a=int64 1', 'a=1.0 double', 'a=1 x-extra'],
      'all, nothing': every,
      'any, nothing': [],
      'no arguments': every,
      'all a=void': every.filter((m) => m.startsWith('a')),
      'all a=1 x-extra': ['a=1 b=x', 'a=1', 'a=1 b=y', 'a=int64 1', 'a=1.0 double', 'a=1 x-extra'],
    });
  });

  it('matches x- headers too with any-with-x and all-with-x, and refuses another x-match with 406', async () => {
    const ch = await broker.confirmChannel();
    const x = broker.exchange('headers-x');
    await lastValueFrom(ch.exchangeDeclare(x, 'headers'));
    const table = await routeTable(
      broker,
      ch,
      x,
      [
        { label: 'all', arguments: { 'x-match': 'all', 'x-tenant': 'acme' } },
        { label: 'all-with-x', arguments: { 'x-match': 'all-with-x', 'x-tenant': 'acme' } },
        { label: 'any-with-x', arguments: { 'x-match': 'any-with-x', 'x-tenant': 'acme', kind: 'k' } },
      ],
      [
        { body: 'acme', headers: { 'x-tenant': 'acme' } },
        { body: 'other', headers: { 'x-tenant': 'other' } },
        { body: 'kind', headers: { kind: 'k' } },
      ],
    );
    expect(table).toEqual({
      all: ['acme', 'other', 'kind'],
      'all-with-x': ['acme'],
      'any-with-x': ['acme', 'kind'],
    });
    const q = broker.queue('bad-x-match');
    await lastValueFrom(ch.queueDeclare(q));
    expect(await errorOf(ch.queueBind(q, x, '', { arguments: { 'x-match': 'some' } }))).toEqual(
      channelError(
        406,
        'PRECONDITION_FAILED - Invalid x-match field value <<"some">>; expected all, any, all-with-x, or any-with-x',
        50,
        20,
      ),
    );
  });

  it('routes to the CC and BCC keys too, and strips BCC from what is delivered', async () => {
    // Sender-selected distribution: the CC and BCC headers (arrays of strings) add routing keys; the
    // delivery keeps the published key, and BCC is removed before the message is stored.
    const ch = await broker.confirmChannel();
    const queues = [broker.queue('cc-main'), broker.queue('cc-copy'), broker.queue('cc-blind')];
    for (const [i, q] of queues.entries()) {
      await lastValueFrom(ch.queueDeclare(q));
      await lastValueFrom(ch.queueBind(q, 'amq.direct', `${q}-key-${i}`));
    }
    const [main, copy, blind] = queues as [string, string, string];
    await publish(ch, 'amq.direct', `${main}-key-0`, 'copied', {
      headers: { CC: [`${copy}-key-1`], BCC: [`${blind}-key-2`], other: 1 },
    });
    for (const q of queues) {
      const d = await getOne(ch, q, { noAck: true });
      expect([q, d?.text(), d?.fields.routingKey, d?.properties.headers]).toEqual([
        q,
        'copied',
        `${main}-key-0`,
        { CC: [`${copy}-key-1`], other: 1 },
      ]);
    }
  });

  it('removes a binding only with the arguments it was made with', async () => {
    // A binding is (exchange, queue, key, arguments): unbinding with other arguments finds no binding
    // (and is not an error), so the headers binding keeps routing.
    const ch = await broker.confirmChannel();
    const x = broker.exchange('unbind-args');
    await lastValueFrom(ch.exchangeDeclare(x, 'headers'));
    const q = broker.queue('unbind-args');
    await lastValueFrom(ch.queueDeclare(q));
    await lastValueFrom(ch.queueBind(q, x, '', { arguments: { 'x-match': 'any', a: 1 } }));
    await lastValueFrom(ch.queueUnbind(q, x, '', { arguments: { 'x-match': 'any', a: 2 } }));
    await publish(ch, x, '', 'still bound', { headers: { a: 1 } });
    expect(await drain(ch, q)).toEqual(['still bound']);
    await lastValueFrom(ch.queueUnbind(q, x, '', { arguments: { 'x-match': 'any', a: 1 } }));
    await publish(ch, x, '', 'unbound', { headers: { a: 1 } });
    expect(await drain(ch, q)).toEqual([]);
  });

  describe('exchange-to-exchange bindings', () => {
    it('routes through a chain, keeping the exchange and key the message was published with', async () => {
      const ch = await broker.confirmChannel();
      const src = broker.exchange('e2e-src');
      const dst = broker.exchange('e2e-dst');
      await lastValueFrom(ch.exchangeDeclare(src, 'direct'));
      await lastValueFrom(ch.exchangeDeclare(dst, 'topic'));
      await lastValueFrom(ch.exchangeBind(dst, src, 'k.1'));
      const q = broker.queue('e2e');
      await lastValueFrom(ch.queueDeclare(q));
      await lastValueFrom(ch.queueBind(q, dst, 'k.*'));
      await publish(ch, src, 'k.1', 'through');
      await publish(ch, src, 'k.2', 'not bound at the source');
      await publish(ch, dst, 'k.2', 'straight to the destination');
      const first = await getOne(ch, q, { noAck: true });
      expect([first?.text(), first?.fields.exchange, first?.fields.routingKey]).toEqual([
        'through',
        src,
        'k.1',
      ]);
      expect(await drain(ch, q)).toEqual(['straight to the destination']);
      await lastValueFrom(ch.exchangeUnbind(dst, src, 'k.1'));
      await publish(ch, src, 'k.1', 'after unbind');
      expect(await drain(ch, q)).toEqual([]);
    });

    it('delivers one copy per queue through a diamond, a cycle, and a direct binding beside an indirect one', async () => {
      const ch = await broker.confirmChannel();
      const [top, left, right] = [broker.exchange('top'), broker.exchange('left'), broker.exchange('right')];
      for (const x of [top, left, right]) await lastValueFrom(ch.exchangeDeclare(x, 'fanout'));
      await lastValueFrom(ch.exchangeBind(left, top));
      await lastValueFrom(ch.exchangeBind(right, top));
      // A cycle: right -> top -> right.
      await lastValueFrom(ch.exchangeBind(top, right));
      const q = broker.queue('diamond');
      await lastValueFrom(ch.queueDeclare(q));
      await lastValueFrom(ch.queueBind(q, left));
      await lastValueFrom(ch.queueBind(q, right));
      await lastValueFrom(ch.queueBind(q, top));
      expect((await publish(ch, top, '', 'once')).status).toBe('acked');
      expect((await publish(ch, right, '', 'also once')).status).toBe('acked');
      expect(await drain(ch, q)).toEqual(['once', 'also once']);
    });

    it('fails a binding to or from a missing exchange with 404', async () => {
      const ch = await broker.channel();
      const x = broker.exchange('e2e-present');
      const missing = broker.name('e2e-missing');
      await lastValueFrom(ch.exchangeDeclare(x, 'fanout'));
      const err = await errorOf(ch.exchangeBind(x, missing));
      expect(err).toEqual(
        channelError(404, `NOT_FOUND - no exchange '${missing}' in vhost '${broker.vhost}'`, 40, 30),
      );
      const ch2 = await broker.channel();
      const err2 = await errorOf(ch2.exchangeBind(missing, x));
      expect(err2).toEqual(
        channelError(404, `NOT_FOUND - no exchange '${missing}' in vhost '${broker.vhost}'`, 40, 30),
      );
    });
  });

  it('sends what no binding routes to the alternate exchange, and then it counts as routed for mandatory', async () => {
    const ch = await broker.confirmChannel();
    const ae = broker.exchange('ae');
    const x = broker.exchange('with-ae');
    await lastValueFrom(ch.exchangeDeclare(ae, 'fanout'));
    await lastValueFrom(ch.exchangeDeclare(x, 'direct', { arguments: { 'alternate-exchange': ae } }));
    const routed = broker.queue('routed');
    const alternate = broker.queue('alternate');
    await lastValueFrom(ch.queueDeclare(routed));
    await lastValueFrom(ch.queueDeclare(alternate));
    await lastValueFrom(ch.queueBind(routed, x, 'k'));
    await lastValueFrom(ch.queueBind(alternate, ae));
    expect((await publish(ch, x, 'k', 'bound', {}, { mandatory: true })).status).toBe('acked');
    expect((await publish(ch, x, 'other', 'unbound', {}, { mandatory: true })).status).toBe('acked');
    expect(await drain(ch, routed)).toEqual(['bound']);
    const d = await getOne(ch, alternate, { noAck: true });
    expect([d?.text(), d?.fields.exchange, d?.fields.routingKey]).toEqual(['unbound', x, 'other']);
  });
});
