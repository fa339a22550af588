/**
 * A growable output cursor with range-checked primitive writers. Every write validates its value and
 * raises {@link EncodeError} for anything the wire cannot carry; callers roll back `pos` on error.
 *
 * @module
 * @internal
 */
import { EncodeError } from '../errors.js';
import { allocBytes, copyBytes, utf8Length, utf8Write, writeF32, writeF64, writeI64 } from './bytes.js';
import {
  Decimal,
  FIELD_TYPES,
  type FieldTable,
  type FieldType,
  type FieldTypeMap,
  type FieldValue,
  TypedField,
} from './field-table.js';
import { MAX_TABLE_DEPTH } from './reader.js';

const TWO_32 = 4294967296;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function rangeError(what: string, value: unknown): EncodeError {
  return new EncodeError('VALUE_OUT_OF_RANGE', `${what} out of range: ${describe(value)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  return `a ${Object.prototype.toString.call(value).slice(8, -1)}`;
}

/**
 * @internal `buf` is always bytes from `./bytes.js` (a Buffer in Node), so strings are encoded with
 * Buffer's own UTF-8 encoder there.
 */
export class Writer {
  buf: Uint8Array;
  pos = 0;
  private depth = 0;

  constructor(size = 65536) {
    this.buf = allocBytes(size);
  }

  /** Makes room for `n` more bytes, growing (and copying) when needed. */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  protected grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = allocBytes(size);
    copyBytes(this.buf, 0, this.pos, next, 0);
    this.buf = next;
  }

  u8(v: number): void {
    if ((v & 0xff) !== v) throw rangeError('octet', v);
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  i8(v: number): void {
    if ((v << 24) >> 24 !== v) throw rangeError('int8', v);
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
  }

  u16(v: number): void {
    if ((v & 0xffff) !== v) throw rangeError('short', v);
    this.ensure(2);
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 8;
    b[p + 1] = v & 0xff;
    this.pos = p + 2;
  }

  i16(v: number): void {
    if ((v << 16) >> 16 !== v) throw rangeError('int16', v);
    this.u16(v & 0xffff);
  }

  u32(v: number): void {
    if (v >>> 0 !== v) throw rangeError('long', v);
    this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 24;
    b[p + 1] = (v >>> 16) & 0xff;
    b[p + 2] = (v >>> 8) & 0xff;
    b[p + 3] = v & 0xff;
    this.pos = p + 4;
  }

  i32(v: number): void {
    if ((v | 0) !== v) throw rangeError('int32', v);
    this.u32(v >>> 0);
  }

  /** An unsigned 64-bit integer from a non-negative safe integer (delivery tags, body sizes). */
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw rangeError('long long', v);
    const hi = Math.floor(v / TWO_32);
    this.u32(hi);
    this.u32(v - hi * TWO_32);
  }

  i64(v: number | bigint): void {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw rangeError('int64', v);
    } else if (typeof v !== 'bigint' || v < INT64_MIN || v > INT64_MAX) throw rangeError('int64', v);
    this.ensure(8);
    writeI64(this.buf, this.pos, v);
    this.pos += 8;
  }

  f32(v: number): void {
    if (typeof v !== 'number') throw rangeError('float', v);
    this.ensure(4);
    writeF32(this.buf, this.pos, v);
    this.pos += 4;
  }

  f64(v: number): void {
    if (typeof v !== 'number') throw rangeError('double', v);
    this.ensure(8);
    writeF64(this.buf, this.pos, v);
    this.pos += 8;
  }

  /** A short string: at most 255 UTF-8 bytes after a length octet. */
  shortstr(s: string, what = 'short string'): void {
    if (typeof s !== 'string')
      throw new EncodeError('INVALID_VALUE', `${what} must be a string, got ${describe(s)}`);
    const n = s.length;
    if (n > 255) throw tooLong(what);
    this.ensure(1 + n * 3);
    const b = this.buf;
    const start = this.pos + 1;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      b[start + i] = c;
    }
    const len = i === n ? n : utf8Write(b, s, start, n * 3);
    if (len > 255) throw tooLong(what);
    b[this.pos] = len;
    this.pos = start + len;
  }

  /** A long string: a 32-bit length and UTF-8 bytes (or the bytes given). */
  longstr(s: string | Uint8Array, what = 'long string'): void {
    if (typeof s === 'string') {
      const n = s.length;
      if (n <= 64) {
        // Short strings: copy ASCII directly, patch the length after.
        this.ensure(4 + n * 3);
        const b = this.buf;
        const start = this.pos + 4;
        let i = 0;
        for (; i < n; i++) {
          const c = s.charCodeAt(i);
          if (c > 0x7f) break;
          b[start + i] = c;
        }
        const len = i === n ? n : utf8Write(b, s, start, n * 3);
        this.pos = start + len;
        this.patchLength(start - 4);
        return;
      }
      const len = utf8Length(s);
      this.ensure(4 + len);
      this.u32(len);
      this.pos += utf8Write(this.buf, s, this.pos, len);
    } else if (s instanceof Uint8Array) {
      this.ensure(4 + s.length);
      this.u32(s.length);
      this.buf.set(s, this.pos);
      this.pos += s.length;
    } else {
      throw new EncodeError('INVALID_VALUE', `${what} must be a string or bytes, got ${describe(s)}`);
    }
  }

  timestamp(d: Date): void {
    const ms = d instanceof Date ? d.getTime() : Number.NaN;
    if (!Number.isFinite(ms) || ms < 0) throw rangeError('timestamp', d);
    this.u64(Math.floor(ms / 1000));
  }

  table(t: FieldTable): void {
    if (typeof t !== 'object' || t === null || Array.isArray(t)) {
      throw new EncodeError('INVALID_VALUE', `field table must be an object, got ${describe(t)}`);
    }
    this.enter();
    this.ensure(4);
    const lenAt = this.pos;
    this.pos += 4;
    const types = fieldTypeMap(t);
    const keys = Object.keys(t);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const value = t[key];
      if (value === undefined) continue;
      if (key.length > 255) throw tooLong(`field table key "${key.slice(0, 32)}"`);
      this.shortstr(key, 'field table key');
      this.fieldValue(value, types?.[key]);
    }
    this.patchLength(lenAt);
    this.depth--;
  }

  array(a: readonly FieldValue[]): void {
    this.enter();
    this.ensure(4);
    const lenAt = this.pos;
    this.pos += 4;
    const types = fieldTypeMap(a);
    for (let i = 0; i < a.length; i++) {
      const value = a[i];
      this.fieldValue(value === undefined ? null : value, types?.[i]);
    }
    this.patchLength(lenAt);
    this.depth--;
  }

  private enter(): void {
    if (++this.depth > MAX_TABLE_DEPTH) {
      this.depth = 0;
      throw new EncodeError(
        'TABLE_TOO_DEEP',
        `field tables nest deeper than ${MAX_TABLE_DEPTH} (is the value circular?)`,
      );
    }
  }

  private patchLength(lenAt: number): void {
    const len = this.pos - lenAt - 4;
    const b = this.buf;
    b[lenAt] = len >>> 24;
    b[lenAt + 1] = (len >>> 16) & 0xff;
    b[lenAt + 2] = (len >>> 8) & 0xff;
    b[lenAt + 3] = len & 0xff;
  }

  /** Resets the nesting counter after a failed encode. */
  resetDepth(): void {
    this.depth = 0;
  }

  /** One tagged field value; `hint` is a remembered tag from a decoded table. */
  fieldValue(value: FieldValue, hint?: FieldType): void {
    if (value instanceof TypedField) {
      this.tagged(value.type, value.value);
      return;
    }
    if (hint !== undefined && (typeof value === 'number' || typeof value === 'bigint')) {
      this.tagged(hint, value);
      return;
    }
    this.tagged(inferFieldType(value), value);
  }

  /** A value under an explicit tag, range-checked for that tag. */
  private tagged(type: FieldType, value: FieldValue): void {
    this.ensure(1);
    this.buf[this.pos++] = type.charCodeAt(0);
    switch (type) {
      case 't':
        if (typeof value !== 'boolean') throw mismatch(type, value);
        this.u8(value ? 1 : 0);
        return;
      case 'b':
        this.i8(num(type, value));
        return;
      case 'B':
        this.u8(num(type, value));
        return;
      case 's':
      case 'U':
        this.i16(num(type, value));
        return;
      case 'u':
        this.u16(num(type, value));
        return;
      case 'I':
        this.i32(num(type, value));
        return;
      case 'i':
        this.u32(num(type, value));
        return;
      case 'l':
      case 'L':
        if (typeof value !== 'number' && typeof value !== 'bigint') throw mismatch(type, value);
        this.i64(value);
        return;
      case 'f':
        this.f32(num(type, value));
        return;
      case 'd':
        this.f64(num(type, value));
        return;
      case 'D':
        if (!(value instanceof Decimal)) throw mismatch(type, value);
        this.u8(value.scale);
        this.i32(value.value);
        return;
      case 'S':
        if (typeof value !== 'string') throw mismatch(type, value);
        this.longstr(value);
        return;
      case 'x':
        if (!(value instanceof Uint8Array)) throw mismatch(type, value);
        this.longstr(value);
        return;
      case 'A':
        if (!Array.isArray(value)) throw mismatch(type, value);
        this.array(value);
        return;
      case 'T':
        if (!(value instanceof Date)) throw mismatch(type, value);
        this.timestamp(value);
        return;
      case 'F':
        this.table(value as FieldTable);
        return;
      case 'V':
        if (value !== null && value !== undefined) throw mismatch(type, value);
        return;
      default:
        throw new EncodeError('INVALID_VALUE', `unknown field type tag ${describe(type)}`);
    }
  }
}

function fieldTypeMap(target: object): FieldTypeMap | undefined {
  return (target as { [FIELD_TYPES]?: FieldTypeMap })[FIELD_TYPES];
}

function tooLong(what: string): EncodeError {
  return new EncodeError('STRING_TOO_LONG', `${what} is longer than 255 bytes`);
}

function num(type: FieldType, value: FieldValue): number {
  if (typeof value !== 'number') throw mismatch(type, value);
  return value;
}

function mismatch(type: FieldType, value: unknown): EncodeError {
  return new EncodeError('INVALID_VALUE', `field type '${type}' cannot carry ${describe(value)}`);
}

/**
 * The tag a value is encoded with when no tag is given: see the table in `field-table.ts`.
 *
 * @internal
 */
export function inferFieldType(value: FieldValue | undefined): FieldType {
  switch (typeof value) {
    case 'boolean':
      return 't';
    case 'number':
      if (Number.isInteger(value) && !Object.is(value, -0)) {
        if ((value | 0) === value) return 'I';
        if (Number.isSafeInteger(value)) return 'l';
      }
      return 'd';
    case 'bigint':
      return 'l';
    case 'string':
      return 'S';
    case 'undefined':
      return 'V';
    case 'object':
      if (value === null) return 'V';
      if (value instanceof Uint8Array) return 'x';
      if (value instanceof Date) return 'T';
      if (value instanceof Decimal) return 'D';
      if (value instanceof TypedField) return value.type;
      if (Array.isArray(value)) return 'A';
      return 'F';
    default:
      throw new EncodeError('INVALID_VALUE', `a field table cannot carry ${describe(value)}`);
  }
}
