/**
 * The codec's one platform adapter: the byte operations it needs, chosen once when the module loads.
 *
 * Everywhere the codec works on `Uint8Array`s. Where Node's `Buffer` exists (found by a runtime lookup
 * on `globalThis`, never by name or import, so that a browser bundle pulls in no polyfill) the bytes
 * it allocates are `Buffer`s (a `Uint8Array` subclass, so message bodies are real Buffers in Node) and
 * the operations are Buffer's own native ones, which are the fastest there. Elsewhere they are plain
 * `Uint8Array`s with `TextEncoder`/`TextDecoder`/`DataView`.
 *
 * Each export is one of two functions fixed at load, so a call site always sees the same target and
 * V8 inlines it: the hot path in Node does the same Buffer calls as when the codec used Buffer
 * directly.
 *
 * In Node the text functions expect bytes this module allocated (or any `Buffer`): callers convert a
 * foreign `Uint8Array` with {@link asBytes} first.
 *
 * @module
 * @internal
 */

/** The parts of Node's Buffer the adapter uses (declared here so the codec never names Node types). */
interface NodeBytes extends Uint8Array {
  utf8Slice(start: number, end: number): string;
  utf8Write(s: string, offset: number, maxLength: number): number;
  copy(target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number): number;
}
interface NodeBufferClass {
  allocUnsafe(size: number): NodeBytes;
  allocUnsafeSlow(size: number): NodeBytes;
  from(memory: ArrayBuffer, offset: number, length: number): NodeBytes;
  byteLength(s: string, encoding: 'utf8'): number;
  isBuffer(value: unknown): boolean;
}

/** The standard text codecs, declared here because the codec's `lib` has no DOM types. */
interface Utf8Decoder {
  decode(bytes: Uint8Array): string;
}
interface Utf8Encoder {
  encodeInto(s: string, into: Uint8Array): { written: number };
}
const platform = globalThis as unknown as {
  Buffer?: NodeBufferClass;
  TextDecoder?: new () => Utf8Decoder;
  TextEncoder?: new () => Utf8Encoder;
};
const NodeBuffer: NodeBufferClass | undefined = platform.Buffer;

/**
 * True when the adapter uses Node's Buffer.
 *
 * @example
 * ```ts
 * if (NODE_BYTES) console.log('bodies are Buffers');
 * ```
 */
export const NODE_BYTES: boolean = NodeBuffer !== undefined;

const textDecoder: Utf8Decoder | undefined =
  platform.TextDecoder === undefined ? undefined : new platform.TextDecoder();
const textEncoder: Utf8Encoder | undefined =
  platform.TextEncoder === undefined ? undefined : new platform.TextEncoder();

/**
 * New bytes whose contents are undefined (Node: `Buffer.allocUnsafe`, from Node's pool when small).
 *
 * @example
 * ```ts
 * const scratch = allocBytes(64);
 * ```
 */
export const allocBytes: (size: number) => Uint8Array =
  NodeBuffer !== undefined ? (size) => NodeBuffer.allocUnsafe(size) : (size) => new Uint8Array(size);

/**
 * New bytes with memory of their own, never from a shared pool (Node: `Buffer.allocUnsafeSlow`): for
 * slabs and large bodies, which should not pin a pool.
 *
 * @example
 * ```ts
 * const slab = allocBytesSlow(32 * 1024);
 * ```
 */
export const allocBytesSlow: (size: number) => Uint8Array =
  NodeBuffer !== undefined ? (size) => NodeBuffer.allocUnsafeSlow(size) : (size) => new Uint8Array(size);

/**
 * Bytes over a range of an ArrayBuffer, without copying. In Node, `Buffer.from(memory, offset, length)`
 * costs about half of `subarray()`: this runs once per decoded message.
 *
 * @example
 * ```ts
 * const body = bytesView(slab.buffer, 64, 256);
 * ```
 */
export const bytesView: (memory: ArrayBufferLike, offset: number, length: number) => Uint8Array =
  NodeBuffer !== undefined
    ? (memory, offset, length) => NodeBuffer.from(memory as ArrayBuffer, offset, length)
    : (memory, offset, length) => new Uint8Array(memory, offset, length);

/**
 * The same bytes as this module allocates them: a `Uint8Array` that is not a Buffer becomes a Buffer
 * over the same memory in Node (no copy); elsewhere it is returned as is.
 *
 * @example
 * ```ts
 * const chunk = asBytes(new Uint8Array(socketData));
 * ```
 */
export const asBytes: (bytes: Uint8Array) => Uint8Array =
  NodeBuffer !== undefined
    ? (bytes) =>
        NodeBuffer.isBuffer(bytes)
          ? bytes
          : NodeBuffer.from(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength)
    : (bytes) => bytes;

/**
 * Copies `source[sourceStart..sourceEnd)` into `target` at `targetStart` (Node: `Buffer.copy`).
 *
 * @example
 * ```ts
 * copyBytes(chunk, 7, 7 + n, body, received);
 * ```
 */
export const copyBytes: (
  source: Uint8Array,
  sourceStart: number,
  sourceEnd: number,
  target: Uint8Array,
  targetStart: number,
) => void =
  NodeBuffer !== undefined
    ? (source, sourceStart, sourceEnd, target, targetStart) => {
        (source as NodeBytes).copy(target, targetStart, sourceStart, sourceEnd);
      }
    : (source, sourceStart, sourceEnd, target, targetStart) => {
        target.set(source.subarray(sourceStart, sourceEnd), targetStart);
      };

/**
 * The UTF-8 text of `bytes[start..end)` (Node: `utf8Slice`, without the argument checks of
 * `toString()`; elsewhere a shared `TextDecoder`). Malformed sequences become U+FFFD.
 *
 * @example
 * ```ts
 * const exchange = utf8Slice(frame, 12, 18);
 * ```
 */
export const utf8Slice: (bytes: Uint8Array, start: number, end: number) => string =
  NodeBuffer !== undefined
    ? (bytes, start, end) => (bytes as NodeBytes).utf8Slice(start, end)
    : (bytes, start, end) => (textDecoder as Utf8Decoder).decode(bytes.subarray(start, end));

/**
 * Writes `s` as UTF-8 into `bytes` at `offset`, at most `maxLength` bytes and never a partial
 * character; returns the bytes written (Node: `utf8Write`; elsewhere `TextEncoder.encodeInto`).
 *
 * @example
 * ```ts
 * const n = utf8Write(buf, 'héllo', 4, 15); // 6
 * ```
 */
export const utf8Write: (bytes: Uint8Array, s: string, offset: number, maxLength: number) => number =
  NodeBuffer !== undefined
    ? (bytes, s, offset, maxLength) => (bytes as NodeBytes).utf8Write(s, offset, maxLength)
    : (bytes, s, offset, maxLength) =>
        (textEncoder as Utf8Encoder).encodeInto(s, bytes.subarray(offset, offset + maxLength)).written;

/**
 * The length of `s` in UTF-8 bytes.
 *
 * @example
 * ```ts
 * utf8Length('héllo'); // 6
 * ```
 */
export const utf8Length: (s: string) => number =
  NodeBuffer !== undefined ? (s) => NodeBuffer.byteLength(s, 'utf8') : utf8LengthPortable;

/**
 * `s` as new UTF-8 bytes (a Buffer in Node, so that a string published as a body is a Buffer there).
 *
 * @example
 * ```ts
 * utf8Encode('héllo').length; // 6
 * ```
 */
export function utf8Encode(s: string): Uint8Array {
  const length = utf8Length(s);
  const bytes = allocBytes(length);
  utf8Write(bytes, s, 0, length);
  return bytes;
}

/**
 * The UTF-8 text of any `Uint8Array` (a foreign one is viewed with {@link asBytes} first).
 *
 * @example
 * ```ts
 * utf8Decode(delivery.body); // 'hello'
 * ```
 */
export function utf8Decode(bytes: Uint8Array): string {
  return utf8Slice(asBytes(bytes), 0, bytes.length);
}

/** UTF-8 length from the UTF-16 code units; lone surrogates count as U+FFFD (3 bytes), as encoders write them. */
function utf8LengthPortable(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/**
 * `a` and `b`, ... as one new array of bytes.
 *
 * @example
 * ```ts
 * concatBytes([header, body]).length === header.length + body.length; // true
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = allocBytes(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Eight bytes to move 32- and 64-bit floats through DataView big-endian (not per-message work). */
const scratch = new Uint8Array(8);
const scratchView = new DataView(scratch.buffer);

/**
 * The big-endian IEEE 754 single at `bytes[pos..pos+4)`.
 *
 * @example
 * ```ts
 * readF32(new Uint8Array([0x3f, 0xc0, 0, 0]), 0); // 1.5
 * ```
 */
export function readF32(bytes: Uint8Array, pos: number): number {
  for (let i = 0; i < 4; i++) scratch[i] = bytes[pos + i]!;
  return scratchView.getFloat32(0);
}

/**
 * The big-endian IEEE 754 double at `bytes[pos..pos+8)`.
 *
 * @example
 * ```ts
 * readF64(bytes, 0);
 * ```
 */
export function readF64(bytes: Uint8Array, pos: number): number {
  for (let i = 0; i < 8; i++) scratch[i] = bytes[pos + i]!;
  return scratchView.getFloat64(0);
}

/**
 * Writes `v` as a big-endian IEEE 754 single at `bytes[pos..pos+4)`.
 *
 * @example
 * ```ts
 * writeF32(buf, 0, 1.5); // 3f c0 00 00
 * ```
 */
export function writeF32(bytes: Uint8Array, pos: number, v: number): void {
  scratchView.setFloat32(0, v);
  for (let i = 0; i < 4; i++) bytes[pos + i] = scratch[i]!;
}

/**
 * Writes `v` as a big-endian IEEE 754 double at `bytes[pos..pos+8)`.
 *
 * @example
 * ```ts
 * writeF64(buf, 0, 1.5);
 * ```
 */
export function writeF64(bytes: Uint8Array, pos: number, v: number): void {
  scratchView.setFloat64(0, v);
  for (let i = 0; i < 8; i++) bytes[pos + i] = scratch[i]!;
}

const TWO_32 = 4294967296;

/**
 * The big-endian two's-complement 64-bit integer at `bytes[pos..pos+8)`: a number when it is a safe
 * integer, otherwise a bigint.
 *
 * @example
 * ```ts
 * readI64(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]), 0); // -2
 * ```
 */
export function readI64(bytes: Uint8Array, pos: number): number | bigint {
  const hi = (bytes[pos]! << 24) | (bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!;
  const lo =
    bytes[pos + 4]! * 0x1000000 + ((bytes[pos + 5]! << 16) | (bytes[pos + 6]! << 8) | bytes[pos + 7]!);
  const v = hi * TWO_32 + lo;
  // Exact whenever |v| < 2^53; otherwise (or at -2^53, not a safe integer) the bigint is exact.
  return Number.isSafeInteger(v) ? v : (BigInt(hi) << 32n) + BigInt(lo);
}

/**
 * Writes a 64-bit integer (a safe integer or a bigint in int64 range, checked by the caller) big-endian
 * two's complement at `bytes[pos..pos+8)`.
 *
 * @example
 * ```ts
 * writeI64(buf, 0, -2); // ff ff ff ff ff ff ff fe
 * ```
 */
export function writeI64(bytes: Uint8Array, pos: number, v: number | bigint): void {
  let hi: number;
  let lo: number;
  if (typeof v === 'number') {
    hi = Math.floor(v / TWO_32);
    lo = v - hi * TWO_32;
  } else {
    hi = Number(BigInt.asIntN(32, v >> 32n));
    lo = Number(BigInt.asUintN(32, v));
  }
  bytes[pos] = (hi >>> 24) & 0xff;
  bytes[pos + 1] = (hi >>> 16) & 0xff;
  bytes[pos + 2] = (hi >>> 8) & 0xff;
  bytes[pos + 3] = hi & 0xff;
  bytes[pos + 4] = lo >>> 24;
  bytes[pos + 5] = (lo >>> 16) & 0xff;
  bytes[pos + 6] = (lo >>> 8) & 0xff;
  bytes[pos + 7] = lo & 0xff;
}
