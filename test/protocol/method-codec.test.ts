/**
 * The table-driven method codec (src/protocol/method-codec.ts) against the generated code of the hot
 * methods: both must write the same bytes and build the same objects, with the same properties in the
 * same order, so that a method decodes alike whichever path it takes.
 */
import fc from 'fast-check';
import { EncodeError, FrameError } from '../../src/errors.js';
import {
  decodeMethodArgs,
  encodeMethod,
  METHOD_INFO,
  METHOD_TABLE,
  type MethodInit,
  type MethodName,
} from '../../src/protocol/generated.js';
import { decodeArguments, EMPTY_TABLE, encodeArguments } from '../../src/protocol/method-codec.js';
import { Reader } from '../../src/protocol/reader.js';
import { Writer } from '../../src/protocol/writer.js';
import { arbMethodPair, thrown } from './support.js';

const HOT: MethodName[] = ['basic.deliver', 'basic.ack', 'basic.nack', 'basic.reject'];

function def(name: MethodName) {
  const d = METHOD_TABLE.byName.get(name);
  if (d === undefined) throw new Error(`no ${name} in the table`);
  return d;
}

function generated(m: Record<string, unknown>): Buffer {
  const w = new Writer(16);
  encodeMethod(w, m as unknown as MethodInit);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

function tableDriven(m: Record<string, unknown>): Buffer {
  const w = new Writer(16);
  encodeArguments(w, def(m.name as MethodName), m);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

/** The method object and its keys in order (toEqual does not see the order). */
function decoded(bytes: Buffer, generic: boolean): [unknown, string[]] {
  const r = new Reader().reset(bytes, 4, bytes.length);
  const classId = bytes.readUInt16BE(0);
  const methodId = bytes.readUInt16BE(2);
  const m = generic
    ? decodeArguments(r, METHOD_TABLE.byId.get((classId << 16) | methodId)!)
    : decodeMethodArgs(r, classId, methodId)!;
  expect(r.pos).toBe(bytes.length);
  return [m, Object.keys(m)];
}

describe('the table-driven method codec', () => {
  it.each(HOT)('encodes and decodes %s exactly as its generated code does', (name) => {
    fc.assert(
      fc.property(arbMethodPair(name), ([input]) => {
        const bytes = generated(input);
        expect(tableDriven(input)).toEqual(bytes);
        expect(decoded(bytes, true)).toEqual(decoded(bytes, false));
      }),
      { numRuns: 200 },
    );
  });

  it('fills defaults for arguments left out, undefined or null, as the generated code does', () => {
    for (const m of [
      { name: 'basic.ack' },
      { name: 'basic.ack', deliveryTag: null, multiple: null },
      { name: 'basic.nack', deliveryTag: 7, multiple: undefined, requeue: false },
      { name: 'basic.reject', deliveryTag: 9 },
    ]) {
      expect(tableDriven(m)).toEqual(generated(m));
    }
  });

  it('fails alike on a value the wire cannot carry, naming the field', () => {
    for (const m of [
      { name: 'basic.ack', deliveryTag: -1 },
      { name: 'basic.ack', deliveryTag: 'x' },
      { name: 'basic.reject' }, // a required argument left out
      { name: 'basic.reject', deliveryTag: 2 ** 53 },
    ]) {
      const a = thrown(() => generated(m)) as EncodeError;
      const b = thrown(() => tableDriven(m)) as EncodeError;
      expect(b).toBeInstanceOf(EncodeError);
      expect([b.code, b.message]).toEqual([a.code, a.message]);
    }
    // A short string over 255 bytes names the argument by its name in the specification.
    const e = thrown(() =>
      tableDriven({ name: 'basic.consume', queue: 'q', consumerTag: 'c'.repeat(256) }),
    ) as EncodeError;
    expect([e.code, e.message]).toEqual(['STRING_TOO_LONG', 'consumer-tag is longer than 255 bytes']);
  });

  it('decodes a delivery tag of 2^53 or more as INTEGER_TOO_LARGE naming the argument', () => {
    const bytes = Buffer.from('003c005000200000000000000000', 'hex'); // basic.ack, tag 2^53
    const a = thrown(() => decoded(bytes, false)) as FrameError;
    const b = thrown(() => decoded(bytes, true)) as FrameError;
    expect(b).toBeInstanceOf(FrameError);
    expect([b.code, b.message]).toEqual([a.code, a.message]);
    expect(b.message).toBe('delivery-tag does not fit in a safe integer');
  });

  it('packs more than eight bits into a second octet', () => {
    // No method has nine bits in a row; a made-up one checks the rule the codec shares with the spec.
    const bits = Array.from({ length: 9 }, (_, i) => `b${i}`);
    const nine = {
      name: 'test.nine',
      id: 0x00ff0001,
      info: { classId: 255, methodId: 1, synchronous: false, content: false, replies: [] },
      types: 'bbbbbbbbbs',
      props: [...bits, 'after'],
      specNames: [...bits, 'after'],
      defaults: [...bits.map(() => false), 0],
    };
    const w = new Writer(4);
    encodeArguments(w, nine, { name: 'test.nine', b0: true, b7: true, b8: true, after: 258 });
    const bytes = Buffer.from(w.buf.subarray(0, w.pos));
    expect(bytes.toString('hex')).toBe('00ff0001' + '81' + '01' + '0102');
    const m = decodeArguments(new Reader().reset(bytes, 4, bytes.length), nine);
    expect(m).toEqual({
      name: 'test.nine',
      ...Object.fromEntries(bits.map((b) => [b, b === 'b0' || b === 'b7' || b === 'b8'])),
      after: 258,
    });
  });

  it('reads the table into the metadata of every method', () => {
    expect(METHOD_TABLE.byName.size).toBe(66);
    for (const [name, d] of METHOD_TABLE.byName) {
      expect(METHOD_INFO[name as MethodName]).toBe(d.info);
      expect(METHOD_TABLE.byId.get(d.id)).toBe(d);
      expect(d.id).toBe((d.info.classId << 16) | d.info.methodId);
    }
    expect(def('queue.declare').defaults).toEqual([0, '', false, false, false, false, false, EMPTY_TABLE]);
    expect(def('basic.nack').defaults).toEqual([0, false, true]);
    expect(def('connection.start-ok').types).toBe('FSXS');
  });
});
