/**
 * The frame writer: encodes methods, content headers and bodies (split by frame_max) into a pooled
 * output buffer. Bytes are handed out with {@link FrameWriter.take} as views of that buffer; a region
 * once handed out is never written again, so a transport may hold it until its write completes. When
 * the buffer is used up a fresh one is allocated and the old one is left to whoever still holds views,
 * unless the owner says (with the `released` option) that nothing handed out is held any more: then
 * the writer writes over its buffers again instead of allocating (a 1 MiB publish then costs a copy
 * into memory already in use, not a fresh megabyte whose pages the kernel must fault in one by one).
 * Publishing a message allocates nothing beyond copying its body into the buffer.
 *
 * @module
 */
import { EncodeError } from '../errors.js';
import { allocBytes, concatBytes, copyBytes } from './bytes.js';
import { frameLimit, NO_LIMIT } from './frame-decoder.js';
import {
  type BasicProperties,
  encodeBasicProperties,
  encodeMethod,
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  FRAME_MIN_SIZE,
  METHOD_INFO,
  type MethodInit,
} from './generated.js';
import { Writer } from './writer.js';

/**
 * Options of a {@link FrameWriter}.
 *
 * @example
 * ```ts
 * const writer = new FrameWriter({ frameMax: 131072, maxBodySize: 16 * 1024 * 1024 });
 * ```
 */
export interface FrameWriterOptions {
  /** Largest frame written, header and frame-end included. 4096 until the connection is tuned. */
  frameMax?: number;
  /** Largest message body accepted by {@link FrameWriter.writeContent}. Default 128 MiB. */
  maxBodySize?: number;
  /** Size of each pooled output buffer. Default 256 KiB. */
  chunkSize?: number;
  /**
   * Asked when the writer needs a fresh buffer: true means no byte handed out by {@link
   * FrameWriter.take} or {@link FrameWriter.takeSegments} so far is referenced any more (a socket has
   * written them all), so the writer may write over its buffers rather than allocate. Absent: never
   * (a region once handed out is then never written again).
   */
  released?: () => boolean;
}

/** Matches no destination, so the publish-arguments cache starts empty. */
const NOTHING_CACHED = Symbol('nothing cached');
const EMPTY_PROPERTIES: BasicProperties = Object.freeze({});

/**
 * A buffer larger than this is not kept for reuse once its operation is written, unless the next
 * operation needs at least half of it: one huge message does not pin a huge buffer.
 */
const RETAIN_MAX = 4 * 1024 * 1024;
/** Dedicated buffers (operations larger than a chunk) are rounded up to this, so similar sizes reuse them. */
const DEDICATED_GRAIN = 64 * 1024;

class PooledWriter extends Writer {
  /** Start of the bytes not yet handed out by take(). */
  taken = 0;
  /** An earlier buffer, all handed out, kept to be written over once the owner has released it. */
  private spare: Uint8Array | undefined;

  constructor(
    readonly chunkSize: number,
    private readonly released: (() => boolean) | undefined,
  ) {
    super(chunkSize);
  }

  /** Filled regions of earlier buffers not yet handed out, oldest first. */
  readonly sealed: Uint8Array[] = [];

  /**
   * Called between frames, when no offsets into the buffer are held: when `n` more bytes do not fit,
   * seals the pending bytes as a segment (no copy) and continues in a fresh buffer (a dedicated one
   * when the operation is larger than a chunk, so one huge message does not keep a huge pooled buffer
   * alive).
   */
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const current = this.buf;
    // Nothing sealed waits to be taken and the owner holds nothing handed out: every byte of the
    // earlier buffers has been written, so they may be written over.
    const free = this.released !== undefined && this.sealed.length === 0 && this.released();
    if (this.pos > this.taken) this.sealed.push(current.subarray(this.taken, this.pos));
    else if (free && reusable(current, n)) {
      // Nothing pending either: write over the current buffer.
      this.taken = 0;
      this.pos = 0;
      return;
    }
    // The current buffer becomes the spare: by the next time a buffer is needed, its pending bytes
    // (sealed now) have been taken and written if `free` holds then. A burst of small publishes
    // thus alternates between two buffers instead of faulting in fresh memory every 256 KiB.
    const spare = this.spare;
    if (this.released !== undefined) this.spare = current.length <= RETAIN_MAX ? current : undefined;
    if (free && spare !== undefined && reusable(spare, n)) {
      this.buf = spare;
      this.taken = 0;
      this.pos = 0;
      return;
    }
    this.buf = allocBytes(
      n <= this.chunkSize ? this.chunkSize : Math.ceil(n / DEDICATED_GRAIN) * DEDICATED_GRAIN,
    );
    this.taken = 0;
    this.pos = 0;
  }

  /** Bytes written and not yet handed out, sealed segments included. */
  get pendingLength(): number {
    let n = this.pos - this.taken;
    for (const segment of this.sealed) n += segment.length;
    return n;
  }

  /**
   * Growth inside a frame (an estimate was short): the pending bytes keep their offsets, because the
   * encoder holds offsets to patch lengths and flags.
   */
  protected override grow(n: number): void {
    const next = allocBytes(Math.max(this.buf.length * 2, this.pos + n));
    copyBytes(this.buf, this.taken, this.pos, next, this.taken);
    this.buf = next;
  }
}

/** True when `buf` can hold an operation of `n` bytes and is worth keeping for it. */
function reusable(buf: Uint8Array, n: number): boolean {
  return n <= buf.length && (buf.length <= RETAIN_MAX || n * 2 >= buf.length);
}

/** A generous estimate of a method or header frame without large tables; grow() covers the rest. */
const FRAME_ESTIMATE = 512;

/**
 * Encodes frames for the wire.
 *
 * @example
 * ```ts
 * const writer = new FrameWriter({ frameMax: 131072 });
 * writer.writeMethod(1, { name: 'queue.declare', queue: 'jobs', durable: true });
 * writer.writePublish(1, '', 'jobs', Buffer.from('hello'), { contentType: 'text/plain' });
 * socket.write(writer.take()!);
 * ```
 */
export class FrameWriter {
  /** Largest message body accepted, in bytes. */
  maxBodySize: number;
  private limit = FRAME_MIN_SIZE;
  private readonly w: PooledWriter;
  /** Frames written so far. */
  framesWritten = 0;
  /** The last publish destination and its encoded exchange, routing key and flags. */
  private lastExchange: unknown = NOTHING_CACHED;
  private lastRoutingKey: unknown = NOTHING_CACHED;
  private lastMandatory = false;
  private lastArgs: Uint8Array = new Uint8Array(0);

  constructor(options: FrameWriterOptions = {}) {
    this.w = new PooledWriter(options.chunkSize ?? 256 * 1024, options.released);
    if (options.frameMax !== undefined) this.frameMax = options.frameMax;
    this.maxBodySize = options.maxBodySize ?? 128 * 1024 * 1024;
  }

  /** Largest frame written, header and frame-end included; 0 means no limit beyond 2^32 - 1. */
  get frameMax(): number {
    return this.limit === NO_LIMIT ? 0 : this.limit;
  }

  /** @throws ConfigurationError unless 0 or an integer from 4096 to 2^32 - 1. */
  set frameMax(value: number) {
    this.limit = frameLimit(value);
  }

  /** Bytes written and not yet taken. */
  get pendingBytes(): number {
    return this.w.pendingLength;
  }

  /**
   * Hands out everything written since the last call as one array of bytes (a Buffer in Node): a view
   * of the pooled buffer that is never written again (copied together only when a burst spilled over
   * into several buffers; a transport should prefer {@link takeSegments}). Undefined when nothing is
   * pending.
   *
   * @example
   * ```ts
   * writer.writeHeartbeat();
   * const bytes: Uint8Array | undefined = writer.take(); // 08 00 00 00 00 00 00 ce
   * ```
   */
  take(): Uint8Array | undefined {
    const segments = this.takeSegments();
    if (segments.length <= 1) return segments[0];
    return concatBytes(segments);
  }

  /**
   * Hands out everything written since the last call as views of the pooled buffers (Buffers in Node),
   * in order, without copying. Empty when nothing is pending.
   *
   * @example
   * ```ts
   * for (const segment of writer.takeSegments()) socket.write(segment);
   * ```
   */
  takeSegments(): Uint8Array[] {
    const w = this.w;
    const out = w.sealed.length === 0 ? [] : w.sealed.splice(0);
    if (w.pos > w.taken) {
      out.push(w.buf.subarray(w.taken, w.pos));
      w.taken = w.pos;
    }
    return out;
  }

  /** Writes a method frame. Content methods must use {@link writeContent} or {@link writePublish}. */
  writeMethod(channel: number, method: MethodInit): void {
    const w = this.w;
    checkChannel(channel);
    if (METHOD_INFO[method.name]?.content !== false) {
      throw new EncodeError(
        'INVALID_METHOD',
        `${String(method.name)} is not a method without content: use writeContent for content methods`,
      );
    }
    w.reserve(FRAME_ESTIMATE);
    const mark = w.pos;
    try {
      this.methodFrame(channel, method);
    } catch (e) {
      throw rollback(w, mark, e);
    }
  }

  /** Writes a heartbeat frame. */
  writeHeartbeat(): void {
    const w = this.w;
    w.reserve(8);
    const b = w.buf;
    const p = w.pos;
    b[p] = FRAME_HEARTBEAT;
    b[p + 1] = 0;
    b[p + 2] = 0;
    b[p + 3] = 0;
    b[p + 4] = 0;
    b[p + 5] = 0;
    b[p + 6] = 0;
    b[p + 7] = FRAME_END;
    w.pos = p + 8;
    this.framesWritten++;
  }

  /**
   * Writes a content method (basic.publish, basic.deliver, basic.return, basic.get-ok) with its header
   * and body frames. Either all of the frames are written or, on an {@link EncodeError}, none.
   */
  writeContent(channel: number, method: MethodInit, properties: BasicProperties, body: Uint8Array): void {
    checkChannel(channel);
    if (METHOD_INFO[method.name]?.content !== true) {
      throw new EncodeError(
        'NOT_CONTENT_METHOD',
        `${String(method.name)} carries no content: use writeMethod`,
      );
    }
    this.checkBody(body);
    const w = this.w;
    w.reserve(this.contentEstimate(body));
    const mark = w.pos;
    try {
      this.methodFrame(channel, method);
      this.content(channel, properties, body);
    } catch (e) {
      throw rollback(w, mark, e);
    }
  }

  /**
   * Writes the basic.publish triplet (method, header, body frames) without building a method object:
   * the hot path of publishing.
   */
  writePublish(
    channel: number,
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties = EMPTY_PROPERTIES,
    mandatory = false,
  ): void {
    checkChannel(channel);
    this.checkBody(body);
    const w = this.w;
    w.reserve(this.contentEstimate(body));
    const mark = w.pos;
    try {
      // method frame: header, class 60, method 40, ticket 0, exchange, routing key, bits
      w.ensure(7 + 6 + 2 + 1);
      const start = w.pos;
      const b = w.buf;
      b[start] = FRAME_METHOD;
      b[start + 1] = channel >>> 8;
      b[start + 2] = channel & 0xff;
      b[start + 7] = 0;
      b[start + 8] = 60;
      b[start + 9] = 0;
      b[start + 10] = 40;
      b[start + 11] = 0;
      b[start + 12] = 0;
      w.pos = start + 13;
      if (
        exchange === this.lastExchange &&
        routingKey === this.lastRoutingKey &&
        mandatory === this.lastMandatory
      ) {
        // Most publishers send to the same destination again and again: reuse its encoded arguments.
        const args = this.lastArgs;
        w.ensure(args.length);
        w.buf.set(args, w.pos);
        w.pos += args.length;
      } else {
        const argsStart = w.pos;
        w.shortstr(exchange, 'exchange');
        w.shortstr(routingKey, 'routing key');
        w.u8(mandatory ? 1 : 0);
        this.lastArgs = Uint8Array.prototype.slice.call(w.buf, argsStart, w.pos);
        this.lastExchange = exchange;
        this.lastRoutingKey = routingKey;
        this.lastMandatory = mandatory;
      }
      this.endFrame(start);
      this.content(channel, properties, body);
    } catch (e) {
      throw rollback(w, mark, e);
    }
  }

  /** Bytes a content triplet is likely to take: two small frames plus the body frames. */
  private contentEstimate(body: Uint8Array): number {
    const size = body.length;
    return 2 * FRAME_ESTIMATE + size + 8 * Math.ceil(size / (this.limit - 8));
  }

  private checkBody(body: Uint8Array): void {
    if (!(body instanceof Uint8Array)) {
      throw new EncodeError('INVALID_VALUE', 'a message body must be a Buffer or Uint8Array');
    }
    if (body.length > this.maxBodySize) {
      throw new EncodeError(
        'BODY_TOO_LARGE',
        `message body of ${body.length} bytes exceeds the maximum of ${this.maxBodySize}`,
      );
    }
  }

  private methodFrame(channel: number, method: MethodInit): void {
    const start = this.beginFrame(FRAME_METHOD, channel);
    encodeMethod(this.w, method);
    this.endFrame(start);
  }

  /** Content header and body frames. */
  private content(channel: number, properties: BasicProperties, body: Uint8Array): void {
    const w = this.w;
    const start = this.beginFrame(FRAME_HEADER, channel);
    w.ensure(12);
    const b = w.buf;
    const p = w.pos;
    const size = body.length;
    b[p] = 0;
    b[p + 1] = 60;
    b[p + 2] = 0;
    b[p + 3] = 0;
    // body size as a 64-bit integer; a Uint8Array is shorter than 2^32 bytes here
    b[p + 4] = 0;
    b[p + 5] = 0;
    b[p + 6] = 0;
    b[p + 7] = 0;
    b[p + 8] = size >>> 24;
    b[p + 9] = (size >>> 16) & 0xff;
    b[p + 10] = (size >>> 8) & 0xff;
    b[p + 11] = size & 0xff;
    w.pos = p + 12;
    encodeBasicProperties(w, properties);
    this.endFrame(start);

    const maxPayload = this.limit - 8;
    for (let off = 0; off < size; off += maxPayload) {
      const n = Math.min(maxPayload, size - off);
      w.ensure(n + 8);
      const buf = w.buf;
      const q = w.pos;
      buf[q] = FRAME_BODY;
      buf[q + 1] = channel >>> 8;
      buf[q + 2] = channel & 0xff;
      buf[q + 3] = n >>> 24;
      buf[q + 4] = (n >>> 16) & 0xff;
      buf[q + 5] = (n >>> 8) & 0xff;
      buf[q + 6] = n & 0xff;
      buf.set(off === 0 && n === size ? body : body.subarray(off, off + n), q + 7);
      buf[q + 7 + n] = FRAME_END;
      w.pos = q + 8 + n;
      this.framesWritten++;
    }
  }

  private beginFrame(type: number, channel: number): number {
    const w = this.w;
    w.ensure(7);
    const start = w.pos;
    const b = w.buf;
    b[start] = type;
    b[start + 1] = channel >>> 8;
    b[start + 2] = channel & 0xff;
    w.pos = start + 7;
    return start;
  }

  /** Patches the payload size of the frame begun at `start` (which may have moved) and ends it. */
  private endFrame(start: number): void {
    const w = this.w;
    const frameStart = start;
    const size = w.pos - frameStart - 7;
    if (size + 8 > this.limit) {
      throw new EncodeError('FRAME_TOO_LARGE', `frame of ${size + 8} bytes exceeds frame_max ${this.limit}`);
    }
    w.ensure(1);
    const b = w.buf;
    b[frameStart + 3] = size >>> 24;
    b[frameStart + 4] = (size >>> 16) & 0xff;
    b[frameStart + 5] = (size >>> 8) & 0xff;
    b[frameStart + 6] = size & 0xff;
    b[w.pos++] = FRAME_END;
    this.framesWritten++;
  }
}

function checkChannel(channel: number): void {
  if ((channel & 0xffff) !== channel)
    throw new EncodeError('VALUE_OUT_OF_RANGE', `channel out of range: ${channel}`);
}

function rollback(w: Writer, mark: number, e: unknown): unknown {
  w.pos = mark;
  w.resetDepth();
  return e;
}
