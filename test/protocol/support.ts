/**
 * Shared pieces of the pure codec tests: a collecting frame handler and fast-check arbitraries that
 * produce pairs of (value given to the encoder, value the decoder must give back).
 */
import fc from 'fast-check';
import {
  type ArgumentInfo,
  type BasicProperties,
  Decimal,
  type FieldTable,
  type FieldValue,
  FrameDecoder,
  type FrameDecoderOptions,
  field,
  type HeadersDecodeError,
  METHOD_ARGUMENTS,
  type MethodName,
  TypedField,
} from '../../src/protocol/index.js';

/** One thing the decoder handed to its handler. */
export type Event =
  | { kind: 'method'; channel: number; method: unknown }
  | {
      kind: 'content';
      channel: number;
      method: unknown;
      properties: BasicProperties;
      body: Buffer;
      headersError?: HeadersDecodeError;
    }
  | { kind: 'heartbeat' };

/** A decoder that records everything it decodes into `events`. */
export function collectingDecoder(options?: FrameDecoderOptions): { decoder: FrameDecoder; events: Event[] } {
  const events: Event[] = [];
  const decoder = new FrameDecoder(
    {
      onMethod: (channel, method) => events.push({ kind: 'method', channel, method }),
      onContent: (channel, method, properties, body, headersError) =>
        // In Node the decoder's bodies are Buffers.
        events.push({
          kind: 'content',
          channel,
          method,
          properties,
          body: body as Buffer,
          ...(headersError === undefined ? {} : { headersError }),
        }),
      onHeartbeat: () => events.push({ kind: 'heartbeat' }),
    },
    options,
  );
  return { decoder, events };
}

/** Decodes `bytes` fed in the given chunk sizes (cycled), returning the events. */
export function decodeInChunks(
  bytes: Uint8Array,
  sizes: readonly number[],
  options?: FrameDecoderOptions,
): Event[] {
  const { decoder, events } = collectingDecoder(options);
  let off = 0;
  let i = 0;
  while (off < bytes.length) {
    const n = Math.max(1, sizes.length === 0 ? bytes.length : sizes[i++ % sizes.length]!);
    decoder.push(bytes.subarray(off, off + n));
    off += n;
  }
  return events;
}

/** The error a function throws (fails the test when it throws nothing). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to throw');
}

/** A pair: what is given to the encoder, and what the decoder must produce for it. */
export type Pair<T = FieldValue> = readonly [input: T, expected: T];

const text = fc.string({ unit: 'binary', maxLength: 40 });
/** Keys: short strings, at most 255 UTF-8 bytes. */
export const arbKey = fc.string({ unit: 'binary', maxLength: 30 }).filter((k) => k !== '__proto__');
const seconds = fc.integer({ min: 0, max: 2 ** 33 });

/** One arbitrary per RabbitMQ field type tag, as (input, expected) pairs. */
export const scalarPairs: Record<string, fc.Arbitrary<Pair>> = {
  t: fc.boolean().map((v) => [v, v] as const),
  b: fc.integer({ min: -128, max: 127 }).map((v) => [field.int8(v), v] as const),
  B: fc.integer({ min: 0, max: 255 }).map((v) => [field.uint8(v), v] as const),
  s: fc.integer({ min: -32768, max: 32767 }).map((v) => [field.int16(v), v] as const),
  u: fc.integer({ min: 0, max: 65535 }).map((v) => [field.uint16(v), v] as const),
  I: fc.integer().map((v) => [v, v] as const),
  i: fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((v) => [field.uint32(v), v] as const),
  l: fc
    .bigInt(-(2n ** 63n), 2n ** 63n - 1n)
    .map((v) => [v, v >= -(2n ** 53n - 1n) && v <= 2n ** 53n - 1n ? Number(v) : v] as const),
  lSmall: fc.integer().map((v) => [field.int64(v), v] as const),
  f: fc.float().map((v) => [field.float32(v), v] as const),
  d: fc.double().map((v) => [field.float64(v), v] as const),
  dInferred: fc.double({ noDefaultInfinity: false }).map((v) => [v, v] as const),
  U: fc.integer({ min: -32768, max: 32767 }).map((v) => [new TypedField('U', v), v] as const),
  L: fc
    .bigInt(-(2n ** 63n), 2n ** 63n - 1n)
    .map(
      (v) => [new TypedField('L', v), v >= -(2n ** 53n - 1n) && v <= 2n ** 53n - 1n ? Number(v) : v] as const,
    ),
  // Signed, as the Java client and pika write it.
  D: fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }))
    .map(([s, v]) => [new Decimal(s, v), new Decimal(s, v)] as const),
  S: text.map((v) => [v, v] as const),
  x: fc.uint8Array({ maxLength: 40 }).map((v) => [v, Buffer.from(v)] as const),
  T: seconds.map((s) => [new Date(s * 1000), new Date(s * 1000)] as const),
  V: fc.constant([null, null] as const),
};

/** Any field value, nesting tables and arrays a few levels deep. */
export const arbPair: fc.Arbitrary<Pair> = fc.letrec<{ value: Pair; table: Pair<FieldTable>; array: Pair }>(
  (tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      ...Object.values(scalarPairs),
      tie('table') as fc.Arbitrary<Pair>,
      tie('array'),
    ),
    table: fc.array(fc.tuple(arbKey, tie('value')), { maxLength: 5 }).map((entries) => {
      const input: FieldTable = {};
      const expected: FieldTable = {};
      for (const [k, [i, e]] of entries) {
        input[k] = i;
        expected[k] = e;
      }
      return [input, expected] as const;
    }),
    array: fc
      .array(tie('value'), { maxLength: 5 })
      .map((items) => [items.map((p) => p[0]), items.map((p) => p[1])] as const),
  }),
).value;

/** A field table as an (input, expected) pair. */
export const arbTablePair: fc.Arbitrary<Pair<FieldTable>> = fc
  .array(fc.tuple(arbKey, arbPair), { maxLength: 6 })
  .map((entries) => {
    const input: FieldTable = {};
    const expected: FieldTable = {};
    for (const [k, [i, e]] of entries) {
      input[k] = i;
      expected[k] = e;
    }
    return [input, expected] as const;
  });

const shortstr = fc.string({ unit: 'binary', maxLength: 60 });

/** Random properties, each of the 14 present or absent, as (input, expected) pairs. */
export const arbPropertiesPair: fc.Arbitrary<readonly [BasicProperties, BasicProperties]> = fc
  .record(
    {
      contentType: shortstr,
      contentEncoding: shortstr,
      headers: arbTablePair,
      deliveryMode: fc.integer({ min: 0, max: 255 }),
      priority: fc.integer({ min: 0, max: 255 }),
      correlationId: shortstr,
      replyTo: shortstr,
      expiration: shortstr,
      messageId: shortstr,
      timestamp: seconds.map((s) => new Date(s * 1000)),
      type: shortstr,
      userId: shortstr,
      appId: shortstr,
      clusterId: shortstr,
    },
    { requiredKeys: [] },
  )
  .map((r) => {
    const input: Record<string, unknown> = { ...r };
    const expected: Record<string, unknown> = { ...r };
    if (r.headers !== undefined) {
      input.headers = r.headers[0];
      expected.headers = r.headers[1];
    }
    return [input as BasicProperties, expected as BasicProperties] as const;
  });

function argumentPair(arg: ArgumentInfo): fc.Arbitrary<readonly [unknown, unknown]> {
  const same = <T>(a: fc.Arbitrary<T>) => a.map((v) => [v, v] as const);
  switch (arg.type) {
    case 'octet':
      return same(fc.integer({ min: 0, max: 255 }));
    case 'short':
      return same(fc.integer({ min: 0, max: 65535 }));
    case 'long':
      return same(fc.integer({ min: 0, max: 2 ** 32 - 1 }));
    case 'longlong':
      return same(fc.maxSafeNat());
    case 'bit':
      return same(fc.boolean());
    case 'shortstr':
      return same(shortstr);
    case 'longstr':
      return same(fc.string({ unit: 'binary', maxLength: 200 }));
    case 'longbytes':
      return fc.uint8Array({ maxLength: 64 }).map((v) => [v, Buffer.from(v)] as const);
    case 'table':
      return arbTablePair;
    case 'timestamp':
      return seconds.map((s) => [new Date(s * 1000), new Date(s * 1000)] as const);
  }
}

/** A method with random arguments, as (encoder input, expected decoded method). */
export function arbMethodPair(
  name: MethodName,
): fc.Arbitrary<readonly [Record<string, unknown>, Record<string, unknown>]> {
  const args = METHOD_ARGUMENTS[name];
  const parts: Record<string, fc.Arbitrary<readonly [unknown, unknown]>> = {};
  for (const a of args) parts[a.name] = argumentPair(a);
  return fc.record(parts).map((r) => {
    const input: Record<string, unknown> = { name };
    const expected: Record<string, unknown> = { name };
    for (const a of args) {
      const pair = r[a.name]!;
      input[a.name] = pair[0];
      expected[a.name] = pair[1];
    }
    return [input, expected] as const;
  });
}
