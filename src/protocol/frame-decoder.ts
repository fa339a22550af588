/**
 * The incremental frame parser. It takes the byte stream from the peer in chunks split anywhere,
 * validates every frame (type, size against frame_max, frame-end octet, payload syntax), assembles
 * content (method, header and body frames on a channel) into whole messages, and hands typed results
 * to a {@link FrameHandler}. It is pure: no sockets, timers or RxJS.
 *
 * @module
 */
import { COMMAND_INVALID, FRAME_ERROR, FrameError, SYNTAX_ERROR, UNEXPECTED_FRAME } from '../errors.js';
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
 *   onContent: (channel, method, properties, body) => console.log(method.name, body.length),
 *   onHeartbeat: () => {},
 * };
 * ```
 */
export interface FrameHandler {
  /** A method frame without content. */
  onMethod(channel: number, method: Method): void;
  /** A whole message: its method, the header's properties and the assembled body. */
  onContent(channel: number, method: ContentMethod, properties: BasicProperties, body: Buffer): void;
  /** A heartbeat frame (always on channel 0). */
  onHeartbeat(): void;
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
const NO_LIMIT = 0xffffffff;

/** Bodies up to this size are carved from a shared slab rather than allocated one by one. */
const SLAB_BODY_MAX = 2048;
const SLAB_SIZE = 32 * 1024;

/**
 * Content being assembled, by channel: an array indexed by channel number (a Map pays for the delete
 * and re-insert of the same key on every message), with a count of the channels in use.
 */
class PendingByChannel {
  private readonly slots: (PendingContent | undefined)[] = [];
  size = 0;

  get(channel: number): PendingContent | undefined {
    return this.slots[channel];
  }

  set(channel: number, content: PendingContent): void {
    while (this.slots.length <= channel) this.slots.push(undefined);
    if (this.slots[channel] === undefined) this.size++;
    this.slots[channel] = content;
  }

  delete(channel: number): void {
    if (this.slots[channel] !== undefined) {
      this.slots[channel] = undefined;
      this.size--;
    }
  }

  clear(): void {
    this.slots.length = 0;
    this.size = 0;
  }
}

/** Content being assembled on one channel. */
interface PendingContent {
  method: ContentMethod;
  properties: BasicProperties | undefined;
  bodySize: number;
  body: Buffer | undefined;
  received: number;
}

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
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB_SIZE);
  /** The slab's memory, read once: `.buffer` on a typed array is a slow call, paid per slab, not per body. */
  private slabMemory: ArrayBufferLike = this.slab.buffer;
  private slabOffset = 0;
  /** The chunk being decoded and a Uint8Array over its whole memory (made once per chunk). */
  private chunk: Buffer | undefined;
  private chunkMemory: Uint8Array = EMPTY_VIEW;
  private chunkBase = 0;
  /** Bytes of an incomplete frame carried over from the previous chunk. */
  private partial: Buffer;
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
  private readonly headerScratch = Buffer.alloc(HEADER_SIZE);
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

  set frameMax(value: number) {
    if (!Number.isInteger(value) || value < 0 || value > NO_LIMIT || (value > 0 && value < FRAME_MIN_SIZE)) {
      throw new RangeError(`frameMax must be 0 or an integer from ${FRAME_MIN_SIZE} to ${NO_LIMIT}`);
    }
    this.limit = value === 0 ? NO_LIMIT : value;
  }

  /** Bytes held from an incomplete frame (a body frame streaming into its body holds none). */
  get bufferedBytes(): number {
    return this.partialLength;
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
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.chunk = buf;
    this.chunkMemory = new Uint8Array(buf.buffer);
    this.chunkBase = buf.byteOffset;
    try {
      this.consume(buf);
    } catch (e) {
      this.failure = e;
      this.reader.release();
      this.pending.clear();
      throw e;
    }
  }

  /** Forgets any partial frame and content: for reuse on a new connection. */
  reset(): void {
    this.failure = undefined;
    this.started = false;
    this.pending.clear();
    this.streamContent = undefined;
    this.partial = this.headerScratch;
    this.partialLength = 0;
    this.partialNeed = 0;
    this.limit = FRAME_MIN_SIZE;
  }

  private consume(buf: Buffer): void {
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
  private continuePartial(buf: Buffer): number {
    let off = 0;
    if (this.partialNeed === 0) {
      const take = Math.min(HEADER_SIZE - this.partialLength, buf.length);
      buf.copy(this.headerScratch, this.partialLength, 0, take);
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
      this.partial = Buffer.allocUnsafe(total);
      this.headerScratch.copy(this.partial, 0, 0, HEADER_SIZE);
      this.partialNeed = total;
    }
    const take = Math.min(this.partialNeed - this.partialLength, buf.length - off);
    buf.copy(this.partial, this.partialLength, off, off + take);
    this.partialLength += take;
    off += take;
    if (this.partialLength === this.partialNeed) {
      const frame = this.partial;
      this.partial = this.headerScratch;
      this.partialLength = 0;
      this.partialNeed = 0;
      this.frame(frame, 0, frame.length);
    }
    return off;
  }

  private startPartial(buf: Buffer, off: number): void {
    const rest = buf.length - off;
    if (rest < HEADER_SIZE) {
      buf.copy(this.headerScratch, 0, off);
      this.partial = this.headerScratch;
      this.partialNeed = 0;
    } else {
      const total = this.frameSize(buf, off);
      if (buf[off] === FRAME_BODY) {
        this.beginStream(buf, off, total);
        this.continueStream(buf, off + HEADER_SIZE);
        return;
      }
      this.partial = Buffer.allocUnsafe(total);
      buf.copy(this.partial, 0, off);
      this.partialNeed = total;
    }
    this.partialLength = rest;
  }

  /** Starts streaming the body frame whose header is at `off` (validated as bodyFrame would). */
  private beginStream(buf: Buffer, off: number, total: number): void {
    const channel = (buf[off + 1]! << 8) | buf[off + 2]!;
    const size = total - HEADER_SIZE - 1;
    const content = this.contentForBody(channel, size);
    if (content.body === undefined) content.body = this.allocBody(content.bodySize);
    this.streamContent = content;
    this.streamChannel = channel;
    this.streamRemaining = size;
  }

  /** Copies what `buf` holds of the streaming body frame from `off`; returns where it stopped. */
  private continueStream(buf: Buffer, off: number): number {
    const content = this.streamContent!;
    const take = Math.min(this.streamRemaining, buf.length - off);
    if (take > 0) {
      buf.copy(content.body!, content.received, off, off + take);
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
      this.pending.delete(channel);
      this.handler.onContent(channel, content.method, content.properties!, content.body!);
    }
    return off;
  }

  /** Validates a frame header and returns the whole frame's size. Nothing is allocated before this. */
  private frameSize(buf: Buffer, off: number): number {
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
      const channel = buf.readUInt16BE(off + 1);
      throw new FrameError(
        FRAME_ERROR,
        'FRAME_TOO_LARGE',
        `${FRAME_NAMES[type]} frame of ${total} bytes exceeds frame_max ${this.limit}`,
        channel,
      );
    }
    return total;
  }

  private frame(buf: Buffer, off: number, total: number): void {
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

  private methodFrame(buf: Buffer, start: number, end: number, channel: number): void {
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
      this.pending.set(channel, {
        method: method as ContentMethod,
        properties: undefined,
        bodySize: 0,
        body: undefined,
        received: 0,
      });
    } else {
      this.handler.onMethod(channel, method);
    }
  }

  private headerFrame(buf: Buffer, start: number, end: number, channel: number): void {
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
      properties = decodeBasicProperties(r);
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
    if (r.pos !== end) throw trailingBytes('content header frame', channel);
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
      this.pending.delete(channel);
      this.handler.onContent(channel, content.method, properties, EMPTY_BODY);
      return;
    }
    content.properties = properties;
    content.bodySize = bodySize;
  }

  /**
   * A buffer for a body. Small bodies are carved from a slab (as Node's own pool does, a live body
   * keeps its slab alive); larger ones get their own memory.
   */
  private allocBody(size: number): Buffer {
    if (size > SLAB_BODY_MAX) return Buffer.allocUnsafeSlow(size);
    if (this.slabOffset + size > SLAB_SIZE) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      this.slabMemory = this.slab.buffer;
      this.slabOffset = 0;
    }
    // Buffer.from(arrayBuffer, offset, length) makes a view about twice as cheap as subarray(): this
    // runs once per message. (A Uint8Array subclass with Buffer's prototype is cheaper still in plain
    // builds, but several times slower wherever a transpiler re-adds class names, as tsx does.)
    const body = Buffer.from(this.slabMemory as ArrayBuffer, this.slabOffset, size);
    this.slabOffset = (this.slabOffset + size + 7) & ~7;
    return body;
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

  private bodyFrame(buf: Buffer, start: number, end: number, channel: number): void {
    const size = end - start;
    const content = this.contentForBody(channel, size);
    const received = content.received + size;
    if (received === content.bodySize && content.body === undefined) {
      // The whole body in one frame: copy it out of the chunk, which the socket may reuse.
      const body = this.allocBody(size);
      if (buf === this.chunk) {
        const base = this.chunkBase;
        body.set(this.chunkMemory.subarray(base + start, base + end));
      } else body.set(new Uint8Array(buf.buffer, buf.byteOffset + start, size));
      this.pending.delete(channel);
      this.handler.onContent(channel, content.method, content.properties, body);
      return;
    }
    if (content.body === undefined) content.body = this.allocBody(content.bodySize);
    buf.copy(content.body, content.received, start, end);
    content.received = received;
    if (received === content.bodySize) {
      this.pending.delete(channel);
      this.handler.onContent(channel, content.method, content.properties, content.body);
    }
  }
}

const EMPTY_BODY = Buffer.alloc(0);
const EMPTY_VIEW = new Uint8Array(0);

function withChannel(e: unknown, channel: number): unknown {
  if (e instanceof FrameError && e.channel === undefined) {
    return new FrameError(e.replyCode, e.code, e.message, channel);
  }
  return e;
}
