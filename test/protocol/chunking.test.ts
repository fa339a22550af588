import fc from 'fast-check';
import { FrameWriter, type MethodInit } from '../../src/protocol/index.js';
import { arbPropertiesPair, decodeInChunks, type Event } from './support.js';

/** One thing to write: a plain method, a content message (possibly multi-frame), or a heartbeat. */
type Item =
  | { kind: 'method'; channel: number; method: MethodInit }
  | { kind: 'content'; channel: number; body: Uint8Array; props: readonly [object, object] }
  | { kind: 'heartbeat' };

const arbItem: fc.Arbitrary<Item> = fc.oneof(
  fc.record({
    kind: fc.constant('method' as const),
    channel: fc.integer({ min: 0, max: 3 }),
    method: fc.oneof(
      fc.record({
        name: fc.constant('basic.ack' as const),
        deliveryTag: fc.maxSafeNat(),
        multiple: fc.boolean(),
      }),
      fc.record({
        name: fc.constant('queue.declare-ok' as const),
        queue: fc.string(),
        messageCount: fc.nat(),
        consumerCount: fc.nat(),
      }),
      fc.record({
        name: fc.constant('channel.close' as const),
        replyCode: fc.constantFrom(200, 404, 406),
        replyText: fc.string(),
        classId: fc.nat(65535),
        methodId: fc.nat(65535),
      }),
    ),
  }),
  fc.record({
    kind: fc.constant('content' as const),
    channel: fc.integer({ min: 1, max: 3 }),
    body: fc.uint8Array({ maxLength: 10_000 }),
    props: arbPropertiesPair,
  }),
  fc.constant({ kind: 'heartbeat' as const }),
);

function encode(items: readonly Item[], frameMax: number): { bytes: Buffer; expected: Event[] } {
  const writer = new FrameWriter({ frameMax, chunkSize: 1024 });
  const chunks: Buffer[] = [];
  const expected: Event[] = [];
  items.forEach((item, i) => {
    if (item.kind === 'method') {
      writer.writeMethod(item.channel, item.method);
    } else if (item.kind === 'content') {
      const method = {
        name: 'basic.deliver' as const,
        consumerTag: 'ctag',
        deliveryTag: i + 1,
        redelivered: false,
        exchange: 'x',
        routingKey: 'k',
      };
      writer.writeContent(item.channel, method, item.props[0], item.body);
      expected.push({
        kind: 'content',
        channel: item.channel,
        method,
        properties: item.props[1],
        body: Buffer.from(item.body),
      });
    } else {
      writer.writeHeartbeat();
      expected.push({ kind: 'heartbeat' });
    }
    // take() between some writes, as a transport flushing at random moments would
    if (i % 3 === 0) chunks.push(Buffer.from(writer.take() ?? Buffer.alloc(0)));
  });
  chunks.push(Buffer.from(writer.take() ?? Buffer.alloc(0)));
  return { bytes: Buffer.concat(chunks), expected };
}

function methodsOnly(events: Event[]): unknown[] {
  return events
    .filter((e) => e.kind === 'method')
    .map((e) => (e as { method: { name: string } }).method.name);
}

describe('incremental decoding', () => {
  it('decodes random streams identically whole, in random chunks and one byte at a time', () => {
    fc.assert(
      fc.property(
        fc.array(arbItem, { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 10 }),
        fc.constantFrom(4096, 8192, 131072),
        (items, sizes, frameMax) => {
          const { bytes, expected } = encode(items, frameMax);
          const whole = decodeInChunks(bytes, [], { frameMax });
          expect(whole.filter((e) => e.kind !== 'method')).toEqual(expected);
          expect(methodsOnly(whole)).toEqual(
            items.filter((i) => i.kind === 'method').map((i) => (i as { method: MethodInit }).method.name),
          );
          expect(decodeInChunks(bytes, sizes, { frameMax })).toEqual(whole);
          expect(decodeInChunks(bytes, [1], { frameMax })).toEqual(whole);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('assembles interleaved content on different channels', () => {
    // Frames from two channels interleaved: deliver(1), deliver(2), header(1), header(2), body(2), body(1).
    const a = new FrameWriter({ frameMax: 4096 });
    a.writeContent(
      1,
      { name: 'basic.deliver', consumerTag: 'a', deliveryTag: 1, exchange: '', routingKey: 'q' },
      {},
      Buffer.from('one'),
    );
    const b = new FrameWriter({ frameMax: 4096 });
    b.writeContent(
      2,
      { name: 'basic.deliver', consumerTag: 'b', deliveryTag: 1, exchange: '', routingKey: 'q' },
      {},
      Buffer.from('two'),
    );
    const split = (buf: Buffer): Buffer[] => {
      const frames: Buffer[] = [];
      for (let off = 0; off < buf.length; ) {
        const size = buf.readUInt32BE(off + 3) + 8;
        frames.push(buf.subarray(off, off + size));
        off += size;
      }
      return frames;
    };
    const [m1, h1, b1] = split(a.take()! as Buffer);
    const [m2, h2, b2] = split(b.take()! as Buffer);
    const events = decodeInChunks(Buffer.concat([m1!, m2!, h1!, h2!, b2!, b1!]), [7]);
    expect(events.map((e) => (e.kind === 'content' ? [e.channel, e.body.toString()] : e))).toEqual([
      [2, 'two'],
      [1, 'one'],
    ]);
  });

  it('hands out bodies that stay valid after later chunks reuse the input buffer', () => {
    const writer = new FrameWriter({ frameMax: 4096 });
    writer.writeContent(
      1,
      { name: 'basic.deliver', consumerTag: 'a', deliveryTag: 1, exchange: '', routingKey: 'q' },
      {},
      Buffer.from('first'),
    );
    const bytes = Buffer.from(writer.take()!);
    const events = decodeInChunks(bytes, []);
    bytes.fill(0);
    expect((events[0] as { body: Buffer }).body.toString()).toBe('first');
  });
});
