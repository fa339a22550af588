/**
 * The codec where there is no Buffer (a browser, a worker): the same modules loaded with
 * `globalThis.Buffer` removed take the adapter's portable branch (Uint8Array, TextEncoder/Decoder,
 * DataView), and must write the same bytes and decode the same values as in Node.
 */
import fc from 'fast-check';
import type { BasicProperties, FieldTable, FrameHandler } from '../../src/protocol/index.js';
import * as nodeCodec from '../../src/protocol/index.js';
import { arbTablePair } from './support.js';

type Codec = typeof nodeCodec;
type Bytes = typeof import('../../src/protocol/bytes.js');

/** Loads fresh copies of the codec modules while `globalThis.Buffer` is absent. */
function loadWithoutBuffer(): { codec: Codec; bytes: Bytes } {
  const g = globalThis as { Buffer?: unknown };
  const saved = g.Buffer;
  let loaded: { codec: Codec; bytes: Bytes } | undefined;
  try {
    delete g.Buffer;
    jest.isolateModules(() => {
      loaded = {
        codec: require('../../src/protocol/index.js') as Codec,
        bytes: require('../../src/protocol/bytes.js') as Bytes,
      };
    });
  } finally {
    g.Buffer = saved;
  }
  return loaded!;
}

const { codec: portable, bytes: portableBytes } = loadWithoutBuffer();

interface Received {
  method: unknown;
  properties: BasicProperties;
  body: Uint8Array;
}

function decodeAll(codec: Codec, stream: Uint8Array, chunk: number): Received[] {
  const out: Received[] = [];
  const handler: FrameHandler = {
    onMethod: (_c, method) => out.push({ method, properties: {}, body: new Uint8Array(0) }),
    onContent: (_c, method, properties, body) => out.push({ method, properties, body }),
    onHeartbeat: () => {},
  };
  const decoder = new codec.FrameDecoder(handler, { frameMax: 131072 });
  for (let off = 0; off < stream.length; off += chunk) decoder.push(stream.slice(off, off + chunk));
  return out;
}

/**
 * The same value built with `codec`'s classes: each loaded copy of the codec has its own Decimal and
 * TypedField, and its writer recognises only its own.
 */
function forCodec(codec: Codec, value: unknown): unknown {
  if (value instanceof nodeCodec.TypedField)
    return new codec.TypedField(value.type, forCodec(codec, value.value) as never);
  if (value instanceof nodeCodec.Decimal) return new codec.Decimal(value.scale, value.value);
  if (Array.isArray(value)) return value.map((v) => forCodec(codec, v));
  if (
    value !== null &&
    typeof value === 'object' &&
    !(value instanceof Uint8Array) &&
    !(value instanceof Date)
  ) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, {
        value: forCodec(codec, v),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}

function encodeMessages(codec: Codec, nodeHeaders: FieldTable, body: Uint8Array): Uint8Array {
  const headers = forCodec(codec, nodeHeaders) as FieldTable;
  const writer = new codec.FrameWriter({ frameMax: 4096 });
  writer.writeMethod(0, {
    name: 'connection.start',
    serverProperties: { product: 'RabbitMQ ✓', version: '3.13', caps: { confirms: true } },
    mechanisms: 'PLAIN AMQPLAIN',
    locales: 'en_US',
  });
  writer.writeMethod(0, { name: 'connection.secure', challenge: new Uint8Array([0, 1, 2, 255]) });
  writer.writePublish(1, 'échange', 'clé.routage', body, {
    contentType: 'text/plain; charset=utf-8',
    headers,
    timestamp: new Date(1_700_000_000_000),
    messageId: 'id-ü',
  });
  writer.writeContent(
    2,
    { name: 'basic.deliver', consumerTag: 'c', deliveryTag: 2 ** 40, exchange: 'x', routingKey: 'r' },
    { headers: { ratio: codec.field.float32(1.5), big: -(2n ** 62n) } },
    body,
  );
  return Uint8Array.from(writer.take()!);
}

describe('the codec without Buffer', () => {
  it('takes the portable branch', () => {
    expect(portableBytes.NODE_BYTES).toBe(false);
    const b = portableBytes.allocBytes(4);
    expect(b.constructor).toBe(Uint8Array);
  });

  it('writes the same bytes as in Node and decodes the same values', () => {
    const headers: FieldTable = {
      text: 'naïve ☃ 𝄞',
      n: 42,
      big: 2n ** 60n,
      neg: -(2 ** 40),
      d: 0.1,
      dec: new nodeCodec.Decimal(2, -5),
      when: new Date(86_400_000),
      raw: new Uint8Array([9, 8, 7]),
      list: [1, 'two', null, [true]],
      nested: { deeper: { k: 'v'.repeat(300) } },
    };
    const body = new Uint8Array(10_000).map((_, i) => i & 0xff);
    const fromNode = encodeMessages(nodeCodec, headers, body);
    const fromPortable = encodeMessages(portable, headers, body);
    expect(Buffer.from(fromPortable).equals(Buffer.from(fromNode))).toBe(true);

    for (const chunk of [fromNode.length, 1000, 7]) {
      const a = decodeAll(nodeCodec, fromNode, chunk);
      const b = decodeAll(portable, fromNode, chunk);
      expect(b).toHaveLength(4);
      // Bodies and x values are plain Uint8Arrays without Buffer, Buffers in Node; same bytes.
      for (const m of b) expect(m.body.constructor).toBe(Uint8Array);
      expect(b[2]!.properties.headers!.raw!.constructor).toBe(Uint8Array);
      expect(Buffer.isBuffer(a[2]!.body)).toBe(true);
      const plain = (ms: Received[]) => ms.map((m) => ({ ...m, body: Array.from(m.body) }));
      expect(JSON.stringify(plain(b), replacer)).toBe(JSON.stringify(plain(a), replacer));
    }
  });

  it('round-trips random tables like Node does', () => {
    fc.assert(
      fc.property(arbTablePair, ([input]) => {
        const bytesFromNode = encodeMessages(nodeCodec, input as FieldTable, new Uint8Array([1]));
        const bytesFromPortable = encodeMessages(portable, input as FieldTable, new Uint8Array([1]));
        expect(Buffer.from(bytesFromPortable).equals(Buffer.from(bytesFromNode))).toBe(true);
        const a = decodeAll(nodeCodec, bytesFromNode, bytesFromNode.length);
        const b = decodeAll(portable, bytesFromNode, bytesFromNode.length);
        expect(JSON.stringify(b[2]!.properties, replacer)).toBe(JSON.stringify(a[2]!.properties, replacer));
      }),
      { numRuns: 200 },
    );
  });

  it('measures and writes UTF-8 as Buffer does, lone surrogates included', () => {
    const anyUnits = fc
      .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 })
      .map((units) => String.fromCharCode(...units));
    fc.assert(
      fc.property(fc.oneof(anyUnits, fc.string({ unit: 'binary' })), (s) => {
        expect(portableBytes.utf8Length(s)).toBe(Buffer.byteLength(s, 'utf8'));
        const out = portableBytes.allocBytes(s.length * 3 + 2);
        const n = portableBytes.utf8Write(out, s, 2, s.length * 3);
        expect(Buffer.from(out.subarray(2, 2 + n)).equals(Buffer.from(s, 'utf8'))).toBe(true);
        expect(portableBytes.utf8Slice(out, 2, 2 + n)).toBe(Buffer.from(s, 'utf8').toString('utf8'));
      }),
    );
  });
});

describe('the codec in Node', () => {
  it('accepts chunks that are plain Uint8Arrays and still hands out Buffers', () => {
    const stream = encodeMessages(nodeCodec, { a: 'b' }, new Uint8Array([1, 2, 3]));
    const out = decodeAll(nodeCodec, stream, 100);
    expect(out).toHaveLength(4);
    // The two messages (the first two events are methods).
    for (const m of out.slice(2)) expect(Buffer.isBuffer(m.body)).toBe(true);
    expect(Buffer.from(out[2]!.body).equals(Buffer.from([1, 2, 3]))).toBe(true);
  });
});

/** JSON for values JSON cannot carry: bigints, byte arrays (Buffer or not), Dates as given. */
function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return `bytes:${Array.from(value).join(',')}`;
  if (value !== null && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer') {
    return `bytes:${(value as { data: number[] }).data.join(',')}`;
  }
  return value;
}
