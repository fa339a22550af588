/**
 * The pure parts of stream consuming: how offsets and filters become consumer arguments (with the
 * wire types RabbitMQ reads), what is refused before anything is sent, and the filter-value header.
 */
import { firstValueFrom } from 'rxjs';
import { streamConsumeArguments, streamOffsetProblem } from '../../src/client/streams.js';
import {
  type Channel,
  ConfigurationError,
  consumer,
  consumeStream,
  encodeStreamOffset,
  type FieldTable,
  fieldTypesOf,
  queue,
  TypedField,
  toConsumeOptions,
  toQueueDeclare,
  withStreamFilterValue,
} from '../../src/node.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';

/** The table as the broker would read it: encoded, then decoded with its wire tags. */
function onTheWire(table: FieldTable): { table: FieldTable; types: Record<string, string> } {
  const w = new Writer(16);
  w.table(table);
  const bytes = Buffer.from(w.buf.subarray(0, w.pos));
  const decoded = new Reader().reset(bytes, 0, bytes.length).table();
  return { table: decoded, types: { ...fieldTypesOf(decoded) } };
}

describe('stream offsets', () => {
  it('sends first, last, next and intervals as long strings', () => {
    for (const offset of ['first', 'last', 'next', '1h', '30m', '7D', '1Y', '2M', '45s'] as const) {
      expect(encodeStreamOffset(offset)).toBe(offset);
      const wire = onTheWire({ 'x-stream-offset': encodeStreamOffset(offset) });
      expect(wire.table['x-stream-offset']).toBe(offset);
      expect(wire.types['x-stream-offset']).toBeUndefined(); // a string infers 'S'
    }
  });

  it('sends a numeric offset as a signed 64-bit integer (l), numbers and bigints alike', () => {
    for (const offset of [0, 42, 2 ** 40, 7n, 2n ** 62n]) {
      const encoded = encodeStreamOffset(offset);
      expect(encoded).toBeInstanceOf(TypedField);
      expect((encoded as TypedField).type).toBe('l');
      const wire = onTheWire({ 'x-stream-offset': encoded });
      expect(BigInt(wire.table['x-stream-offset'] as number | bigint)).toBe(BigInt(offset));
    }
    // A small offset decodes as a number whose inferred tag (I) is not the wire's: the tag is kept.
    expect(onTheWire({ o: encodeStreamOffset(42) }).types.o).toBe('l');
  });

  it('sends a Date as an AMQP timestamp (T), whole seconds', () => {
    const when = new Date('2026-12-05T10:20:30.999Z');
    const encoded = encodeStreamOffset(when) as TypedField;
    expect(encoded.type).toBe('T');
    const wire = onTheWire({ 'x-stream-offset': encoded });
    expect(wire.table['x-stream-offset']).toEqual(new Date('2026-12-05T10:20:30.000Z'));
  });

  it.each([
    ['1 hour', /must be 'first', 'last', 'next' or an interval/],
    ['', /must be 'first'/],
    ['h', /must be 'first'/],
    ['1.5h', /must be 'first'/],
    ['1w', /must be 'first'/],
    ['FIRST', /must be 'first'/],
    [-1, /integer ≥ 0/],
    [1.5, /integer ≥ 0/],
    [Number.NaN, /integer ≥ 0/],
    [2 ** 53, /integer ≥ 0/],
    [-1n, /from 0 to 2\^63 - 1/],
    [2n ** 63n, /from 0 to 2\^63 - 1/],
    [new Date(Number.NaN), /invalid Date/],
    [null, /must be 'first', 'last', 'next', a number/],
    [{ offset: 1 }, /must be 'first', 'last', 'next', a number/],
  ])(
    'refuses %p before sending it (RabbitMQ closes the connection for an offset it cannot parse)',
    (offset, message) => {
      expect(streamOffsetProblem(offset)).toMatch(message);
      expect(() => encodeStreamOffset(offset as never)).toThrow(ConfigurationError);
      expect(() => encodeStreamOffset(offset as never)).toThrow(/invalid stream offset: it /);
    },
  );
});

describe('stream consumer arguments', () => {
  it("defaults to 'next'", () => {
    expect(streamConsumeArguments({ prefetch: 10 })).toEqual({ 'x-stream-offset': 'next' });
  });

  it('sends the filter values as an array, and match-unfiltered when given', () => {
    expect(
      streamConsumeArguments({
        prefetch: 10,
        offset: 'first',
        filter: { values: ['emea'], matchUnfiltered: true },
      }),
    ).toEqual({ 'x-stream-offset': 'first', 'x-stream-filter': ['emea'], 'x-stream-match-unfiltered': true });
    expect(streamConsumeArguments({ prefetch: 10, filter: { values: ['a', 'b'] } })).toEqual({
      'x-stream-offset': 'next',
      'x-stream-filter': ['a', 'b'],
    });
  });

  it('keeps other arguments, the typed options winning', () => {
    expect(
      streamConsumeArguments({
        prefetch: 1,
        offset: 'last',
        arguments: { 'x-priority': 3, 'x-stream-offset': 'first' },
      }),
    ).toEqual({ 'x-priority': 3, 'x-stream-offset': 'last' });
  });

  it.each([
    [{ prefetch: 0 }, /prefetch must be an integer from 1 to 65535/],
    [{ prefetch: 65536 }, /prefetch must be an integer from 1 to 65535/],
    [{}, /prefetch must be an integer from 1 to 65535 \(a stream consumer needs one\)/],
    [{ prefetch: 1, credit: 'never' }, /credit must be 'auto' or 'manual'/],
    [{ prefetch: 1, filter: { values: [] } }, /filter.values must be a non-empty array/],
    [{ prefetch: 1, filter: { values: [''] } }, /filter.values must be a non-empty array/],
    [{ prefetch: 1, filter: { values: ['a'], matchUnfiltered: 'yes' } }, /matchUnfiltered must be a boolean/],
    [{ prefetch: 1, filter: { values: ['a'], postFilter: 1 } }, /postFilter must be a function/],
    [{ prefetch: 1, offset: '1 day' }, /invalid stream offset/],
  ])('consumeStream errors on %p without touching the channel', async (options, message) => {
    const channel = {
      consume: () => {
        throw new Error('consume must not be called');
      },
    } as unknown as Channel;
    const error = await firstValueFrom(consumeStream(channel, 's', options as never)).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(message);
  });
});

describe('withStreamFilterValue', () => {
  it('adds the x-stream-filter-value header, keeping the other properties and headers', () => {
    expect(withStreamFilterValue('emea', { contentType: 'text/plain', headers: { a: 1 } })).toEqual({
      contentType: 'text/plain',
      headers: { a: 1, 'x-stream-filter-value': 'emea' },
    });
    expect(withStreamFilterValue('apac')).toEqual({ headers: { 'x-stream-filter-value': 'apac' } });
  });

  it('refuses an empty or non-string value', () => {
    expect(() => withStreamFilterValue('')).toThrow(ConfigurationError);
    expect(() => withStreamFilterValue(3 as never)).toThrow(ConfigurationError);
  });
});

describe('streams in topology specs', () => {
  it('maps streamMaxSegmentSizeBytes to x-stream-max-segment-size-bytes, for streams only', () => {
    expect(
      toQueueDeclare(
        queue({ name: 's', type: 'stream', streamMaxSegmentSizeBytes: 1_000_000, maxAge: '7D' }),
      ),
    ).toEqual({
      queue: 's',
      options: {
        durable: true,
        exclusive: false,
        autoDelete: false,
        arguments: {
          'x-queue-type': 'stream',
          'x-max-age': '7D',
          'x-stream-max-segment-size-bytes': 1_000_000,
        },
      },
    });
    expect(() => queue({ name: 'c', streamMaxSegmentSizeBytes: 1000 })).toThrow(
      /streamMaxSegmentSizeBytes is for streams/,
    );
    expect(() => queue({ name: 's', type: 'stream', streamMaxSegmentSizeBytes: 0 })).toThrow(
      /streamMaxSegmentSizeBytes must be an integer ≥ 1/,
    );
  });

  it('checks a ConsumerSpec streamOffset as consumeStream does, and encodes it the same way', () => {
    const stream = queue({ name: 's', type: 'stream' });
    expect(() => consumer({ queue: stream, prefetch: 1, streamOffset: '1 hour' as never })).toThrow(
      /streamOffset must be 'first', 'last', 'next' or an interval/,
    );
    expect(() => consumer({ queue: stream, prefetch: 1, streamOffset: -1n })).toThrow(
      /streamOffset must be from 0/,
    );
    const offset = toConsumeOptions(consumer({ queue: stream, prefetch: 1, streamOffset: 5n })).arguments?.[
      'x-stream-offset'
    ];
    expect(offset).toEqual(encodeStreamOffset(5n));
  });
});
