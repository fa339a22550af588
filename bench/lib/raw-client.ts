/**
 * The raw client: the least a client can do, used by the bench as the ceiling of the broker on this
 * machine. It opens one connection with a hand-driven handshake (frame_max at most 131,072, no
 * heartbeats) and talks to the broker with pre-encoded frames written straight to the socket: no
 * channel layer, no RxJS, no per-message objects on the way out. Whatever rate it reaches is what the
 * broker gives any client.
 *
 * Channels: 1 for queue operations and publishing without confirms, 2 in confirm mode (opened at the
 * first confirmed publish), 3 for a consumer (opened for each `consume` or `roundTrips`, closed after).
 *
 * - `publish`: a buffer of up to 1,000 pre-encoded `basic.publish` triplets (at most 512 KiB) made once
 *   per queue and body, written in slices; when `socket.write` returns false it waits for `'drain'`.
 *   Resolves when the last slice is written (its write callback).
 * - `publishConfirmed`: the same slices on the confirm channel, at most `window` unconfirmed, the
 *   broker's `basic.ack`s (single or `multiple`, in any order; found by the same scanner) counted; a
 *   `basic.nack` rejects.
 * - `consume`: `basic.qos` and `basic.consume`; a hand scanner reads each delivery's tag at its offset
 *   and skips its content frames (nothing is decoded or copied), and after each socket read that
 *   brought deliveries ONE pre-encoded `basic.ack` with `multiple` set acks all of them (the fewest
 *   acks that ack every message). Deliveries beyond `n` are not acked and go back to the queue when
 *   the channel closes.
 * - `roundTrips`: consumer with prefetch 1; each round trip writes one pre-encoded triplet, waits for
 *   the delivery, writes one pre-encoded `basic.ack` (its tag patched in).
 *
 * Every other frame (replies, closes, cancels) goes whole through the project's `FrameDecoder`.
 *
 * Any error (the broker closing a channel or the connection, a consumer cancelled by the broker, the
 * socket failing) is sticky: every pending and later call rejects with it.
 *
 * @module
 */
import * as net from 'node:net';
import { FrameDecoder, FrameWriter, type Method, type MethodInit } from '../../src/protocol/index.js';

const MAIN = 1;
const CONFIRM = 2;
const CONSUMER = 3;
/** Largest frame_max the raw client accepts. */
const FRAME_MAX = 131072;
/** Triplets per pre-encoded buffer, at most, and its size, at most (at least one triplet). */
const BATCH_MESSAGES = 1000;
const BATCH_BYTES = 512 * 1024;
/** basic.ack: 7-byte frame header, class and method ids, then the 64-bit delivery tag, the bits. */
const ACK_FRAME_SIZE = 21;
const ACK_TAG_OFFSET = 11;
const ACK_BITS_OFFSET = 19;
const FRAME_METHOD = 1;
const FRAME_HEADER = 2;
const FRAME_BODY = 3;
const FRAME_END = 0xce;
const BASIC_CLASS = 60;
const DELIVER = 60;
const ACK = 80;
const NACK = 120;

interface Pending {
  resolve(method: Method): void;
  reject(error: Error): void;
}

/** Pre-encoded publish triplets: `count` copies of one `frameLen`-byte triplet. */
interface Batch {
  readonly body: Uint8Array;
  readonly buf: Buffer;
  readonly frameLen: number;
  readonly count: number;
}

/** A raw connection to the broker. */
export class RawClient {
  private readonly writer = new FrameWriter();
  private readonly decoder: FrameDecoder;
  private readonly replies: Pending[][] = [[], [], [], []];
  private readonly failureListeners = new Set<(e: Error) => void>();
  private failure: Error | undefined;
  private frameMax = FRAME_MAX;
  /** Bytes of a content frame still to skip, and an incomplete frame carried over (the scanner). */
  private skip = 0;
  private tail: Buffer | undefined;
  private readonly batches = new Map<string, Batch>();
  private ackTemplate: Buffer | undefined;
  private confirmOpen: Promise<void> | undefined;
  /** The confirm sequence number of the next publish on the confirm channel. */
  private nextSeq = 1;
  private onConfirm: ((tag: number, multiple: boolean, nack: boolean) => void) | undefined;
  private onDeliver: ((tag: number) => void) | undefined;
  /** Runs after each socket read has been decoded (the multiple ack of `consume`). */
  private afterRead: (() => void) | undefined;

  private constructor(private readonly socket: net.Socket) {
    this.decoder = new FrameDecoder({
      onMethod: (channel, method) => this.method(channel, method),
      onContent: (channel, method) =>
        this.fail(new Error(`raw client: unexpected ${method.name} on channel ${channel}`)),
      onHeartbeat() {},
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.scan(chunk);
      } catch (e) {
        this.fail(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      this.afterRead?.();
    });
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('raw client: the socket closed')));
  }

  /** Connects to the broker of `url` (`amqp://user:pass@host:port/vhost`) and opens channel 1. */
  static async open(url: URL | string): Promise<RawClient> {
    const u = typeof url === 'string' ? new URL(url) : url;
    const socket = net.connect({ host: u.hostname, port: Number(u.port || 5672), noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const raw = new RawClient(socket);
    try {
      await raw.handshake(u);
    } catch (e) {
      socket.destroy();
      throw e;
    }
    return raw;
  }

  private async handshake(url: URL): Promise<void> {
    const start = this.reply(0);
    this.socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
    await start; // connection.start
    const user = decodeURIComponent(url.username || 'guest');
    const password = decodeURIComponent(url.password || 'guest');
    const tune = await this.call(0, {
      name: 'connection.start-ok',
      clientProperties: { product: 'rxamqp bench raw client' },
      mechanism: 'PLAIN',
      response: `\0${user}\0${password}`,
    });
    if (tune.name !== 'connection.tune') throw new Error(`raw client: expected tune, got ${tune.name}`);
    this.frameMax = tune.frameMax === 0 ? FRAME_MAX : Math.min(tune.frameMax, FRAME_MAX);
    this.send(0, { name: 'connection.tune-ok', channelMax: CONSUMER, frameMax: this.frameMax, heartbeat: 0 });
    this.writer.frameMax = this.frameMax;
    this.decoder.frameMax = this.frameMax;
    const vhost = decodeURIComponent(url.pathname.slice(1)) || '/';
    await this.call(0, { name: 'connection.open', virtualHost: vhost });
    await this.call(MAIN, { name: 'channel.open' });
  }

  /** The error every call rejects with from now on, if any. */
  get error(): Error | undefined {
    return this.failure;
  }

  /**
   * The hand scanner of the read path: finds the frames of `chunk` (carrying an incomplete one over to
   * the next chunk), reads the delivery tag of each `basic.deliver` and of each confirm (`basic.ack`,
   * `basic.nack`) at its offset, skips content frames (headers and bodies: only deliveries carry any
   * here) without copying them, and hands every other frame whole to the codec's `FrameDecoder`.
   */
  private scan(chunk: Buffer): void {
    let b = chunk;
    let off = 0;
    if (this.skip > 0) {
      const n = Math.min(this.skip, b.length);
      this.skip -= n;
      off = n;
    }
    if (this.tail !== undefined) {
      b = Buffer.concat([this.tail, b.subarray(off)]);
      this.tail = undefined;
      off = 0;
    }
    const len = b.length;
    while (len - off >= 7) {
      const type = b[off]!;
      const channel = b.readUInt16BE(off + 1);
      const size = b.readUInt32BE(off + 3);
      const total = size + 8;
      if (total > this.frameMax) throw new Error(`raw client: a ${total}-byte frame exceeds frame_max`);
      if (type === FRAME_HEADER || type === FRAME_BODY) {
        if (len - off < total) {
          this.skip = total - (len - off);
          return;
        }
        off += total;
        continue;
      }
      if (len - off < total) break;
      if (b[off + total - 1] !== FRAME_END) throw new Error('raw client: bad frame end');
      if (type === FRAME_METHOD && size >= 4 && b.readUInt16BE(off + 7) === BASIC_CLASS) {
        const methodId = b.readUInt16BE(off + 9);
        if (methodId === DELIVER && channel === CONSUMER && this.onDeliver !== undefined) {
          const tagAt = off + 12 + b[off + 11]!; // after the consumer tag (a short string)
          this.onDeliver(b.readUInt32BE(tagAt) * 0x1_0000_0000 + b.readUInt32BE(tagAt + 4));
          off += total;
          continue;
        }
        if ((methodId === ACK || methodId === NACK) && channel === CONFIRM && this.onConfirm !== undefined) {
          const tag = b.readUInt32BE(off + 11) * 0x1_0000_0000 + b.readUInt32BE(off + 15);
          this.onConfirm(tag, (b[off + 19]! & 1) === 1, methodId === NACK);
          off += total;
          continue;
        }
      }
      this.decoder.push(b.subarray(off, off + total));
      off += total;
    }
    if (off < len) this.tail = Buffer.from(b.subarray(off));
  }

  private method(channel: number, method: Method): void {
    switch (method.name) {
      case 'basic.ack':
      case 'basic.nack':
        if (channel === CONFIRM && this.onConfirm !== undefined) {
          this.onConfirm(method.deliveryTag, method.multiple, method.name === 'basic.nack');
        } else this.fail(new Error(`raw client: unexpected ${method.name} on channel ${channel}`));
        return;
      case 'connection.close':
      case 'channel.close':
        this.fail(
          new Error(`raw client: the broker sent ${method.name} ${method.replyCode} ${method.replyText}`),
        );
        return;
      case 'basic.cancel':
        this.fail(new Error(`raw client: the broker cancelled consumer ${method.consumerTag}`));
        return;
      case 'connection.blocked':
      case 'connection.unblocked':
        return;
      default: {
        const pending = this.replies[channel]?.shift();
        if (pending === undefined) {
          this.fail(new Error(`raw client: unexpected ${method.name} on channel ${channel}`));
          return;
        }
        pending.resolve(method);
      }
    }
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    for (const queue of this.replies) for (const p of queue.splice(0)) p.reject(error);
    const listeners = [...this.failureListeners];
    this.failureListeners.clear();
    for (const l of listeners) l(error);
    this.socket.destroy();
  }

  /** A promise settled by `executor`, or rejected when the client fails first. */
  private until<T>(executor: (resolve: (v: T) => void, reject: (e: Error) => void) => void): Promise<T> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      const onFailure = (e: Error): void => reject(e);
      this.failureListeners.add(onFailure);
      executor(
        (v) => {
          this.failureListeners.delete(onFailure);
          resolve(v);
        },
        (e) => {
          this.failureListeners.delete(onFailure);
          reject(e);
        },
      );
    });
  }

  private send(channel: number, method: MethodInit): void {
    this.writer.writeMethod(channel, method);
    for (const b of this.writer.takeSegments()) this.socket.write(b);
  }

  private reply(channel: number): Promise<Method> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<Method>((resolve, reject) => {
      this.replies[channel]!.push({ resolve, reject });
    });
  }

  /** Sends a synchronous method and waits for its reply. */
  private call(channel: number, method: MethodInit): Promise<Method> {
    const r = this.reply(channel);
    if (this.failure === undefined) this.send(channel, method);
    return r;
  }

  /** `count` pre-encoded publish triplets of `body` to `queue` on `channel`, made once. */
  private batch(channel: number, queue: string, body: Uint8Array): Batch {
    const key = `${channel}\0${queue}`;
    const cached = this.batches.get(key);
    if (cached !== undefined && cached.body === body) return cached;
    const w = new FrameWriter({ frameMax: this.frameMax });
    w.writeContent(channel, { name: 'basic.publish', exchange: '', routingKey: queue }, {}, body);
    const taken = w.take()!;
    const one = Buffer.from(taken.buffer, taken.byteOffset, taken.byteLength);
    const count = Math.max(1, Math.min(BATCH_MESSAGES, Math.floor(BATCH_BYTES / one.length)));
    const buf = Buffer.allocUnsafe(one.length * count);
    for (let i = 0; i < count; i++) one.copy(buf, i * one.length);
    const b: Batch = { body, buf, frameLen: one.length, count };
    this.batches.set(key, b);
    return b;
  }

  /** Writes a pre-encoded basic.ack on the consumer channel (the template made once, its tag patched). */
  private ack(tag: number, multiple: boolean): void {
    if (this.ackTemplate === undefined) {
      this.writer.writeMethod(CONSUMER, { name: 'basic.ack', deliveryTag: 0, multiple: false });
      const t = this.writer.take()!;
      if (t.length !== ACK_FRAME_SIZE) throw new Error(`raw client: basic.ack is ${t.length} bytes`);
      this.ackTemplate = Buffer.from(t);
    }
    const frame = Buffer.allocUnsafe(ACK_FRAME_SIZE);
    this.ackTemplate.copy(frame);
    frame.writeUInt32BE(Math.floor(tag / 0x1_0000_0000), ACK_TAG_OFFSET);
    frame.writeUInt32BE(tag >>> 0, ACK_TAG_OFFSET + 4);
    frame[ACK_BITS_OFFSET] = multiple ? 1 : 0;
    this.socket.write(frame);
  }

  async declare(queue: string): Promise<void> {
    await this.call(MAIN, { name: 'queue.declare', queue, durable: false, autoDelete: false });
  }

  async purge(queue: string): Promise<void> {
    await this.call(MAIN, { name: 'queue.purge', queue });
  }

  async delete(queue: string): Promise<void> {
    await this.call(MAIN, { name: 'queue.delete', queue });
  }

  /** Messages `queue` holds (a passive declare). */
  async depth(queue: string): Promise<number> {
    const ok = await this.call(MAIN, { name: 'queue.declare', queue, passive: true });
    if (ok.name !== 'queue.declare-ok') throw new Error(`raw client: expected declare-ok, got ${ok.name}`);
    return ok.messageCount;
  }

  /** Publishes `n` messages without confirms, honouring the socket's backpressure. */
  publish(queue: string, body: Uint8Array, n: number): Promise<void> {
    if (n <= 0) return Promise.resolve();
    const b = this.batch(MAIN, queue, body);
    return this.until<void>((resolve, reject) => {
      let sent = 0;
      const step = (): void => {
        while (sent < n) {
          if (this.failure !== undefined) return;
          const k = Math.min(b.count, n - sent);
          const slice = k === b.count ? b.buf : b.buf.subarray(0, k * b.frameLen);
          sent += k;
          const last = sent === n;
          const ok = this.socket.write(
            slice,
            last ? (e?: Error | null) => (e ? reject(e) : resolve()) : undefined,
          );
          if (!ok && !last) {
            this.socket.once('drain', step);
            return;
          }
        }
      };
      step();
    });
  }

  /** Publishes `n` messages on the confirm channel with at most `window` unconfirmed. */
  async publishConfirmed(queue: string, body: Uint8Array, n: number, window: number): Promise<void> {
    this.confirmOpen ??= (async () => {
      await this.call(CONFIRM, { name: 'channel.open' });
      await this.call(CONFIRM, { name: 'confirm.select' });
    })();
    await this.confirmOpen;
    if (n <= 0) return;
    const b = this.batch(CONFIRM, queue, body);
    const firstTag = this.nextSeq;
    const lastTag = firstTag + n - 1;
    this.nextSeq = lastTag + 1;
    await this.until<void>((resolve, reject) => {
      let sent = 0;
      /** Every tag up to this one is confirmed. */
      let confirmedUpTo = firstTag - 1;
      /** Single acks above `confirmedUpTo` (the broker may confirm out of order). */
      const early = new Set<number>();
      const pump = (): void => {
        let room = Math.min(window - (firstTag + sent - 1 - confirmedUpTo), n - sent);
        while (room > 0) {
          const k = Math.min(room, b.count);
          this.socket.write(k === b.count ? b.buf : b.buf.subarray(0, k * b.frameLen));
          sent += k;
          room -= k;
        }
      };
      this.onConfirm = (tag, multiple, nack) => {
        if (nack) {
          this.onConfirm = undefined;
          reject(new Error(`raw client: the broker nacked publish ${tag}`));
          return;
        }
        if (multiple) {
          if (tag > confirmedUpTo) confirmedUpTo = tag;
          for (const t of early) if (t <= confirmedUpTo) early.delete(t);
        } else if (tag === confirmedUpTo + 1) confirmedUpTo = tag;
        else if (tag > confirmedUpTo) early.add(tag);
        while (early.delete(confirmedUpTo + 1)) confirmedUpTo++;
        if (confirmedUpTo >= lastTag) {
          this.onConfirm = undefined;
          resolve();
        } else pump();
      };
      pump();
    });
  }

  /** Opens the consumer channel with `prefetch` and starts a consumer; returns its tag. */
  private async startConsumer(queue: string, prefetch: number): Promise<string> {
    await this.call(CONSUMER, { name: 'channel.open' });
    await this.call(CONSUMER, { name: 'basic.qos', prefetchCount: prefetch, global: false });
    const ok = await this.call(CONSUMER, { name: 'basic.consume', queue, noAck: false });
    if (ok.name !== 'basic.consume-ok') throw new Error(`raw client: expected consume-ok, got ${ok.name}`);
    return ok.consumerTag;
  }

  /** Cancels the consumer and closes its channel (deliveries meanwhile are ignored, then requeued). */
  private async stopConsumer(consumerTag: string): Promise<void> {
    this.afterRead = undefined;
    this.onDeliver = () => {};
    await this.call(CONSUMER, { name: 'basic.cancel', consumerTag });
    await this.call(CONSUMER, {
      name: 'channel.close',
      replyCode: 200,
      replyText: '',
      classId: 0,
      methodId: 0,
    });
    this.onDeliver = undefined;
  }

  /** Consumes `n` messages with prefetch `prefetch`, one multiple ack per socket read. */
  async consume(queue: string, n: number, prefetch: number): Promise<void> {
    if (n <= 0) return;
    let received = 0;
    let lastTag = 0;
    let ackedTag = 0;
    const all = this.until<void>((resolve) => {
      this.onDeliver = (tag) => {
        if (received < n) {
          received++;
          lastTag = tag;
        }
      };
      this.afterRead = () => {
        if (lastTag === ackedTag) return;
        this.ack(lastTag, true);
        ackedTag = lastTag;
        if (received === n) resolve();
      };
    });
    all.catch(() => undefined); // observed below; a failure before it is awaited is not unhandled
    const consumerTag = await this.startConsumer(queue, prefetch);
    await all;
    await this.stopConsumer(consumerTag);
  }

  /** Round trips one at a time: publish one, wait for its delivery, ack it. */
  async roundTrips(queue: string, body: Uint8Array, n: number): Promise<number[]> {
    const b = this.batch(MAIN, queue, body);
    const one = b.buf.subarray(0, b.frameLen);
    let waiter: ((tag: number) => void) | undefined;
    this.onDeliver = (tag) => {
      const w = waiter;
      waiter = undefined;
      if (w === undefined) {
        this.fail(new Error(`raw client: roundTrips received a message it was not waiting for on ${queue}`));
      } else w(tag);
    };
    const consumerTag = await this.startConsumer(queue, 1);
    const latencies: number[] = [];
    for (let i = 0; i < n; i++) {
      const delivered = this.until<number>((resolve) => {
        waiter = resolve;
      });
      const t0 = performance.now();
      this.socket.write(one);
      const tag = await delivered;
      this.ack(tag, false);
      latencies.push(performance.now() - t0);
    }
    await this.stopConsumer(consumerTag);
    return latencies;
  }

  /** Closes the connection (connection.close handshake), or drops the socket after a failure. */
  async close(): Promise<void> {
    if (this.failure !== undefined) {
      this.socket.destroy();
      return;
    }
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    await this.call(0, {
      name: 'connection.close',
      replyCode: 200,
      replyText: 'bye',
      classId: 0,
      methodId: 0,
    });
    this.fail(new Error('raw client: closed'));
    await closed;
  }

  /** Drops the socket at once. */
  destroy(): void {
    this.fail(new Error('raw client: destroyed'));
  }
}
