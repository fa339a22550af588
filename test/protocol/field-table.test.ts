import fc from 'fast-check';
import {
  Decimal,
  EncodeError,
  type FieldTable,
  FrameError,
  field,
  fieldTypesOf,
  MAX_TABLE_DEPTH,
} from '../../src/protocol/index.js';
import { Reader } from '../../src/protocol/reader.js';
import { inferFieldType, Writer } from '../../src/protocol/writer.js';
import { arbPair, arbTablePair, scalarPairs, thrown } from './support.js';

function encodeTable(table: FieldTable): Buffer {
  const w = new Writer(16);
  w.table(table);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

function decodeTable(bytes: Buffer): FieldTable {
  const r = new Reader().reset(bytes, 0, bytes.length);
  const table = r.table();
  expect(r.pos).toBe(bytes.length);
  return table;
}

describe('field tables', () => {
  it.each(Object.keys(scalarPairs))('round-trips every value of type %s', (tag) => {
    fc.assert(
      fc.property(scalarPairs[tag]!, ([input, expected]) => {
        const bytes = encodeTable({ v: input });
        const decoded = decodeTable(bytes);
        expect(decoded).toEqual({ v: expected });
        // Decoding remembers the tag, so encoding the decoded table gives the same bytes.
        expect(encodeTable(decoded).equals(bytes)).toBe(true);
      }),
    );
  });

  it('round-trips nested tables and arrays of every type, byte-exactly after decoding', () => {
    fc.assert(
      fc.property(arbTablePair, ([input, expected]) => {
        const bytes = encodeTable(input);
        const decoded = decodeTable(bytes);
        expect(decoded).toEqual(expected);
        expect(encodeTable(decoded).equals(bytes)).toBe(true);
      }),
    );
  });

  it('round-trips arrays', () => {
    fc.assert(
      fc.property(fc.array(arbPair, { maxLength: 8 }), (pairs) => {
        const bytes = encodeTable({ a: pairs.map((p) => p[0]) });
        expect(decodeTable(bytes)).toEqual({ a: pairs.map((p) => p[1]) });
      }),
    );
  });

  it('writes the documented wire tag for each JavaScript type', () => {
    const cases: [unknown, string][] = [
      [true, 't'],
      [1, 'I'],
      [-2147483648, 'I'],
      [2147483648, 'l'],
      [Number.MAX_SAFE_INTEGER, 'l'],
      [2 ** 60, 'd'],
      [1.5, 'd'],
      [-0, 'd'],
      [Number.NaN, 'd'],
      [10n, 'l'],
      ['s', 'S'],
      [new Uint8Array(1), 'x'],
      [Buffer.alloc(1), 'x'],
      [new Date(0), 'T'],
      [new Decimal(1, 1), 'D'],
      [null, 'V'],
      [[1], 'A'],
      [{ a: 1 }, 'F'],
      [field.uint16(1), 'u'],
    ];
    for (const [value, tag] of cases) {
      expect([value, inferFieldType(value as never)]).toEqual([value, tag]);
      const bytes = encodeTable({ k: value as never });
      // u32 length, key length 1, key 'k', then the tag
      expect(String.fromCharCode(bytes[6]!)).toBe(tag);
    }
  });

  it('encodes a known table to known bytes', () => {
    const bytes = encodeTable({ a: 1, b: 'hi', c: true, d: null });
    expect(bytes.toString('hex')).toBe(
      [
        '00000017', // table length 23
        '0161',
        '49',
        '00000001', // a: I 1
        '0162',
        '53',
        '00000002',
        '6869', // b: S "hi"
        '0163',
        '74',
        '01', // c: t true
        '0164',
        '56', // d: V
      ].join(''),
    );
  });

  it('remembers tags that inference would not reproduce, and only those', () => {
    const bytes = encodeTable({
      i8: field.int8(-1),
      u8: field.uint8(1),
      i16: field.int16(-1),
      u16: field.uint16(1),
      u32: field.uint32(1),
      i64: field.int64(1),
      f32: field.float32(0.5),
      d: field.float64(2),
      plainInt: 7,
      plainString: 'x',
      list: [field.int8(1), 2],
    });
    const decoded = decodeTable(bytes);
    expect(fieldTypesOf(decoded)).toEqual({
      i8: 'b',
      u8: 'B',
      i16: 's',
      u16: 'u',
      u32: 'i',
      i64: 'l',
      f32: 'f',
      d: 'd',
    });
    expect(fieldTypesOf(decoded.list as never)).toEqual({ 0: 'b' });
    // The remembered tags are invisible to JSON, spreading and enumeration.
    expect(JSON.stringify(decoded)).not.toContain('rxamqp');
    expect(Object.keys(decoded)).toEqual(Object.keys({ ...decoded }));
    // A value replaced by one of another JavaScript type is encoded by inference again.
    const edited = decodeTable(encodeTable({ ...decoded, i8: 'now a string' }));
    expect(edited.i8).toBe('now a string');
  });

  it('keeps 64-bit integers exact', () => {
    for (const v of [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, -(2n ** 53n) - 1n]) {
      expect(decodeTable(encodeTable({ v })).v).toBe(v);
    }
    expect(decodeTable(encodeTable({ v: 2n ** 53n - 1n })).v).toBe(2 ** 53 - 1);
  });

  it('decodes a key named __proto__ as data without touching the prototype', () => {
    const w = new Writer(64);
    w.u32(0);
    w.shortstr('__proto__');
    w.fieldValue({ polluted: true });
    (w.buf as Buffer).writeUInt32BE(w.pos - 4, 0);
    const decoded = decodeTable((w.buf as Buffer).subarray(0, w.pos));
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.hasOwn(decoded, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('leaves out keys whose value is undefined', () => {
    expect(decodeTable(encodeTable({ a: undefined, b: 1 }))).toEqual({ b: 1 });
  });

  it('accepts nesting up to the limit and rejects deeper nesting on both sides', () => {
    const nest = (depth: number): FieldTable => {
      let t: FieldTable = { leaf: 1 };
      for (let i = 1; i < depth; i++) t = { t };
      return t;
    };
    expect(decodeTable(encodeTable(nest(MAX_TABLE_DEPTH)))).toEqual(nest(MAX_TABLE_DEPTH));
    const tooDeep = thrown(() => encodeTable(nest(MAX_TABLE_DEPTH + 1)));
    expect(tooDeep).toBeInstanceOf(EncodeError);
    expect((tooDeep as EncodeError).code).toBe('TABLE_TOO_DEEP');
    const circular: FieldTable = {};
    circular.self = circular;
    expect((thrown(() => encodeTable(circular)) as EncodeError).code).toBe('TABLE_TOO_DEEP');
  });

  it('rejects values the wire cannot carry with EncodeError', () => {
    const bad: [FieldTable, string][] = [
      [{ f: (() => 1) as never }, 'INVALID_VALUE'],
      [{ s: Symbol('x') as never }, 'INVALID_VALUE'],
      [{ u: field.uint8(256) }, 'VALUE_OUT_OF_RANGE'],
      [{ i: field.int8(1.5) }, 'VALUE_OUT_OF_RANGE'],
      [{ l: 2n ** 63n }, 'VALUE_OUT_OF_RANGE'],
      [{ t: field.timestamp(new Date(Number.NaN)) }, 'VALUE_OUT_OF_RANGE'],
      [{ d: new Decimal(256, 1) }, 'VALUE_OUT_OF_RANGE'],
      [{ [`k${'x'.repeat(255)}`]: 1 }, 'STRING_TOO_LONG'],
      [{ m: field.int8('1' as never) }, 'INVALID_VALUE'],
    ];
    for (const [table, code] of bad) {
      const e = thrown(() => encodeTable(table));
      expect(e).toBeInstanceOf(EncodeError);
      expect([Object.keys(table)[0], (e as EncodeError).code]).toEqual([Object.keys(table)[0], code]);
    }
  });

  it('rejects unknown tags and lengths past the table end with FrameError 502', () => {
    const unknownTag = Buffer.from('0000000301615a', 'hex'); // key "a", tag 'Z'
    const e1 = thrown(() => decodeTable(unknownTag));
    expect(e1).toBeInstanceOf(FrameError);
    expect([(e1 as FrameError).replyCode, (e1 as FrameError).code]).toEqual([502, 'UNKNOWN_FIELD_TYPE']);
    // A long string that claims 4 GiB inside a 10-byte table: rejected before any allocation.
    const overlong = Buffer.from('0000000a016153ffffffff0000', 'hex');
    const e2 = thrown(() => decodeTable(overlong));
    expect([(e2 as FrameError).replyCode, (e2 as FrameError).code]).toEqual([502, 'TRUNCATED_FIELD']);
  });

  it('formats decimals exactly', () => {
    expect(new Decimal(2, 1999).toString()).toBe('19.99');
    expect(new Decimal(3, 5).toString()).toBe('0.005');
    expect(new Decimal(0, 42).toString()).toBe('42');
    expect(new Decimal(2, 1999).toNumber()).toBeCloseTo(19.99);
  });
});
