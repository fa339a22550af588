/**
 * A bounds-checked cursor over a frame payload. Every read checks the bytes it needs against the end
 * of the payload first, so truncated or overlong fields raise a {@link FrameError} (502 syntax error)
 * instead of reading past the frame or allocating from an untrusted length.
 *
 * @module
 * @internal
 */
import { FrameError, HeadersDecodeError, SYNTAX_ERROR } from '../errors.js';
import { allocBytes, readF32, readF64, readI64, utf8Slice } from './bytes.js';
import {
  Decimal,
  type FieldTable,
  type FieldType,
  type FieldValue,
  rememberFieldType,
} from './field-table.js';

/**
 * Deepest nesting of tables and arrays accepted from the peer (and written by the encoder).
 *
 * @example
 * ```ts
 * MAX_TABLE_DEPTH; // 32: a table nested 33 deep is a FrameError (502) or an EncodeError
 * ```
 */
export const MAX_TABLE_DEPTH = 32;

const EMPTY: Uint8Array = allocBytes(0);

/**
 * Short strings repeat across frames (consumer tags, exchanges, routing keys, content types, header
 * names): a small direct-mapped cache returns the same string for the same bytes without decoding
 * them again. Slot i keeps a copy of its bytes in a fixed arena at i * CACHEABLE_LENGTH, so neither a
 * hit nor a miss allocates anything but the decoded string, and nothing refers to the input.
 */
const CACHE_SLOTS = 512;
const CACHEABLE_LENGTH = 48;
const cacheArena = new Uint8Array(CACHE_SLOTS * CACHEABLE_LENGTH);
const cacheLengths = new Int16Array(CACHE_SLOTS).fill(-1);
const cachedStrings: string[] = new Array<string>(CACHE_SLOTS).fill('');

function cachedString(b: Uint8Array, p: number, len: number): string {
  const slot = (len * 7 + b[p]! * 31 + b[p + len - 1]! * 17 + b[p + (len >> 1)]! * 3) & (CACHE_SLOTS - 1);
  const base = slot * CACHEABLE_LENGTH;
  if (cacheLengths[slot] === len) {
    let i = 0;
    while (i < len && cacheArena[base + i] === b[p + i]) i++;
    if (i === len) return cachedStrings[slot]!;
  }
  const s = utf8Slice(b, p, p + len);
  for (let i = 0; i < len; i++) cacheArena[base + i] = b[p + i]!;
  cacheLengths[slot] = len;
  cachedStrings[slot] = s;
  return s;
}
const TWO_32 = 4294967296;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

function truncated(what: string): FrameError {
  return new FrameError(SYNTAX_ERROR, 'TRUNCATED_FIELD', `frame payload ends inside ${what}`);
}

/**
 * @internal In Node, `buf` must be a Buffer (bytes from `./bytes.js` or {@link asBytes}): strings are
 * decoded with Buffer's own UTF-8 decoder.
 */
export class Reader {
  buf: Uint8Array = EMPTY;
  pos = 0;
  end = 0;
  private depth = 0;
  /** Set by {@link headersTable} when it skipped a headers table it could not decode. */
  headersError: HeadersDecodeError | undefined = undefined;

  reset(buf: Uint8Array, pos: number, end: number): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.depth = 0;
    this.headersError = undefined;
    return this;
  }

  /** Drops the reference to the last frame's bytes. */
  release(): void {
    this.buf = EMPTY;
    this.pos = 0;
    this.end = 0;
  }

  private need(n: number, what: string): void {
    if (this.end - this.pos < n) throw truncated(what);
  }

  u8(): number {
    if (this.pos >= this.end) throw truncated('an octet');
    return this.buf[this.pos++]!;
  }

  i8(): number {
    const v = this.u8();
    return v > 127 ? v - 256 : v;
  }

  u16(): number {
    this.need(2, 'a short');
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  i16(): number {
    const v = this.u16();
    return v > 32767 ? v - 65536 : v;
  }

  u32(): number {
    this.need(4, 'a long');
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  i32(): number {
    this.need(4, 'a long');
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }

  /**
   * An unsigned 64-bit integer that must be a safe JavaScript integer (delivery tags, body sizes).
   * Larger values raise a 502 syntax error rather than losing precision.
   */
  u64(what = 'a long long'): number {
    this.need(8, 'a long long');
    const hi = this.u32();
    const lo = this.u32();
    if (hi > 0x1fffff) {
      throw new FrameError(SYNTAX_ERROR, 'INTEGER_TOO_LARGE', `${what} does not fit in a safe integer`);
    }
    return hi * TWO_32 + lo;
  }

  /** A signed 64-bit integer: a number when it is a safe integer, otherwise a bigint. */
  i64(): number | bigint {
    this.need(8, 'a long long');
    const v = readI64(this.buf, this.pos);
    this.pos += 8;
    return v;
  }

  f32(): number {
    this.need(4, 'a float');
    const v = readF32(this.buf, this.pos);
    this.pos += 4;
    return v;
  }

  f64(): number {
    this.need(8, 'a double');
    const v = readF64(this.buf, this.pos);
    this.pos += 8;
    return v;
  }

  shortstr(): string {
    const len = this.u8();
    if (len === 0) return '';
    this.need(len, 'a short string');
    const p = this.pos;
    this.pos = p + len;
    return len <= CACHEABLE_LENGTH ? cachedString(this.buf, p, len) : utf8Slice(this.buf, p, p + len);
  }

  longstr(): string {
    const len = this.u32();
    if (len === 0) return '';
    this.need(len, 'a long string');
    const p = this.pos;
    this.pos = p + len;
    return len <= CACHEABLE_LENGTH ? cachedString(this.buf, p, len) : utf8Slice(this.buf, p, p + len);
  }

  /**
   * A long string kept as bytes (SASL responses and challenges, `x` field values). The bytes are
   * copied (a Buffer in Node).
   */
  longbytes(): Uint8Array {
    const len = this.u32();
    this.need(len, 'a long string');
    const p = this.pos;
    this.pos = p + len;
    const out = allocBytes(len);
    out.set(this.buf.subarray(p, p + len));
    return out;
  }

  timestamp(): Date {
    return new Date(this.u64('a timestamp') * 1000);
  }

  table(): FieldTable {
    const len = this.u32();
    this.need(len, 'a field table');
    return this.tableOf(len);
  }

  /**
   * The `headers` property of a content header. A table that cannot be decoded (an unknown tag, a
   * value truncated inside it, nesting too deep) is skipped, since its length is known and checked:
   * this returns undefined and sets {@link headersError}, so that one poison message does not take
   * the connection down. A length beyond the frame is still a FrameError.
   */
  headersTable(): FieldTable | undefined {
    const len = this.u32();
    this.need(len, 'a field table');
    const start = this.pos;
    const outerEnd = this.end;
    const depth = this.depth;
    try {
      return this.tableOf(len);
    } catch (e) {
      if (!(e instanceof FrameError)) throw e;
      const raw = allocBytes(len);
      raw.set(this.buf.subarray(start, start + len));
      this.headersError = new HeadersDecodeError(raw, e);
      this.pos = start + len;
      this.end = outerEnd;
      this.depth = depth;
      return undefined;
    }
  }

  /** The entries of a table of `len` bytes (checked present) from `pos`. */
  private tableOf(len: number): FieldTable {
    if (++this.depth > MAX_TABLE_DEPTH) {
      throw new FrameError(
        SYNTAX_ERROR,
        'TABLE_TOO_DEEP',
        `field tables nest deeper than ${MAX_TABLE_DEPTH}`,
      );
    }
    const outerEnd = this.end;
    this.end = this.pos + len;
    const table: FieldTable = {};
    while (this.pos < this.end) {
      const key = this.shortstr();
      const value = this.fieldValue(table, key);
      if (key === '__proto__') {
        Object.defineProperty(table, key, { value, enumerable: true, writable: true, configurable: true });
      } else {
        table[key] = value;
      }
    }
    this.end = outerEnd;
    this.depth--;
    return table;
  }

  array(): FieldValue[] {
    const len = this.u32();
    this.need(len, 'a field array');
    if (++this.depth > MAX_TABLE_DEPTH) {
      throw new FrameError(
        SYNTAX_ERROR,
        'TABLE_TOO_DEEP',
        `field tables nest deeper than ${MAX_TABLE_DEPTH}`,
      );
    }
    const outerEnd = this.end;
    this.end = this.pos + len;
    const array: FieldValue[] = [];
    while (this.pos < this.end) {
      array.push(this.fieldValue(array, String(array.length)));
    }
    this.end = outerEnd;
    this.depth--;
    return array;
  }

  /**
   * One tagged value. Tags whose JavaScript value would be encoded under another tag are remembered on
   * `owner` so that encoding the decoded table reproduces the same bytes.
   */
  private fieldValue(owner: object, key: string): FieldValue {
    const tag = this.u8();
    switch (tag) {
      case 0x74 /* t */:
        return this.u8() !== 0;
      case 0x62 /* b */:
        return this.remember(owner, key, 'b', this.i8());
      case 0x42 /* B */:
        return this.remember(owner, key, 'B', this.u8());
      case 0x73 /* s */:
        // RabbitMQ's errata: a signed 16-bit integer (the 0-9-1 spec's short string).
        return this.remember(owner, key, 's', this.i16());
      case 0x55 /* U */:
        // The 0-9-1 spec's signed 16-bit integer (RabbitMQ writes `s`).
        return this.remember(owner, key, 'U', this.i16());
      case 0x75 /* u */:
        return this.remember(owner, key, 'u', this.u16());
      case 0x49 /* I */:
        return this.i32();
      case 0x69 /* i */:
        return this.remember(owner, key, 'i', this.u32());
      case 0x6c /* l */:
        // Signed 64-bit, as RabbitMQ reads and writes it (the spec says unsigned).
        {
          const v = this.i64();
          if (typeof v === 'number' && v >= INT32_MIN && v <= INT32_MAX) rememberFieldType(owner, key, 'l');
          return v;
        }
      case 0x4c /* L */:
        {
          // The spec's signed 64-bit integer, as py-amqp writes integers beyond int32.
          const v = this.i64();
          rememberFieldType(owner, key, 'L');
          return v;
        }
      case 0x66 /* f */:
        return this.remember(owner, key, 'f', this.f32());
      case 0x64 /* d */:
        {
          const v = this.f64();
          if (Number.isInteger(v) && Number.isSafeInteger(v)) rememberFieldType(owner, key, 'd');
          return v;
        }
      case 0x44 /* D */:
        {
          // A scale octet and a signed 32-bit value, as the Java client and pika write it.
          const scale = this.u8();
          return new Decimal(scale, this.i32());
        }
      case 0x53 /* S */:
        return this.longstr();
      case 0x78 /* x */:
        return this.longbytes();
      case 0x41 /* A */:
        return this.array();
      case 0x54 /* T */:
        return this.timestamp();
      case 0x46 /* F */:
        return this.table();
      case 0x56 /* V */:
        return null;
      default:
        throw new FrameError(
          SYNTAX_ERROR,
          'UNKNOWN_FIELD_TYPE',
          `unknown field value type 0x${tag.toString(16).padStart(2, '0')} in a field table`,
        );
    }
  }

  private remember(owner: object, key: string, type: FieldType, value: number): number {
    rememberFieldType(owner, key, type);
    return value;
  }
}

/** @internal A reply code for "the payload had bytes left over after its last field". */
export function trailingBytes(what: string, channel: number): FrameError {
  return new FrameError(SYNTAX_ERROR, 'TRAILING_BYTES', `${what} has bytes after its last field`, channel);
}
