/**
 * Field tables as other clients write them, as bytes built by hand from their documented encodings:
 * every tag of the AMQP 0-9-1 spec and RabbitMQ's errata decodes, and a decoded table encodes back to
 * the very same bytes (what a consumer that republishes or dead-letters a message relies on).
 *
 * - py-amqp (Celery): str and bytes as `S`, bool `t`, float `d`, int `I` within ±(2^31 - 1) else `L`
 *   (signed 64), Decimal `D` (scale octet, signed int32), datetime `T`, dict `F`, list `A`, None `V`.
 * - pika: str `S`, bytes `x`, bool `t`, int `I` within int32 else `l` (signed 64), Decimal `D` (signed
 *   int32), datetime `T`, dict `F`, list `A`, None `V`.
 * - The Java client writes BigDecimal("-1.5") as `D` 01 ff ff ff f1, as pika does.
 *
 * Before: U and L were unknown tags (a FrameError that failed the connection on any py-amqp integer
 * beyond int32), and D's value was read unsigned (-1.5 came out as 429496728.1).
 */
import {
  Decimal,
  EncodeError,
  type FieldTable,
  type FieldValue,
  fieldTypesOf,
} from '../../src/protocol/index.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { thrown } from './support.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

/** One table entry: short-string key, tag, value bytes (hex). */
function entry(key: string, tag: string, valueHex: string): Buffer {
  return Buffer.concat([Buffer.from([key.length]), Buffer.from(key + tag, 'latin1'), hex(valueHex)]);
}

/** A long string's bytes: 4-byte length and the UTF-8 text. */
function long(text: string): string {
  const b = Buffer.from(text, 'utf8');
  return b.length.toString(16).padStart(8, '0') + b.toString('hex');
}

/** A table (or array) body with its 4-byte length in front, as hex. */
function sized(parts: Buffer[]): string {
  const body = Buffer.concat(parts);
  return body.length.toString(16).padStart(8, '0') + body.toString('hex');
}

function table(entries: Buffer[]): Buffer {
  return hex(sized(entries));
}

function decode(bytes: Buffer): FieldTable {
  const r = new Reader().reset(bytes, 0, bytes.length);
  const t = r.table();
  expect(r.pos).toBe(bytes.length);
  return t;
}

function encode(t: FieldTable): Buffer {
  const w = new Writer(16);
  w.table(t);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

const WHEN = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));
const WHEN_HEX = Math.floor(WHEN.getTime() / 1000)
  .toString(16)
  .padStart(16, '0');

describe('field tables written by other clients', () => {
  it('decodes the headers py-amqp writes and re-encodes them byte for byte', () => {
    const bytes = table([
      entry('count', 'I', '00000005'),
      entry('big', 'L', '0000010000000000'), // 2^40: beyond int32, so L
      entry('min', 'L', 'ffffffff80000000'), // -2^31: py-amqp's bound is ±(2^31 - 1), so L
      entry('huge', 'L', '7fffffffffffffff'), // int64 max: a bigint
      entry('ok', 't', '01'),
      entry('name', 'S', long('héllo')),
      entry('raw', 'S', long('ab')), // py-amqp writes bytes as S too
      entry('ratio', 'd', '3fe0000000000000'),
      entry('price', 'D', '01 fffffff1'), // Decimal('-1.5')
      entry('when', 'T', WHEN_HEX),
      entry('list', 'A', sized([hex('49 00000001'), hex(`53 ${long('a')}`)])),
      entry('nested', 'F', sized([entry('k', 'V', '')])),
      entry('none', 'V', ''),
    ]);
    const decoded = decode(bytes);
    expect(decoded).toEqual({
      count: 5,
      big: 2 ** 40,
      min: -(2 ** 31),
      huge: 2n ** 63n - 1n,
      ok: true,
      name: 'héllo',
      raw: 'ab',
      ratio: 0.5,
      price: new Decimal(1, -15),
      when: WHEN,
      list: [1, 'a'],
      nested: { k: null },
      none: null,
    });
    expect(String(decoded.price)).toBe('-1.5');
    // L is remembered: inference alone would write l (or I for -2^31).
    expect(fieldTypesOf(decoded)).toEqual({ big: 'L', min: 'L', huge: 'L' });
    expect(encode(decoded).toString('hex')).toBe(bytes.toString('hex'));
  });

  it('decodes the headers pika writes and re-encodes them byte for byte', () => {
    const bytes = table([
      entry('count', 'I', 'fffffffe'), // -2
      entry('big', 'l', 'fffffeffffffffff'), // -(2^40) - 1: beyond int32, so l
      entry('ok', 't', '00'),
      entry('name', 'S', long('x-death')),
      entry('raw', 'x', '00000003 00ff10'),
      entry('price', 'D', '01 fffffff1'), // Decimal('-1.5')
      entry('small', 'D', '03 00000005'), // Decimal('5E-3')
      entry('when', 'T', WHEN_HEX),
      entry('list', 'A', sized([hex('49 00000001'), hex('74 01'), hex('56')])),
      entry('nested', 'F', sized([entry('depth', 'I', '00000002')])),
      entry('none', 'V', ''),
    ]);
    const decoded = decode(bytes);
    expect(decoded).toEqual({
      count: -2,
      big: -(2 ** 40) - 1,
      ok: false,
      name: 'x-death',
      raw: Buffer.from([0, 0xff, 0x10]),
      price: new Decimal(1, -15),
      small: new Decimal(3, 5),
      when: WHEN,
      list: [1, true, null],
      nested: { depth: 2 },
      none: null,
    });
    expect(Buffer.isBuffer(decoded.raw)).toBe(true); // x values are Buffers in Node
    expect(String(decoded.small)).toBe('0.005');
    expect(encode(decoded).toString('hex')).toBe(bytes.toString('hex'));
  });

  it('decodes every tag of the spec and the errata, RabbitMQ winning where they clash', () => {
    const bytes = table([
      entry('t', 't', '01'),
      entry('b', 'b', 'ff'), // int8 -1
      entry('B', 'B', 'ff'), // uint8 255
      entry('s', 's', 'fffe'), // RabbitMQ: int16 -2 (the spec's short string)
      entry('U', 'U', 'fffd'), // the spec's int16: -3
      entry('u', 'u', 'fffc'), // uint16 65532
      entry('I', 'I', 'fffffffb'), // int32 -5
      entry('i', 'i', 'fffffffa'), // uint32
      entry('l', 'l', 'fffffffffffffff9'), // RabbitMQ: signed 64, -7
      entry('L', 'L', 'fffffffffffffff8'), // signed 64, -8
      entry('f', 'f', '3fc00000'), // 1.5
      entry('d', 'd', 'c004000000000000'), // -2.5
      entry('D', 'D', '02 fffffffb'), // -0.05
      entry('S', 'S', long('text')),
      entry('x', 'x', '00000002 0102'),
      entry('A', 'A', sized([hex('55 0001'), hex('4c 0000000000000002')])),
      entry('T', 'T', '0000000000000001'),
      entry('F', 'F', sized([entry('n', 's', '0001')])),
      entry('V', 'V', ''),
    ]);
    const decoded = decode(bytes);
    expect(decoded).toEqual({
      t: true,
      b: -1,
      B: 255,
      s: -2,
      U: -3,
      u: 65532,
      I: -5,
      i: 0xfffffffa,
      l: -7,
      L: -8,
      f: 1.5,
      d: -2.5,
      D: new Decimal(2, -5),
      S: 'text',
      x: Buffer.from([1, 2]),
      A: [1, 2],
      T: new Date(1000),
      F: { n: 1 },
      V: null,
    });
    expect(String(decoded.D)).toBe('-0.05');
    expect(fieldTypesOf(decoded.A as FieldValue[])).toEqual({ 0: 'U', 1: 'L' });
    expect(encode(decoded).toString('hex')).toBe(bytes.toString('hex'));
  });
});

describe('decimals are signed, as the Java client and pika write them', () => {
  // Before: the value was read as unsigned, so these bytes read as 429496728.1.
  it('reads scale 1, value ff ff ff f1 as -1.5', () => {
    const d = decode(table([entry('v', 'D', '01 fffffff1')])).v as Decimal;
    expect(d).toEqual(new Decimal(1, -15));
    expect(d.toNumber()).toBe(-1.5);
    expect(d.toString()).toBe('-1.5');
  });

  it('writes a negative value as a signed int32', () => {
    expect(encode({ v: new Decimal(1, -15) }).toString('hex')).toBe(
      table([entry('v', 'D', '01 fffffff1')]).toString('hex'),
    );
    expect(encode({ v: new Decimal(0, -(2 ** 31)) }).toString('hex')).toBe(
      table([entry('v', 'D', '00 80000000')]).toString('hex'),
    );
  });

  it('accepts -2^31 to 2^31 - 1 and nothing else', () => {
    for (const value of [2 ** 31, -(2 ** 31) - 1, 1.5]) {
      const e = thrown(() => encode({ v: new Decimal(2, value) }));
      expect(e).toBeInstanceOf(EncodeError);
      expect((e as EncodeError).code).toBe('VALUE_OUT_OF_RANGE');
    }
  });

  it.each([
    [0, -7, '-7'],
    [1, -15, '-1.5'],
    [2, -5, '-0.05'],
    [3, -1234, '-1.234'],
    [2, 1999, '19.99'],
    [3, 5, '0.005'],
    [0, 0, '0'],
    [2, -(2 ** 31), '-21474836.48'],
  ])('prints scale %i value %i as %s', (scale, value, text) => {
    expect(new Decimal(scale, value).toString()).toBe(text);
  });
});
