/**
 * The incremental frame parser. It takes the byte stream from the peer in chunks split anywhere,
 * validates every frame (type, size against frame_max, frame-end octet, payload syntax), assembles
 * content (method, header and body frames on a channel) into whole messages, and hands typed results
 * to a {@link FrameHandler}. It is pure: no sockets, timers or RxJS, and no Node built-in (bytes go
 * through `./bytes.js`).
 *
 * Sizes the peer declares (a frame header, a content header's body size) reserve nothing by
 * themselves: an incomplete frame's buffer grows as its bytes arrive, and a body is allocated whole
 * up front only when it is at most 1 MiB and the bodies allocated so but not yet filled stay within
 * 16 MiB; other bodies grow as their frames arrive. A content header whose headers table cannot be
 * decoded delivers its message without headers and with a `HeadersDecodeError` rather than failing.
 *
 * @module
 */
import {
  COMMAND_INVALID,
  ConfigurationError,
  FRAME_ERROR,
  FrameError,
  type HeadersDecodeError,
  SYNTAX_ERROR,
  UNEXPECTED_FRAME,
} from '../errors.js';
import { allocBytes, allocBytesSlow, asBytes, bytesView, copyBytes } from './bytes.js';
import {
  type BasicProperties,
  decodeBasicProperties,
  decodeMethodArgs,
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  FRAME_MIN_SIZE,
  isContentMethod,
  type Method,
  type MethodOf,
} from './generated.js';
import { Reader, trailingBytes } from './reader.js';

/**
 * Methods that are followed by content: a header frame and body frames.
 *
 * @example
 * ```ts
 * function onContent(channel: number, method: ContentMethod): void {
 *   if (method.name === 'basic.deliver') console.log(method.deliveryTag);
 * }
 * ```
 */
export type ContentMethod =
  | MethodOf<'basic.publish'>
  | MethodOf<'basic.return'>
  | MethodOf<'basic.deliver'>
  | MethodOf<'basic.get-ok'>;

/**
 * Receives what the decoder parses. Handlers should not throw: an exception from a handler leaves the
 * decoder failed with that exception, as if the stream were corrupt.
 *
 * @example
 * ```ts
 * const handler: FrameHandler = {
 *   onMethod: (channel, method) => console.log(channel, method.name),
 *   onContent: (channel, method, properties, body, headersError) => {
 *     if (headersError !== undefined) console.warn(headersError.message); // headers skipped
 *     console.log(method.name, body.length);
 *   },
 *   onHeartbeat: () => {},
 *   acceptContent: (channel) => openChannels.has(channel),
 * };
 * ```
 */
export interface FrameHandler {
  /** A method frame without content. */
  onMethod(channel: number, method: Method): void;
  /**
   * A whole message: its method, the header's properties and the assembled body (a Buffer in Node).
   * When the content header's `headers` table could not be decoded, it was skipped:
   * `properties.headers` is undefined and `headersError` says why and holds the table's raw bytes.
   */
  onContent(
    channel: number,
    method: ContentMethod,
    properties: BasicProperties,
    body: Uint8Array,
    headersError?: HeadersDecodeError,
  ): void;
  /** A heartbeat frame (always on channel 0). */
  onHeartbeat(): void;
  /**
   * Called when a content-bearing method frame arrives, before anything of its message is assembled.
   * Returning false makes the decoder skip that message: its header and body frames are still checked
   * (order, sizes, frame ends) but nothing is decoded, kept or allocated for them, and `onContent` is
   * not called. Throwing fails the decoder with that error. Absent: every message is accepted.
   */
  acceptContent?(channel: number, method: ContentMethod): boolean;
}

/**
 * Options of a {@link FrameDecoder}.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder(handler, { maxBodySize: 16 * 1024 * 1024 });
 * ```
 */
export interface FrameDecoderOptions {
  /**
   * Largest frame accepted, header and frame-end included. 4096 (the protocol minimum) until the
   * connection is tuned; then set {@link FrameDecoder.frameMax} to the negotiated value.
   */
  frameMax?: number;
  /** Largest message body accepted, in bytes. Default 128 MiB. */
  maxBodySize?: number;
}

/**
 * Default largest message body accepted: 128 MiB.
 *
 * @example
 * ```ts
 * new FrameDecoder(handler).maxBodySize === DEFAULT_MAX_BODY_SIZE; // true
 * ```
 */
export const DEFAULT_MAX_BODY_SIZE = 128 * 1024 * 1024;

const HEADER_SIZE = 7;
/** @internal The largest frame size there is: a frameMax of 0 (no limit) stands for it. */
export const NO_LIMIT = 0xffffffff;

/**
 * @internal The largest frame accepted or written for a `frameMax` setting (shared by the decoder and
 * the writer): 0 means no limit, otherwise an integer from 4096 to 2^32 - 1.
 *
 * @throws ConfigurationError for any other value.
 */
export function frameLimit(frameMax: number): number {
  if (
    !Number.isInteger(frameMax) ||
    frameMax < 0 ||
    frameMax > NO_LIMIT ||
    (frameMax > 0 && frameMax < FRAME_MIN_SIZE)
  ) {
    throw new ConfigurationError(`frameMax must be 0 or an integer from ${FRAME_MIN_SIZE} to ${NO_LIMIT}`);
  }
  return frameMax === 0 ? NO_LIMIT : frameMax;
}

/**
 * An incomplete frame's buffer starts at most this large and doubles as bytes arrive (capped at the
 * frame's size): the size a peer declares reserves nothing by itself.
 */
const PARTIAL_START = 4096;
/**
 * A body is allocated whole when its first bytes arrive only when it is at most this large and the
 * bodies allocated so but not yet filled stay within {@link UPFRONT_BUDGET}: the common case, with no
 * copy. Other bodies grow (doubling) as their bytes arrive, so what the peer declares reserves at
 * most the budget.
 */
const UPFRONT_BODY_MAX = 1024 * 1024;
const UPFRONT_BUDGET = 16 * 1024 * 1024;

/** Bodies up to this size are carved from a shared slab rather than allocated one by one. */
const SLAB_BODY_MAX = 2048;
const SLAB_SIZE = 32 * 1024;
/** Bodies from this size to {@link SPARE_MAX} are allocated one ahead (see `allocLarge`). */
const SPARE_MIN = 64 * 1024;
const SPARE_MAX = UPFRONT_BODY_MAX;

/**
 * Content being assembled, by channel: an array indexed by channel number (a Map pays for the delete
 * and re-insert of the same key on every message), with a count of the channels in use. Each channel
 * keeps its record for the next message, so receiving a message allocates no record.
 */
class PendingByChannel {
  readonly slots: (PendingContent | undefined)[] = [];
  /** Each channel's record, in use or not. */
  private readonly records: (PendingContent | undefined)[] = [];
  size = 0;

  get(channel: number): PendingContent | undefined {
    return this.slots[channel];
  }

  /** Starts content on `channel` (which has none in progress). */
  start(channel: number, method: ContentMethod, skip: boolean): void {
    let content = this.records[channel];
    if (content === undefined) {
      while (this.records.length <= channel) this.records.push(undefined);
      while (this.slots.length <= channel) this.slots.push(undefined);
      content = {
        method,
        properties: undefined,
        bodySize: 0,
        body: undefined,
        received: 0,
        headersError: undefined,
        skip,
      };
      this.records[channel] = content;
    } else {
      content.method = method;
      content.skip = skip;
    }
    this.slots[channel] = content;
    this.size++;
  }

  /** Ends the content on `channel`: its record forgets the message, to be reused. */
  delete(channel: number): void {
    const content = this.slots[channel];
    if (content !== undefined) {
      this.slots[channel] = undefined;
      this.size--;
      content.properties = undefined;
      content.bodySize = 0;
      content.body = undefined;
      content.received = 0;
      content.headersError = undefined;
    }
  }

  clear(): void {
    this.slots.length = 0;
    this.records.length = 0;
    this.size = 0;
  }
}

/** Content being assembled on one channel. */
interface PendingContent {
  method: ContentMethod;
  properties: BasicProperties | undefined;
  bodySize: number;
  /** The body so far: `bodySize` bytes, or fewer while it grows as bytes arrive. */
  body: Uint8Array | undefined;
  received: number;
  /** Why the headers table was skipped, if it was. */
  headersError: HeadersDecodeError | undefined;
  /** Refused by acceptContent: its frames are checked and counted, nothing is kept. */
  skip: boolean;
}

/** The properties of a skipped message (never handed out): marks its header as received. */
const SKIPPED_PROPERTIES: BasicProperties = Object.freeze({});

const FRAME_NAMES: Record<number, string> = {
  [FRAME_METHOD]: 'method',
  [FRAME_HEADER]: 'header',
  [FRAME_BODY]: 'body',
  [FRAME_HEARTBEAT]: 'heartbeat',
};

/**
 * Parses AMQP 0-9-1 frames from a byte stream.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder({
 *   onMethod: (channel, method) => console.log(channel, method.name),
 *   onContent: (channel, method, properties, body) => console.log(method.name, body.length),
 *   onHeartbeat: () => {},
 * });
 * socket.on('data', (chunk) => decoder.push(chunk)); // throws FrameError on a corrupt stream
 * ```
 */
export class FrameDecoder {
  /** Largest message body accepted, in bytes. */
  maxBodySize: number;
  private limit: number;
  private readonly reader = new Reader();
  private readonly pending = new PendingByChannel();
  private slab: Uint8Array = allocBytesSlow(SLAB_SIZE);
  /** The slab's memory, read once: `.buffer` on a typed array is a slow call, paid per slab, not per body. */
  private slabMemory: ArrayBufferLike = this.slab.buffer;
  private slabOffset = 0;
  /** The buffer for the next large body, allocated after the last one (see `allocLarge`). */
  private spare: Uint8Array | undefined;
  /** The chunk being decoded and a Uint8Array over its whole memory (made once per chunk). */
  private chunk: Uint8Array | undefined;
  private chunkMemory: Uint8Array = EMPTY_VIEW;
  private chunkBase = 0;
  /** Bytes of an incomplete frame carried over from the previous chunk (grows as they arrive). */
  private partial: Uint8Array;
  private partialLength = 0;
  /** Total size of the incomplete frame, or 0 while its 7-byte header is still incomplete. */
  private partialNeed = 0;
  /**
   * A body frame split across chunks is not gathered whole: its payload is copied straight into the
   * body being assembled as the chunks come (one copy instead of two). The content it goes to, the
   * payload bytes still to come, and then the frame-end byte.
   */
  private streamContent: PendingContent | undefined;
  private streamChannel = 0;
  private streamRemaining = 0;
  private readonly headerScratch: Uint8Array = allocBytes(HEADER_SIZE).fill(0);
  /** Body bytes allocated and not yet filled, across channels (see {@link UPFRONT_BUDGET}). */
  private unfilled = 0;
  private started = false;
  private failure: unknown;
  /** Frames decoded so far. */
  framesDecoded = 0;

  constructor(
    private readonly handler: FrameHandler,
    options: FrameDecoderOptions = {},
  ) {
    this.limit = FRAME_MIN_SIZE;
    if (options.frameMax !== undefined) this.frameMax = options.frameMax;
    this.maxBodySize = options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE;
    this.partial = this.headerScratch;
  }

  /** Largest frame accepted, header and frame-end included; 0 means no limit beyond 2^32 - 1. */
  get frameMax(): number {
    return this.limit === NO_LIMIT ? 0 : this.limit;
  }

  /** @throws ConfigurationError unless 0 or an integer from 4096 to 2^32 - 1. */
  set frameMax(value: number) {
    this.limit = frameLimit(value);
  }

  /** Bytes held from an incomplete frame (a body frame streaming into its body holds none). */
  get bufferedBytes(): number {
    return this.partialLength;
  }

  /**
   * Memory the decoder holds for what is not complete yet: the buffer of an incomplete frame, the
   * bodies being assembled (their allocated size, filled or not) and the buffer set aside for the next
   * large body (at most 1 MiB, once a body that large was complete). It is bounded by about twice the
   * bytes received for them plus 16 MiB, plus that buffer, whatever sizes the peer declares.
   *
   * @example
   * ```ts
   * decoder.push(chunk);
   * metrics.gauge('amqp.decoder.held', decoder.bytesHeld);
   * ```
   */
  get bytesHeld(): number {
    let n = (this.partialNeed > 0 ? this.partial.length : 0) + (this.spare?.length ?? 0);
    for (const content of this.pending.slots) n += content?.body?.length ?? 0;
    return n;
  }

  /** True when a message's content is being assembled on some channel. */
  get assembling(): boolean {
    return this.pending.size > 0;
  }

  /**
   * Feeds the next chunk of the stream. Complete frames are handed to the handler before this returns.
   *
   * @throws FrameError when the stream is not valid AMQP; every later call throws the same error.
   */
  push(chunk: Uint8Array): void {
    if (this.failure !== undefined) throw this.failure;
    const buf = asBytes(chunk);
    this.chunk = buf;
    this.chunkMemory = new Uint8Array(buf.buffer);
    this.chunkBase = buf.byteOffset;
    try {
      this.consume(buf);
    } catch (e) {
      this.failure = e;
      this.spare = undefined;
      this.reader.release();
      this.pending.clear();
      this.unfilled = 0;
      this.streamContent = undefined;
      this.partial = this.headerScratch;
      this.partialLength = 0;
      this.partialNeed = 0;
      throw e;
    }
  }

  /** Forgets any partial frame and content: for reuse on a new connection. */
  reset(): void {
    this.failure = undefined;
    this.spare = undefined;
    this.started = false;
    this.pending.clear();
    this.unfilled = 0;
    this.streamContent = undefined;
    this.partial = this.headerScratch;
    this.partialLength = 0;
    this.partialNeed = 0;
    this.limit = FRAME_MIN_SIZE;
  }

  private consume(buf: Uint8Array): void {
    const len = buf.length;
    let off = 0;
    if (this.streamContent !== undefined) {
      off = this.continueStream(buf, 0);
      if (this.streamContent !== undefined) return;
    }
    if (this.partialLength > 0) {
      off = this.continuePartial(buf);
      if (this.partialLength > 0) return;
    }
    while (len - off >= HEADER_SIZE) {
      const total = this.frameSize(buf, off);
      if (len - off < total) break;
      this.frame(buf, off, total);
      off += total;
    }
    if (off < len) this.startPartial(buf, off);
  }

  /** Appends to the carried-over frame; returns how much of `buf` it used. */
  private continuePartial(buf: Uint8Array): number {
    let off = 0;
    if (this.partialNeed === 0) {
      const take = Math.min(HEADER_SIZE - this.partialLength, buf.length);
      copyBytes(buf, 0, take, this.headerScratch, this.partialLength);
      this.partialLength += take;
      off = take;
      if (this.partialLength < HEADER_SIZE) return off;
      const total = this.frameSize(this.headerScratch, 0);
      if (this.headerScratch[0] === FRAME_BODY) {
        // The header came in pieces; the payload streams into the body.
        this.partialLength = 0;
        this.beginStream(this.headerScratch, 0, total);
        return this.continueStream(buf, off);
      }
      const partial = allocBytes(Math.min(total, Math.max(PARTIAL_START, HEADER_SIZE + buf.length - off)));
      copyBytes(this.headerScratch, 0, HEADER_SIZE, partial, 0);
      this.partial = partial;
      this.partialNeed = total;
    }
    const take = Math.min(this.partialNeed - this.partialLength, buf.length - off);
    if (this.partialLength + take > this.partial.length) this.growPartial(this.partialLength + take);
    copyBytes(buf, off, off + take, this.partial, this.partialLength);
    this.partialLength += take;
    off += take;
    if (this.partialLength === this.partialNeed) {
      const frame = this.partial;
      const total = this.partialNeed;
      this.partial = this.headerScratch;
      this.partialLength = 0;
      this.partialNeed = 0;
      this.frame(frame, 0, total);
    }
    return off;
  }

  /** Grows the incomplete frame's buffer to hold `needed` bytes: doubling, capped at the frame's size. */
  private growPartial(needed: number): void {
    const next = allocBytes(Math.min(this.partialNeed, Math.max(needed, this.partial.length * 2)));
    copyBytes(this.partial, 0, this.partialLength, next, 0);
    this.partial = next;
  }

  private startPartial(buf: Uint8Array, off: number): void {
    const rest = buf.length - off;
    if (rest < HEADER_SIZE) {
      copyBytes(buf, off, buf.length, this.headerScratch, 0);
      this.partial = this.headerScratch;
      this.partialNeed = 0;
    } else {
      const total = this.frameSize(buf, off);
      if (buf[off] === FRAME_BODY) {
        this.beginStream(buf, off, total);
        this.continueStream(buf, off + HEADER_SIZE);
        return;
      }
      // Not allocate(total): a frame header claiming 4 GiB (frameMax 0) must not reserve 4 GiB.
      this.partial = allocBytes(Math.min(total, Math.max(PARTIAL_START, rest)));
      copyBytes(buf, off, buf.length, this.partial, 0);
      this.partialNeed = total;
    }
    this.partialLength = rest;
  }

  /** Starts streaming the body frame whose header is at `off` (validated as bodyFrame would). */
  private beginStream(buf: Uint8Array, off: number, total: number): void {
    const channel = (buf[off + 1]! << 8) | buf[off + 2]!;
    const size = total - HEADER_SIZE - 1;
    // Nothing is allocated here: the body grows as the frame's bytes arrive (see ensureBody).
    this.streamContent = this.contentForBody(channel, size);
    this.streamChannel = channel;
    this.streamRemaining = size;
  }

  /** Copies what `buf` holds of the streaming body frame from `off`; returns where it stopped. */
  private continueStream(buf: Uint8Array, off: number): number {
    const content = this.streamContent!;
    const take = Math.min(this.streamRemaining, buf.length - off);
    if (take > 0) {
      if (!content.skip) {
        const body = this.ensureBody(content, content.received + take);
        copyBytes(buf, off, off + take, body, content.received);
        this.unfilled -= take;
      }
      content.received += take;
      this.streamRemaining -= take;
      off += take;
    }
    if (this.streamRemaining > 0 || off >= buf.length) return off;
    // The payload is in: the frame-end byte closes the frame.
    const channel = this.streamChannel;
    if (buf[off] !== FRAME_END) {
      throw new FrameError(
        FRAME_ERROR,
        'BAD_FRAME_END',
        `body frame ends with 0x${buf[off]!.toString(16)} instead of 0xce`,
        channel,
      );
    }
    off++;
    this.streamContent = undefined;
    this.started = true;
    this.framesDecoded++;
    if (content.received === content.bodySize) {
      // Read before delete(), which clears the record for its next message.
      const properties = content.properties!;
      const body = content.body!;
      const headersError = content.headersError;
      const skip = content.skip;
      this.pending.delete(channel);
      if (!skip) {
        this.setAside(body.length);
        this.handler.onContent(channel, content.method, properties, body, headersError);
      }
    }
    return off;
  }

  /** Validates a frame header and returns the whole frame's size. Nothing is allocated before this. */
  private frameSize(buf: Uint8Array, off: number): number {
    const type = buf[off]!;
    if (type !== FRAME_METHOD && type !== FRAME_HEADER && type !== FRAME_BODY && type !== FRAME_HEARTBEAT) {
      if (
        !this.started &&
        type === 0x41 &&
        buf[off + 1] === 0x4d &&
        buf[off + 2] === 0x51 &&
        buf[off + 3] === 0x50
      ) {
        throw new FrameError(
          FRAME_ERROR,
          'PROTOCOL_MISMATCH',
          `the server answered with a protocol header (AMQP ${buf[off + 4]} ${buf[off + 5]} ${buf[off + 6]} ...) instead of a frame: it does not accept the protocol version the client sent`,
        );
      }
      throw new FrameError(FRAME_ERROR, 'UNKNOWN_FRAME_TYPE', `unknown frame type ${type}`);
    }
    const size = buf[off + 3]! * 0x1000000 + ((buf[off + 4]! << 16) | (buf[off + 5]! << 8) | buf[off + 6]!);
    const total = size + HEADER_SIZE + 1;
    if (total > this.limit) {
      const channel = (buf[off + 1]! << 8) | buf[off + 2]!;
      throw new FrameError(
        FRAME_ERROR,
        'FRAME_TOO_LARGE',
        `${FRAME_NAMES[type]} frame of ${total} bytes exceeds frame_max ${this.limit}`,
        channel,
      );
    }
    return total;
  }

  private frame(buf: Uint8Array, off: number, total: number): void {
    const type = buf[off]!;
    const channel = (buf[off + 1]! << 8) | buf[off + 2]!;
    const start = off + HEADER_SIZE;
    const end = off + total - 1;
    if (buf[end] !== FRAME_END) {
      throw new FrameError(
        FRAME_ERROR,
        'BAD_FRAME_END',
        `${FRAME_NAMES[type]} frame ends with 0x${buf[end]!.toString(16)} instead of 0xce`,
        channel,
      );
    }
    this.started = true;
    this.framesDecoded++;
    switch (type) {
      case FRAME_METHOD:
        this.methodFrame(buf, start, end, channel);
        return;
      case FRAME_HEADER:
        this.headerFrame(buf, start, end, channel);
        return;
      case FRAME_BODY:
        this.bodyFrame(buf, start, end, channel);
        return;
      default:
        if (channel !== 0 || end !== start) {
          throw new FrameError(
            FRAME_ERROR,
            'BAD_HEARTBEAT',
            'heartbeat frame with a channel or a payload',
            channel,
          );
        }
        this.handler.onHeartbeat();
    }
  }

  private methodFrame(buf: Uint8Array, start: number, end: number, channel: number): void {
    if (this.pending.size > 0 && this.pending.get(channel) !== undefined) {
      throw new FrameError(
        UNEXPECTED_FRAME,
        'UNEXPECTED_FRAME',
        'method frame while a message was being received',
        channel,
      );
    }
    const r = this.reader.reset(buf, start, end);
    if (end - start < 4)
      throw new FrameError(SYNTAX_ERROR, 'TRUNCATED_FIELD', 'method frame shorter than its ids', channel);
    const classId = r.u16();
    const methodId = r.u16();
    let method: Method | undefined;
    try {
      method = decodeMethodArgs(r, classId, methodId);
    } catch (e) {
      throw withChannel(e, channel);
    }
    if (method === undefined) {
      throw new FrameError(
        COMMAND_INVALID,
        'UNKNOWN_METHOD',
        `unknown method ${classId}/${methodId}`,
        channel,
      );
    }
    if (r.pos !== end) throw trailingBytes(`${method.name} frame`, channel);
    r.release();
    if (isContentMethod(classId, methodId)) {
      // Asked before anything of the message is kept: a refused message costs no memory.
      const skip = this.handler.acceptContent?.(channel, method as ContentMethod) === false;
      this.pending.start(channel, method as ContentMethod, skip);
    } else {
      this.handler.onMethod(channel, method);
    }
  }

  private headerFrame(buf: Uint8Array, start: number, end: number, channel: number): void {
    const content = this.pending.get(channel);
    if (content === undefined || content.properties !== undefined) {
      throw new FrameError(
        UNEXPECTED_FRAME,
        'UNEXPECTED_FRAME',
        'content header frame without a content method before it',
        channel,
      );
    }
    const r = this.reader.reset(buf, start, end);
    let properties: BasicProperties | undefined;
    let bodySize: number;
    try {
      const classId = r.u16();
      r.u16(); // weight: unused, always 0
      const high = r.u32();
      const low = r.u32();
      // A size beyond 2^53 cannot be a real body: report it as too large, not as a parse failure.
      bodySize = high > 0x1fffff ? Number.POSITIVE_INFINITY : high * 0x100000000 + low;
      if (classId !== 60) {
        throw new FrameError(
          UNEXPECTED_FRAME,
          'UNEXPECTED_FRAME',
          `content header for class ${classId} after a basic method`,
        );
      }
      // A skipped message's properties are not decoded: nothing of it is kept.
      properties = content.skip ? SKIPPED_PROPERTIES : decodeBasicProperties(r);
    } catch (e) {
      throw withChannel(e, channel);
    }
    if (properties === undefined) {
      throw new FrameError(
        SYNTAX_ERROR,
        'BAD_PROPERTY_FLAGS',
        'content header marks properties the basic class lacks',
        channel,
      );
    }
    if (r.pos !== end && !content.skip) throw trailingBytes('content header frame', channel);
    const headersError = r.headersError;
    r.release();
    if (bodySize > this.maxBodySize) {
      throw new FrameError(
        FRAME_ERROR,
        'BODY_TOO_LARGE',
        `message body of ${bodySize === Number.POSITIVE_INFINITY ? 'over 2^53' : bodySize} bytes exceeds the maximum of ${this.maxBodySize}`,
        channel,
      );
    }
    if (bodySize === 0) {
      const skip = content.skip;
      this.pending.delete(channel);
      if (!skip) this.handler.onContent(channel, content.method, properties, EMPTY_BODY, headersError);
      return;
    }
    content.properties = properties;
    content.bodySize = bodySize;
    content.headersError = headersError;
  }

  /**
   * A buffer for a body. Small bodies are carved from a slab (as Node's own pool does, a live body
   * keeps its slab alive); larger ones get their own memory.
   */
  private allocBody(size: number): Uint8Array {
    if (size > SLAB_BODY_MAX) {
      return size >= SPARE_MIN && size <= SPARE_MAX ? this.allocLarge(size) : allocBytesSlow(size);
    }
    if (this.slabOffset + size > SLAB_SIZE) {
      this.slab = allocBytesSlow(SLAB_SIZE);
      this.slabMemory = this.slab.buffer;
      this.slabOffset = 0;
    }
    // Buffer.from(arrayBuffer, offset, length) makes a view about twice as cheap as subarray(): this
    // runs once per message. (A Uint8Array subclass with Buffer's prototype is cheaper still in plain
    // builds, but several times slower wherever a transpiler re-adds class names, as tsx does.)
    const body = bytesView(this.slabMemory, this.slabOffset, size);
    this.slabOffset = (this.slabOffset + size + 7) & ~7;
    return body;
  }

  /**
   * A large body comes from the buffer set aside when the previous large body of the same size was
   * complete (a new one is set aside once this one is). The count of allocations is unchanged (one per body), but
   * the buffer allocated last is always still held: with glibc's malloc, the memory of bodies freed
   * below it (a burst of deliveries collected at once) then stays in the heap for the next bodies
   * instead of being given back to the kernel and faulted in again page by page (at 1 MiB, 256 page
   * faults per message). It holds at most one body's size more, at most {@link SPARE_MAX}.
   */
  private allocLarge(size: number): Uint8Array {
    const spare = this.spare;
    if (spare !== undefined && spare.length === size) {
      this.spare = undefined;
      return spare;
    }
    return allocBytesSlow(size);
  }

  /** A large body is complete: sets a buffer of its size aside for the next one (see allocLarge). */
  private setAside(size: number): void {
    if (size >= SPARE_MIN && size <= SPARE_MAX && this.spare === undefined) this.spare = allocBytesSlow(size);
  }

  /** The content a body frame of `size` bytes on `channel` belongs to, checked. */
  private contentForBody(channel: number, size: number): PendingContent & { properties: BasicProperties } {
    const content = this.pending.get(channel);
    if (content === undefined || content.properties === undefined) {
      throw new FrameError(
        UNEXPECTED_FRAME,
        'UNEXPECTED_FRAME',
        'body frame without a content header before it',
        channel,
      );
    }
    if (content.received + size > content.bodySize) {
      throw new FrameError(
        FRAME_ERROR,
        'BODY_OVERRUN',
        `body frames carry more than the ${content.bodySize} bytes the content header declared`,
        channel,
      );
    }
    return content as PendingContent & { properties: BasicProperties };
  }

  /**
   * The body of `content`, able to hold `needed` bytes. Allocated whole on its first bytes when small
   * enough and within the budget of unfilled bodies (no copy later); otherwise grown as bytes arrive,
   * doubling and capped at the declared size, so a peer that declares a large body and sends little
   * of it makes the decoder hold little.
   */
  private ensureBody(content: PendingContent, needed: number): Uint8Array {
    const body = content.body;
    if (body !== undefined && needed <= body.length) return body;
    const size = content.bodySize;
    let capacity: number;
    if (body === undefined && size <= UPFRONT_BODY_MAX && this.unfilled + size <= UPFRONT_BUDGET)
      capacity = size;
    else capacity = Math.min(size, Math.max(needed, body === undefined ? 0 : body.length * 2));
    const next = capacity === size ? this.allocBody(size) : allocBytes(capacity);
    if (body !== undefined) copyBytes(body, 0, content.received, next, 0);
    this.unfilled += capacity - (body === undefined ? 0 : body.length);
    content.body = next;
    return next;
  }

  private bodyFrame(buf: Uint8Array, start: number, end: number, channel: number): void {
    const size = end - start;
    const content = this.contentForBody(channel, size);
    const received = content.received + size;
    if (content.skip) {
      content.received = received;
      if (received === content.bodySize) this.pending.delete(channel);
      return;
    }
    if (received === content.bodySize && content.body === undefined) {
      // The whole body in one frame: copy it out of the chunk, which the socket may reuse.
      const body = this.allocBody(size);
      if (buf === this.chunk) {
        const base = this.chunkBase;
        body.set(this.chunkMemory.subarray(base + start, base + end));
      } else body.set(new Uint8Array(buf.buffer, buf.byteOffset + start, size));
      // Read before delete(), which clears the record for its next message.
      const properties = content.properties;
      const headersError = content.headersError;
      this.pending.delete(channel);
      if (size >= SPARE_MIN) this.setAside(size);
      this.handler.onContent(channel, content.method, properties, body, headersError);
      return;
    }
    if (size === 0) return;
    const body = this.ensureBody(content, received);
    copyBytes(buf, start, end, body, content.received);
    this.unfilled -= size;
    content.received = received;
    if (received === content.bodySize) {
      const properties = content.properties;
      const headersError = content.headersError;
      this.pending.delete(channel);
      this.setAside(body.length);
      this.handler.onContent(channel, content.method, properties, body, headersError);
    }
  }
}

const EMPTY_BODY: Uint8Array = allocBytes(0);
const EMPTY_VIEW = new Uint8Array(0);

function withChannel(e: unknown, channel: number): unknown {
  if (e instanceof FrameError && e.channel === undefined) {
    return new FrameError(e.replyCode, e.code, e.message, channel);
  }
  return e;
}
