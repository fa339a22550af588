/**
 * The topology API without a broker: spec → AMQP argument mapping, validation, the declaration order,
 * and applyTopology / consumeSpec driven against a scripted fake connection (force, passive, errors,
 * channels closed in every case).
 */
import fc from 'fast-check';
import { firstValueFrom, lastValueFrom, Observable, of, toArray } from 'rxjs';
import type { Channel } from '../../src/client/channel.js';
import type { Connection } from '../../src/client/connection.js';
import type { Delivery } from '../../src/client/delivery.js';
import type { ConsumeOptions } from '../../src/client/types.js';
import { ChannelClosedError, ConfigurationError } from '../../src/errors.js';
import { type FieldTable, TypedField } from '../../src/protocol/field-table.js';
import {
  type AppliedTopology,
  applyTopology,
  type BindSpec,
  binding,
  type ConsumerSpec,
  consumer,
  consumeSpec,
  defineTopology,
  describeStep,
  type ExchangeBindSpec,
  type ExchangeSpec,
  exchange,
  exchangeArguments,
  planTopology,
  type QueueSpec,
  queue,
  queueArguments,
  type Topology,
  toConsumeOptions,
  toExchangeDeclare,
  toQueueDeclare,
  validateTopology,
} from '../../src/topology/index.js';

function configError(run: () => unknown): ConfigurationError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    expect((e as ConfigurationError).code).toBe('INVALID_CONFIGURATION');
    return e as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

// ---- mapping ------------------------------------------------------------------------------------

describe('exchange specs → exchange.declare', () => {
  it('defaults to a non-durable direct exchange without arguments', () => {
    expect(toExchangeDeclare(exchange({ name: 'x' }))).toEqual({
      exchange: 'x',
      type: 'direct',
      options: { durable: false, autoDelete: false, internal: false, arguments: {} },
    });
  });

  it('passes the type and the flags', () => {
    for (const type of ['direct', 'fanout', 'topic', 'headers', 'x-consistent-hash']) {
      const declared = toExchangeDeclare(
        exchange({ name: 'x', type, durable: true, autoDelete: true, internal: true }),
      );
      expect(declared.type).toBe(type);
      expect(declared.options).toEqual({ durable: true, autoDelete: true, internal: true, arguments: {} });
    }
  });

  it('maps alternateExchange to alternate-exchange, by name or by spec', () => {
    const unrouted = exchange({ name: 'unrouted', type: 'fanout' });
    expect(exchangeArguments(exchange({ name: 'a', alternateExchange: 'other' }))).toEqual({
      'alternate-exchange': 'other',
    });
    expect(exchangeArguments(exchange({ name: 'a', alternateExchange: unrouted }))).toEqual({
      'alternate-exchange': 'unrouted',
    });
  });

  it('makes a delayed exchange an x-delayed-message exchange with x-delayed-type', () => {
    const declared = toExchangeDeclare(
      exchange({ name: 'later', delayed: { type: 'topic' }, durable: true }),
    );
    expect(declared.type).toBe('x-delayed-message');
    expect(declared.options.arguments).toEqual({ 'x-delayed-type': 'topic' });
    // The type may be given too, as long as it is the delayed one.
    expect(
      toExchangeDeclare(exchange({ name: 'later', type: 'x-delayed-message', delayed: { type: 'direct' } })),
    ).toMatchObject({ type: 'x-delayed-message', options: { arguments: { 'x-delayed-type': 'direct' } } });
    // Or spelled with raw arguments.
    expect(
      toExchangeDeclare(
        exchange({ name: 'later', type: 'x-delayed-message', arguments: { 'x-delayed-type': 'fanout' } }),
      ).options.arguments,
    ).toEqual({ 'x-delayed-type': 'fanout' });
  });

  it('merges raw arguments with the typed ones', () => {
    expect(
      exchangeArguments(
        exchange({
          name: 'h',
          type: 'x-consistent-hash',
          alternateExchange: 'ae',
          arguments: { 'hash-header': 'k' },
        }),
      ),
    ).toEqual({ 'alternate-exchange': 'ae', 'hash-header': 'k' });
  });
});

describe('queue specs → queue.declare', () => {
  it('defaults to a classic, non-durable queue without arguments', () => {
    expect(toQueueDeclare(queue({ name: 'q' }))).toEqual({
      queue: 'q',
      options: { durable: false, exclusive: false, autoDelete: false, arguments: {} },
    });
  });

  it("keeps '' for a server-named queue", () => {
    expect(toQueueDeclare(queue({ name: '', exclusive: true, autoDelete: true }))).toEqual({
      queue: '',
      options: { durable: false, exclusive: true, autoDelete: true, arguments: {} },
    });
  });

  it('maps every typed field to its argument', () => {
    const dlx = exchange({ name: 'dlx' });
    const cases: [Partial<QueueSpec>, FieldTable][] = [
      [{ type: 'classic' }, { 'x-queue-type': 'classic' }],
      [{ type: 'quorum' }, { 'x-queue-type': 'quorum' }],
      [{ type: 'stream' }, { 'x-queue-type': 'stream' }],
      [{ deadLetterExchange: 'dead' }, { 'x-dead-letter-exchange': 'dead' }],
      [{ deadLetterExchange: dlx }, { 'x-dead-letter-exchange': 'dlx' }],
      [{ deadLetterExchange: '' }, { 'x-dead-letter-exchange': '' }],
      [
        { deadLetterExchange: dlx, deadLetterRoutingKey: 'dead.q' },
        { 'x-dead-letter-exchange': 'dlx', 'x-dead-letter-routing-key': 'dead.q' },
      ],
      [{ messageTtl: 0 }, { 'x-message-ttl': 0 }],
      [{ messageTtl: 60_000 }, { 'x-message-ttl': 60000 }],
      [{ expires: 1_800_000 }, { 'x-expires': 1800000 }],
      [{ maxLength: 10 }, { 'x-max-length': 10 }],
      [{ maxLengthBytes: 5_000_000_000 }, { 'x-max-length-bytes': 5000000000 }],
      [{ overflow: 'drop-head' }, { 'x-overflow': 'drop-head' }],
      [{ overflow: 'reject-publish' }, { 'x-overflow': 'reject-publish' }],
      [{ overflow: 'reject-publish-dlx' }, { 'x-overflow': 'reject-publish-dlx' }],
      [{ singleActiveConsumer: true }, { 'x-single-active-consumer': true }],
      [{ singleActiveConsumer: false }, { 'x-single-active-consumer': false }],
      [{ maxPriority: 10 }, { 'x-max-priority': 10 }],
      [
        { type: 'quorum', deliveryLimit: 5 },
        { 'x-queue-type': 'quorum', 'x-delivery-limit': 5 },
      ],
      [
        { type: 'stream', maxAge: '7D' },
        { 'x-queue-type': 'stream', 'x-max-age': '7D' },
      ],
    ];
    for (const [fields, args] of cases) {
      expect(queueArguments(queue({ name: 'q', ...fields }))).toEqual(args);
    }
  });

  it('makes quorum queues and streams durable by default', () => {
    expect(toQueueDeclare(queue({ name: 'q', type: 'quorum' })).options.durable).toBe(true);
    expect(toQueueDeclare(queue({ name: 's', type: 'stream' })).options.durable).toBe(true);
    expect(toQueueDeclare(queue({ name: 'c', type: 'classic' })).options.durable).toBe(false);
    expect(toQueueDeclare(queue({ name: 'c', type: 'classic', durable: true })).options.durable).toBe(true);
  });

  it('merges raw arguments with the typed ones', () => {
    expect(
      queueArguments(queue({ name: 'q', messageTtl: 5, arguments: { 'x-queue-mode': 'lazy', custom: 1 } })),
    ).toEqual({ 'x-message-ttl': 5, 'x-queue-mode': 'lazy', custom: 1 });
  });

  it('maps any valid numeric setting exactly (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (ttl, expires, length, priority) => {
          const args = queueArguments(
            queue({
              name: 'q',
              messageTtl: ttl,
              expires,
              maxLength: length,
              maxLengthBytes: length,
              maxPriority: priority,
            }),
          );
          expect(args).toEqual({
            'x-message-ttl': ttl,
            'x-expires': expires,
            'x-max-length': length,
            'x-max-length-bytes': length,
            'x-max-priority': priority,
          });
        },
      ),
    );
  });
});

describe('consumer specs → consume options', () => {
  it('passes only what is given', () => {
    expect(toConsumeOptions(consumer({ queue: 'q' }))).toEqual({});
    expect(
      toConsumeOptions(
        consumer({ queue: 'q', prefetch: 10, noAck: true, exclusive: true, consumerTag: 'me' }),
      ),
    ).toEqual({ prefetch: 10, noAck: true, exclusive: true, consumerTag: 'me' });
  });

  it('maps priority to x-priority and streamOffset to x-stream-offset with the types RabbitMQ reads', () => {
    expect(toConsumeOptions(consumer({ queue: 'q', priority: -3 }))).toEqual({
      arguments: { 'x-priority': -3 },
    });
    const stream = queue({ name: 's', type: 'stream' });
    expect(
      toConsumeOptions(consumer({ queue: stream, prefetch: 5, streamOffset: 'first' })).arguments,
    ).toEqual({
      'x-stream-offset': 'first',
    });
    expect(toConsumeOptions(consumer({ queue: stream, prefetch: 5, streamOffset: '1h' })).arguments).toEqual({
      'x-stream-offset': '1h',
    });
    const offset = toConsumeOptions(consumer({ queue: stream, prefetch: 5, streamOffset: 42 })).arguments?.[
      'x-stream-offset'
    ];
    expect(offset).toEqual(new TypedField('l', 42));
    const when = new Date('2024-01-02T03:04:05Z');
    const timestamp = toConsumeOptions(consumer({ queue: stream, prefetch: 5, streamOffset: when }))
      .arguments?.['x-stream-offset'];
    expect(timestamp).toEqual(new TypedField('T', when));
  });

  it('merges raw consumer arguments', () => {
    expect(
      toConsumeOptions(consumer({ queue: 'q', priority: 1, arguments: { 'x-cancel-on-ha-failover': true } })),
    ).toEqual({ arguments: { 'x-priority': 1, 'x-cancel-on-ha-failover': true } });
  });
});

// ---- validation ---------------------------------------------------------------------------------

describe('validation', () => {
  it('refuses invalid exchanges with a clear message', () => {
    const cases: [ExchangeSpec, RegExp][] = [
      [{ name: '' }, /default exchange/],
      [{ name: 'amq.mine' }, /reserved/],
      [{ name: 'x'.repeat(256) }, /longer than 255 bytes/],
      [{ name: 'x', type: '' }, /type must be a non-empty string/],
      [
        { name: 'x', type: 'direct', delayed: { type: 'direct' } },
        /'delayed' makes an exchange of type 'x-delayed-message'/,
      ],
      [{ name: 'x', type: 'x-delayed-message' }, /needs 'delayed: \{ type \}'/],
      [{ name: 'x', delayed: { type: '' } }, /delayed.type must be/],
      [{ name: 'x', delayed: { type: 'x-delayed-message' } }, /delayed.type must be/],
      [{ name: 'x', alternateExchange: 'x' }, /its own alternate exchange/],
      [
        { name: 'x', alternateExchange: 'ae', arguments: { 'alternate-exchange': 'other' } },
        /'alternate-exchange' is set both/,
      ],
      [
        { name: 'x', delayed: { type: 'topic' }, arguments: { 'x-delayed-type': 'direct' } },
        /'x-delayed-type' is set both/,
      ],
      [{ name: 'x', durable: 'yes' as unknown as boolean }, /durable must be a boolean/],
    ];
    for (const [spec, message] of cases) {
      const e = configError(() => exchange(spec));
      expect(e.message).toMatch(message);
      expect(e.message).toMatch(/^invalid /);
    }
  });

  it('refuses invalid queues with a clear message', () => {
    const cases: [QueueSpec, RegExp][] = [
      [{ name: 'amq.q' }, /reserved/],
      [{ name: 'q', type: 'lazy' as 'classic' }, /'classic', 'quorum' or 'stream'/],
      [{ name: 'q', type: 'quorum', exclusive: true }, /queue 'q': a quorum queue cannot be exclusive/],
      [{ name: 'q', type: 'quorum', autoDelete: true }, /a quorum queue cannot be auto-delete/],
      [{ name: 'q', type: 'quorum', durable: false }, /a quorum queue is always durable/],
      [{ name: 'q', type: 'quorum', maxPriority: 5 }, /maxPriority is for classic queues/],
      [{ name: '', type: 'quorum' }, /cannot be server-named/],
      [
        { name: 'q', type: 'quorum', overflow: 'reject-publish-dlx' },
        /does not support overflow 'reject-publish-dlx'/,
      ],
      [{ name: 's', type: 'stream', durable: false }, /a stream queue is always durable/],
      [{ name: 's', type: 'stream', exclusive: true }, /a stream queue cannot be exclusive/],
      [{ name: 's', type: 'stream', messageTtl: 5 }, /a stream does not support messageTtl/],
      [
        { name: 's', type: 'stream', deadLetterExchange: 'd' },
        /a stream does not support deadLetterExchange/,
      ],
      [{ name: 's', type: 'stream', maxLength: 5 }, /a stream does not support maxLength/],
      [{ name: 'q', messageTtl: -1 }, /messageTtl must be an integer from 0 to 4294967295, not -1/],
      [{ name: 'q', messageTtl: 1.5 }, /messageTtl must be an integer/],
      [{ name: 'q', messageTtl: Number.NaN }, /messageTtl must be an integer/],
      [{ name: 'q', expires: 0 }, /expires must be an integer from 1/],
      [{ name: 'q', maxLength: -5 }, /maxLength must be an integer ≥ 0/],
      [{ name: 'q', maxLengthBytes: -1 }, /maxLengthBytes must be an integer ≥ 0/],
      [{ name: 'q', maxPriority: 0 }, /maxPriority must be an integer from 1 to 255/],
      [{ name: 'q', maxPriority: 256 }, /maxPriority must be an integer from 1 to 255/],
      [{ name: 'q', deliveryLimit: 3 }, /deliveryLimit is for quorum queues/],
      [{ name: 'q', type: 'quorum', deliveryLimit: -1 }, /deliveryLimit must be an integer ≥ 0/],
      [{ name: 'q', maxAge: '1D' }, /maxAge is for streams/],
      [{ name: 's', type: 'stream', maxAge: '7 days' }, /maxAge must be a number and a unit/],
      [{ name: 'q', overflow: 'drop-tail' as 'drop-head' }, /overflow must be/],
      [{ name: 'q', deadLetterRoutingKey: 'k' }, /deadLetterRoutingKey needs a deadLetterExchange/],
      [{ name: 'q', messageTtl: 5, arguments: { 'x-message-ttl': 6 } }, /'x-message-ttl' is set both/],
      [{ name: 'q', type: 'quorum', arguments: { 'x-queue-type': 'classic' } }, /'x-queue-type' is set both/],
    ];
    for (const [spec, message] of cases) {
      expect(configError(() => queue(spec)).message).toMatch(message);
    }
  });

  it('refuses invalid bindings', () => {
    const cases: [BindSpec, RegExp][] = [
      [{ exchange: '', queue: 'q' }, /default exchange \(''\), which cannot be bound/],
      [{ exchange: 'x', queue: '' }, /refer to a server-named queue by its spec/],
      [{ source: 'a', destination: '' }, /destination is the default exchange/],
      [{ exchange: 'x', queue: 'q', routingKey: 'k'.repeat(256) }, /routing key is longer than 255 bytes/],
      [{ exchange: 'x', queue: 'q', source: 'y' } as unknown as BindSpec, /give either/],
      [{ routingKey: 'k' } as unknown as BindSpec, /give either/],
      [{ exchange: 'x', queue: 'q', arguments: 'x-match' as unknown as FieldTable }, /field table/],
    ];
    for (const [spec, message] of cases) {
      expect(configError(() => binding(spec as ExchangeBindSpec)).message).toMatch(message);
    }
  });

  it('refuses invalid consumers', () => {
    const stream = queue({ name: 's', type: 'stream' });
    const cases: [ConsumerSpec, RegExp][] = [
      [{ queue: 'q', prefetch: -1 }, /prefetch must be an integer from 0 to 65535/],
      [{ queue: 'q', prefetch: 70_000 }, /prefetch must be an integer from 0 to 65535/],
      [{ queue: 'q', priority: 0.5 }, /priority must be an integer/],
      [{ queue: '' }, /server-named queue by its spec/],
      [{ queue: stream }, /a stream consumer needs a prefetch/],
      [{ queue: stream, prefetch: 10, noAck: true }, /must acknowledge/],
      [
        { queue: queue({ name: 'c', type: 'classic' }), streamOffset: 'first' },
        /streamOffset is for stream queues/,
      ],
      [{ queue: stream, prefetch: 1, streamOffset: -1 }, /streamOffset must be an integer ≥ 0/],
      [{ queue: stream, prefetch: 1, streamOffset: new Date(Number.NaN) }, /invalid Date/],
      [{ queue: 'q', priority: 1, arguments: { 'x-priority': 2 } }, /'x-priority' is set both/],
    ];
    for (const [spec, message] of cases) {
      expect(configError(() => consumer(spec)).message).toMatch(message);
    }
  });

  it('returns frozen copies from the factories', () => {
    const spec = { name: 'q', durable: true };
    const q = queue(spec);
    expect(q).toEqual(spec);
    expect(q).not.toBe(spec);
    expect(Object.isFrozen(q)).toBe(true);
    expect(Object.isFrozen(exchange({ name: 'x' }))).toBe(true);
    expect(Object.isFrozen(binding({ exchange: 'x', queue: 'q' }))).toBe(true);
    expect(Object.isFrozen(defineTopology({}))).toBe(true);
  });
});

describe('topology validation', () => {
  const x = exchange({ name: 'x', type: 'topic' });
  const q = queue({ name: 'q' });
  const anon = queue({ name: '', exclusive: true });

  it('accepts references by name to entities outside the topology, and by spec to its own', () => {
    expect(() =>
      validateTopology({
        exchanges: [x],
        queues: [q, anon],
        bindings: [
          binding({ exchange: 'amq.topic', queue: 'elsewhere' }),
          binding({ exchange: x, queue: anon, routingKey: 'a.#' }),
          binding({ source: 'amq.fanout', destination: x }),
        ],
        consumers: [consumer({ queue: anon }), consumer({ queue: 'elsewhere' })],
      }),
    ).not.toThrow();
  });

  it('refuses a spec object that is not part of the topology', () => {
    const stranger = exchange({ name: 'stranger' });
    const lonely = queue({ name: '', exclusive: true });
    const cases: [Topology, RegExp][] = [
      [
        { queues: [q], bindings: [binding({ exchange: stranger, queue: q })] },
        /exchange 'stranger', which is not one of the topology's exchanges/,
      ],
      [
        { exchanges: [x], bindings: [binding({ exchange: x, queue: lonely })] },
        /server-named queue, which is not one of the topology's queues \(add it\)/,
      ],
      [
        { exchanges: [x], bindings: [binding({ source: x, destination: stranger })] },
        /not one of the topology's exchanges/,
      ],
      [
        { exchanges: [exchange({ name: 'a', alternateExchange: stranger })] },
        /exchange 'a' refers to the spec of exchange 'stranger'/,
      ],
      [
        { queues: [queue({ name: 'd', deadLetterExchange: stranger })] },
        /queue 'd' refers to the spec of exchange 'stranger'/,
      ],
      [{ consumers: [consumer({ queue: lonely })] }, /a consumer of server-named queue refers to/],
    ];
    for (const [topology, message] of cases) {
      expect(configError(() => defineTopology(topology)).message).toMatch(message);
    }
  });

  it('refuses two different specs with one name, but not one spec listed twice', () => {
    expect(configError(() => validateTopology({ exchanges: [x, exchange({ name: 'x' })] })).message).toMatch(
      /two different specs for exchange 'x'/,
    );
    expect(configError(() => validateTopology({ queues: [q, queue({ name: 'q' })] })).message).toMatch(
      /two different specs for queue 'q'/,
    );
    expect(() =>
      validateTopology({ exchanges: [x, x], queues: [q, q, anon, queue({ name: '' })] }),
    ).not.toThrow();
  });

  it('validates plain objects as well as factory results', () => {
    expect(
      configError(() => validateTopology({ queues: [{ name: 'q', type: 'quorum', exclusive: true }] }))
        .message,
    ).toMatch(/cannot be exclusive/);
  });
});

// ---- ordering -----------------------------------------------------------------------------------

function describePlan(topology: Topology): string[] {
  return planTopology(topology).map(describeStep);
}

describe('planTopology', () => {
  it('declares exchanges, then queues, then exchange bindings, then queue bindings', () => {
    const a = exchange({ name: 'a' });
    const b = exchange({ name: 'b' });
    const q = queue({ name: 'q' });
    const topology: Topology = {
      bindings: [binding({ exchange: b, queue: q, routingKey: 'k' }), binding({ source: a, destination: b })],
      queues: [q],
      exchanges: [a, b],
    };
    expect(planTopology(topology).map((s) => s.kind)).toEqual([
      'exchange',
      'exchange',
      'queue',
      'exchange-binding',
      'queue-binding',
    ]);
    expect(describePlan(topology)).toEqual([
      "exchange 'a'",
      "exchange 'b'",
      "queue 'q'",
      "binding of exchange 'b' to exchange 'a' with key ''",
      "binding of queue 'q' to exchange 'b' with key 'k'",
    ]);
  });

  it('declares an alternate exchange before the exchanges that use it', () => {
    const ae = exchange({ name: 'ae', type: 'fanout' });
    const main = exchange({ name: 'main', alternateExchange: ae });
    const byName = exchange({ name: 'byname', alternateExchange: 'main' });
    expect(describePlan({ exchanges: [byName, main, ae] })).toEqual([
      "exchange 'ae'",
      "exchange 'main'",
      "exchange 'byname'",
    ]);
  });

  it('makes exchange bindings downstream first', () => {
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => exchange({ name }));
    const ab = binding({ source: a!, destination: b! });
    const bc = binding({ source: b!, destination: c! });
    const cd = binding({ source: c!, destination: d! });
    expect(planTopology({ exchanges: [a!, b!, c!, d!], bindings: [ab, bc, cd] }).map((s) => s.spec)).toEqual([
      a,
      b,
      c,
      d,
      cd,
      bc,
      ab,
    ]);
  });

  it('keeps a cycle of exchange bindings (RabbitMQ allows them) and every step once', () => {
    const ab = binding({ source: 'a', destination: 'b' });
    const ba = binding({ source: 'b', destination: 'a' });
    const steps = planTopology({ bindings: [ab, ba] });
    expect(steps).toHaveLength(2);
    expect(new Set(steps.map((s) => s.spec))).toEqual(new Set([ab, ba]));
  });

  it('declares a spec listed twice once', () => {
    const x = exchange({ name: 'x' });
    const q = queue({ name: '', exclusive: true });
    expect(planTopology({ exchanges: [x, x], queues: [q, q] })).toHaveLength(2);
  });

  it('orders any graph of exchanges and bindings so that dependencies come first (property)', () => {
    const graph = fc
      .record({
        n: fc.integer({ min: 1, max: 8 }),
        ae: fc.array(fc.nat(), { maxLength: 8 }),
        edges: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 12 }),
      })
      .map(({ n, ae, edges }) => {
        // Alternate exchanges only point backwards in a random permutation: no cycles among them.
        const exchanges: ExchangeSpec[] = [];
        for (let i = 0; i < n; i++) {
          const target = ae[i];
          exchanges.push(
            exchange(
              target !== undefined && i > 0 && target % (i + 1) < i
                ? { name: `e${i}`, alternateExchange: exchanges[target % (i + 1)]! }
                : { name: `e${i}` },
            ),
          );
        }
        exchanges.reverse();
        // Exchange bindings form a DAG: from a lower to a higher index.
        const bindings = edges
          .map(([s, d]) => [s % n, d % n] as const)
          .filter(([s, d]) => s < d)
          .map(([s, d]) => binding({ source: `e${s}`, destination: `e${d}` }));
        return { exchanges, bindings };
      });
    fc.assert(
      fc.property(graph, ({ exchanges, bindings }) => {
        const steps = planTopology({ exchanges, bindings });
        expect(steps).toHaveLength(exchanges.length + bindings.length);
        const position = new Map(steps.map((s, i) => [s.spec, i]));
        for (const e of exchanges) {
          if (e.alternateExchange !== undefined && typeof e.alternateExchange !== 'string') {
            expect(position.get(e.alternateExchange)!).toBeLessThan(position.get(e)!);
          }
        }
        for (const b of bindings) {
          // Every binding comes after every exchange, and after the bindings out of its destination.
          expect(position.get(b)!).toBeGreaterThanOrEqual(exchanges.length);
          for (const other of bindings) {
            if (other.source === b.destination) expect(position.get(other)!).toBeLessThan(position.get(b)!);
          }
        }
      }),
    );
  });
});

// ---- applyTopology against a scripted fake connection --------------------------------------------

interface Failure {
  readonly replyCode: number;
  readonly replyText: string;
}

/**
 * A fake connection whose channels log every method and answer on a microtask, failing the methods
 * `script` names like the broker does: the channel closes, `connection.channel()` errors, then the
 * method errors with the same ChannelClosedError.
 */
class FakeBroker {
  readonly log: string[] = [];
  readonly channels: FakeChannel[] = [];
  private serverNames = 0;
  /** A channel closed "by the connection" (a recovering connection completes it). */
  completeNextCallOf: string | undefined;

  constructor(private readonly script: (call: string) => Failure | undefined = () => undefined) {}

  get open(): number {
    return this.channels.filter((c) => c.isOpen).length;
  }

  readonly connection = {
    channel: (): Observable<Channel> =>
      new Observable<Channel>((subscriber) => {
        const ch = new FakeChannel(this, this.channels.length + 1, subscriber);
        this.channels.push(ch);
        this.log.push(`${ch.id} open`);
        let cancelled = false;
        queueMicrotask(() => {
          if (!cancelled) subscriber.next(ch as unknown as Channel);
        });
        return () => {
          cancelled = true;
          if (ch.isOpen) {
            ch.isOpen = false;
            this.log.push(`${ch.id} closed on unsubscribe`);
          }
        };
      }),
  } as unknown as Connection;

  answer(call: string): Failure | 'complete' | undefined {
    if (this.completeNextCallOf !== undefined && call.startsWith(this.completeNextCallOf)) {
      this.completeNextCallOf = undefined;
      return 'complete';
    }
    return this.script(call);
  }

  serverName(): string {
    return `amq.gen-${++this.serverNames}`;
  }
}

class FakeChannel {
  isOpen = true;
  error: ChannelClosedError | undefined;

  constructor(
    private readonly broker: FakeBroker,
    readonly id: number,
    private readonly subscriber: { error(e: unknown): void; complete(): void },
  ) {}

  private call<T>(call: string, value: () => T): Observable<T> {
    return new Observable<T>((subscriber) => {
      if (!this.isOpen) {
        subscriber.error(
          new ChannelClosedError('CHANNEL_CLOSED', `${call} on a closed channel`, {
            channel: this.id,
            initiator: 'client',
          }),
        );
        return;
      }
      this.broker.log.push(`${this.id} ${call}`);
      let cancelled = false;
      queueMicrotask(() => {
        if (cancelled || !this.isOpen) return;
        const answer = this.broker.answer(call);
        if (answer === 'complete') {
          const error = new ChannelClosedError('CONNECTION_CLOSED', 'connection lost', {
            channel: this.id,
            initiator: 'network',
          });
          this.isOpen = false;
          this.error = error;
          this.subscriber.complete();
          subscriber.error(error);
        } else if (answer !== undefined) {
          const error = ChannelClosedError.fromServer(this.id, { ...answer, classId: 0, methodId: 0 });
          this.isOpen = false;
          this.error = error;
          this.broker.log.push(`${this.id} closed by the broker: ${answer.replyCode}`);
          this.subscriber.error(error);
          subscriber.error(error);
        } else {
          subscriber.next(value());
          subscriber.complete();
        }
      });
      return () => {
        cancelled = true;
      };
    });
  }

  exchangeDeclare(name: string, type: string, options: object) {
    return this.call(`exchange.declare ${name} ${type} ${JSON.stringify(options)}`, () => undefined);
  }
  exchangeDelete(name: string) {
    return this.call(`exchange.delete ${name}`, () => undefined);
  }
  exchangeBind(destination: string, source: string, key: string, options: object) {
    return this.call(
      `exchange.bind ${destination} ${source} '${key}' ${JSON.stringify(options)}`,
      () => undefined,
    );
  }
  queueDeclare(name: string, options: { passive?: boolean }) {
    return this.call(`queue.declare ${name === '' ? "''" : name} ${JSON.stringify(options)}`, () => ({
      queue: name === '' ? this.broker.serverName() : name,
      messageCount: options.passive === true ? 7 : 0,
      consumerCount: 0,
    }));
  }
  queueDelete(name: string) {
    return this.call(`queue.delete ${name}`, () => ({ messageCount: 3 }));
  }
  queueBind(name: string, exchangeName: string, key: string, options: object) {
    return this.call(
      `queue.bind ${name} ${exchangeName} '${key}' ${JSON.stringify(options)}`,
      () => undefined,
    );
  }
  close() {
    return new Observable<void>((subscriber) => {
      this.broker.log.push(`${this.id} close`);
      queueMicrotask(() => {
        this.isOpen = false;
        this.subscriber.complete();
        subscriber.next();
        subscriber.complete();
      });
    });
  }
}

function errorOf(source: Observable<unknown>): Promise<unknown> {
  return lastValueFrom(source).then(
    () => {
      throw new Error('expected an error');
    },
    (e: unknown) => e,
  );
}

describe('applyTopology (fake broker)', () => {
  const logs = exchange({ name: 'logs', type: 'direct', durable: true });
  const jobs = queue({ name: 'jobs', durable: true, messageTtl: 1000 });
  const mine = queue({ name: '', exclusive: true });
  const t = defineTopology({
    exchanges: [logs],
    queues: [jobs, mine],
    bindings: [
      binding({ exchange: logs, queue: jobs, routingKey: 'job' }),
      binding({ exchange: logs, queue: mine, routingKey: 'all', arguments: { a: 1 } }),
    ],
  });

  it('declares everything in order on one channel, closes it, and emits one AppliedTopology', async () => {
    const broker = new FakeBroker();
    const emitted = await lastValueFrom(applyTopology(broker.connection, t).pipe(toArray()));
    expect(emitted).toHaveLength(1);
    expect(broker.log).toEqual([
      '1 open',
      '1 exchange.declare logs direct {"durable":true,"autoDelete":false,"internal":false,"arguments":{}}',
      '1 queue.declare jobs {"durable":true,"exclusive":false,"autoDelete":false,"arguments":{"x-message-ttl":1000}}',
      `1 queue.declare '' {"durable":false,"exclusive":true,"autoDelete":false,"arguments":{}}`,
      "1 queue.bind jobs logs 'job' {}",
      `1 queue.bind amq.gen-1 logs 'all' {"arguments":{"a":1}}`,
      '1 close',
    ]);
    expect(broker.open).toBe(0);
    const applied = emitted[0]!;
    expect(applied.queueName(jobs)).toBe('jobs');
    expect(applied.queueName(mine)).toBe('amq.gen-1');
    expect(applied.queueName('other')).toBe('other');
    expect(applied.queue('amq.gen-1')?.spec).toBe(mine);
    expect(applied.queues.map((q) => q.name)).toEqual(['jobs', 'amq.gen-1']);
    expect(applied.redeclared).toEqual([]);
    expect(applied.passive).toBe(false);
    expect(configError(() => applied.queueName(queue({ name: '' }))).message).toMatch(
      /not declared by this topology/,
    );
  });

  it('is cold: every subscription applies again, and a server-named queue gets a new name', async () => {
    const broker = new FakeBroker();
    const apply$ = applyTopology(broker.connection, t);
    const first = await firstValueFrom(apply$);
    const second = await firstValueFrom(apply$);
    expect(first.queueName(mine)).toBe('amq.gen-1');
    expect(second.queueName(mine)).toBe('amq.gen-2');
    expect(broker.channels).toHaveLength(2);
    expect(broker.open).toBe(0);
  });

  it('fails with the typed error on a mismatch, without force, and closes its channel', async () => {
    const broker = new FakeBroker((call) =>
      call.startsWith('queue.declare jobs')
        ? { replyCode: 406, replyText: 'PRECONDITION_FAILED - inequivalent arg' }
        : undefined,
    );
    const e = await errorOf(applyTopology(broker.connection, t));
    expect(e).toBeInstanceOf(ChannelClosedError);
    expect((e as ChannelClosedError).replyCode).toBe(406);
    expect(broker.log.at(-1)).toBe('1 closed by the broker: 406');
    expect(broker.open).toBe(0);
  });

  it('with force, deletes and re-declares on a fresh channel, then goes on', async () => {
    // The first declaration of each mismatches; after the delete, it succeeds.
    const mismatched = new Set(['queue.declare jobs', 'exchange.declare logs']);
    const broker = new FakeBroker((call) => {
      const entity = call.split(' ').slice(0, 2).join(' ');
      return mismatched.delete(entity)
        ? { replyCode: 406, replyText: 'PRECONDITION_FAILED - inequivalent arg' }
        : undefined;
    });
    const applied = await lastValueFrom(applyTopology(broker.connection, t, { force: true }));
    expect(broker.log.map((l) => l.replace(/ \{.*\}$/, ''))).toEqual([
      '1 open',
      '1 exchange.declare logs direct',
      '1 closed by the broker: 406',
      '2 open',
      '2 exchange.delete logs',
      '2 exchange.declare logs direct',
      '2 queue.declare jobs',
      '2 closed by the broker: 406',
      '3 open',
      '3 queue.delete jobs',
      '3 queue.declare jobs',
      "3 queue.declare ''",
      "3 queue.bind jobs logs 'job'",
      "3 queue.bind amq.gen-1 logs 'all'",
      '3 close',
    ]);
    expect(applied.redeclared).toEqual([
      { kind: 'exchange', name: 'logs' },
      { kind: 'queue', name: 'jobs' },
    ]);
    expect(broker.open).toBe(0);
  });

  it('with force, re-declares an entity once: a second mismatch is the error', async () => {
    const broker = new FakeBroker((call) =>
      call.startsWith('queue.declare jobs')
        ? { replyCode: 406, replyText: 'PRECONDITION_FAILED - invalid arg' }
        : undefined,
    );
    const e = await errorOf(applyTopology(broker.connection, t, { force: true }));
    expect((e as ChannelClosedError).replyCode).toBe(406);
    expect(broker.log.filter((l) => l.includes('queue.delete'))).toEqual(['2 queue.delete jobs']);
    expect(broker.open).toBe(0);
  });

  it('does not force past other errors (403, 404, 405)', async () => {
    for (const replyCode of [403, 404, 405]) {
      const broker = new FakeBroker((call) =>
        call.startsWith('queue.declare jobs') ? { replyCode, replyText: 'NO' } : undefined,
      );
      const e = await errorOf(applyTopology(broker.connection, t, { force: true }));
      expect((e as ChannelClosedError).replyCode).toBe(replyCode);
      expect(broker.channels).toHaveLength(1);
    }
  });

  it('passive: declares passively, skips bindings and server-named queues', async () => {
    const broker = new FakeBroker();
    const applied = await lastValueFrom(applyTopology(broker.connection, t, { passive: true }));
    expect(broker.log).toEqual([
      '1 open',
      '1 exchange.declare logs direct {"passive":true}',
      '1 queue.declare jobs {"passive":true}',
      '1 close',
    ]);
    expect(applied.passive).toBe(true);
    expect(applied.queue(jobs)?.messageCount).toBe(7);
    expect(applied.queue(mine)).toBeUndefined();
    expect(configError(() => applied.queueName(mine)).message).toMatch(
      /passive check skips server-named queues/,
    );
  });

  it('passive: a missing entity is the 404 error', async () => {
    const broker = new FakeBroker((call) =>
      call.startsWith('exchange.declare')
        ? { replyCode: 404, replyText: "NOT_FOUND - no exchange 'logs'" }
        : undefined,
    );
    const e = await errorOf(applyTopology(broker.connection, t, { passive: true }));
    expect((e as ChannelClosedError).replyCode).toBe(404);
    expect(broker.open).toBe(0);
  });

  it('refuses an invalid topology, or passive with force, before opening a channel', async () => {
    const broker = new FakeBroker();
    const bad = { queues: [{ name: 'q', messageTtl: -5 }] };
    const e1 = await errorOf(applyTopology(broker.connection, bad));
    expect(e1).toBeInstanceOf(ConfigurationError);
    expect((e1 as Error).message).toMatch(/messageTtl/);
    const e2 = await errorOf(applyTopology(broker.connection, t, { passive: true, force: true }));
    expect(e2).toBeInstanceOf(ConfigurationError);
    expect((e2 as Error).message).toMatch(/passive and force/);
    expect(broker.channels).toHaveLength(0);
  });

  it('closes its channel when unsubscribed midway', async () => {
    const broker = new FakeBroker();
    const subscription = applyTopology(broker.connection, t).subscribe();
    while (!broker.log.some((l) => l.includes('queue.declare'))) await Promise.resolve();
    subscription.unsubscribe();
    expect(broker.log.at(-1)).toBe('1 closed on unsubscribe');
    expect(broker.open).toBe(0);
  });

  it('errors, and emits nothing, when the channel completes midway (a recovering connection was lost)', async () => {
    const broker = new FakeBroker();
    broker.completeNextCallOf = 'queue.bind';
    const e = await errorOf(applyTopology(broker.connection, t));
    expect(e).toBeInstanceOf(ChannelClosedError);
    expect((e as ChannelClosedError).code).toBe('CONNECTION_CLOSED');
  });
});

// ---- consumeSpec ----------------------------------------------------------------------------------

describe('consumeSpec', () => {
  function fakeChannel(): { channel: Channel; calls: [string, ConsumeOptions][] } {
    const calls: [string, ConsumeOptions][] = [];
    const channel = {
      consume: (name: string, options: ConsumeOptions): Observable<Delivery> => {
        calls.push([name, options]);
        return of();
      },
    } as unknown as Channel;
    return { channel, calls };
  }
  const mine = queue({ name: '', exclusive: true });
  const applied = {
    queue: (ref: unknown) =>
      ref === mine ? { spec: mine, name: 'amq.gen-xyz', messageCount: 0, consumerCount: 0 } : undefined,
  } as unknown as AppliedTopology;

  it('consumes the actual queue name with the spec options', () => {
    const { channel, calls } = fakeChannel();
    consumeSpec(channel, consumer({ queue: mine, prefetch: 5, priority: 2 }), applied);
    consumeSpec(channel, consumer({ queue: 'jobs', noAck: true }));
    consumeSpec(channel, consumer({ queue: queue({ name: 'named' }) }));
    expect(calls).toEqual([
      ['amq.gen-xyz', { prefetch: 5, arguments: { 'x-priority': 2 } }],
      ['jobs', { noAck: true }],
      ['named', {}],
    ]);
  });

  it('errors with a ConfigurationError for a server-named queue it cannot resolve, or an invalid spec', async () => {
    const { channel, calls } = fakeChannel();
    const e1 = await errorOf(consumeSpec(channel, { queue: mine }));
    expect(e1).toBeInstanceOf(ConfigurationError);
    expect((e1 as Error).message).toMatch(/needs the AppliedTopology/);
    const e2 = await errorOf(consumeSpec(channel, { queue: queue({ name: '' }) }, applied));
    expect((e2 as Error).message).toMatch(/did not declare/);
    const e3 = await errorOf(consumeSpec(channel, { queue: 'q', prefetch: -1 }));
    expect(e3).toBeInstanceOf(ConfigurationError);
    expect(calls).toEqual([]);
  });
});
