/**
 * The null broker: a scripted AMQP 0-9-1 server that does as little as a broker can, so that a benchmark
 * against it measures the client's own cost. It answers the handshake, counts publishes, acks confirms
 * and streams pre-encoded deliveries honouring prefetch; it stores no message, only counts per queue.
 *
 * It has to keep up with the fastest client on a shared 2-core machine, so the hot path is written by
 * hand: frames are parsed from the socket's chunks with offsets (frame header, class and method ids and
 * the few arguments used: `basic.publish`, the content header, body frames, `basic.ack` / `nack` /
 * `reject`), body bytes are skipped without being copied, only an incomplete frame is carried over to
 * the next chunk, and everything a chunk causes (confirms, replies, deliveries) goes out in one socket
 * write. Deliveries are copied from a template encoded once per consumer and body size (the same bytes
 * every time but the delivery tag, patched in place). Rare methods (the handshake, declares, consume...)
 * go through the project's codec.
 *
 * Behaviour where a real broker would do more:
 * - Routing: every exchange routes by routing key = queue name (the default exchange's rule); bindings
 *   are accepted and ignored. A publish to a queue that does not exist is counted, confirmed and
 *   dropped (as RabbitMQ drops an unroutable message); `mandatory` is ignored (no `basic.return`).
 * - Queues hold a count of ready messages and the body size of the last publish; deliveries carry a body
 *   of that size filled with `a`, no properties, `redelivered` false (also after a requeue), exchange ''
 *   and the queue's name as routing key. `durable`, `exclusive`, `auto-delete` and arguments are
 *   ignored: a queue lives until `queue.delete` or the broker's close.
 * - `queue.declare` passive, `queue.purge`, `basic.consume` and `basic.get` on a missing queue close the
 *   channel with 404, as RabbitMQ does. `queue.delete` cancels the queue's consumers with a
 *   `basic.cancel` from the broker.
 * - `basic.qos` with `global` false sets the prefetch of consumers started later on the channel, with
 *   `global` true a limit shared by the channel's consumers (RabbitMQ's meaning); `prefetch_size` is
 *   ignored. A prefetch of 0 or `no-ack` means no limit but the socket's write buffer.
 * - `basic.get` answers `get-ok` (from the queue's count, tracked for acks like a delivery) or
 *   `get-empty`. `basic.recover` requeues the channel's unacked messages.
 * - Acks of unknown delivery tags are ignored (RabbitMQ would close the channel with 406).
 * - `connection.blocked` is sent only to clients that announce the `connection.blocked` capability
 *   (all the benchmark's peers do); with `blockAfter` the socket stops being read either way.
 * - Direct reply-to, for request/reply benchmarks whose responder must cost nothing: `basic.consume`
 *   on `amq.rabbitmq.reply-to` (no-ack only, one per channel, as RabbitMQ requires) is accepted without
 *   a queue. A queue declared with the argument `x-null-echo: true` is an echo queue: a publish to it
 *   whose `reply-to` property starts with `amq.rabbitmq.reply-to` is not enqueued but answered at once
 *   with a `basic.deliver` to the publishing channel's reply consumer (its consumer tag, exchange '',
 *   routing key the request's reply-to as given (RabbitMQ would rewrite it), a body of the request's
 *   size filled with `a`, and only the `correlation-id` property, copied from the request; no-ack, so
 *   nothing to settle). Without a reply consumer on the channel such a publish closes the channel with
 *   406, as RabbitMQ does. A publish to an echo queue without a direct reply-to is enqueued as usual.
 *   Only publishes routed to an echo queue have their content header's properties read: every other
 *   publish pays one flag test on its content header.
 * - Heartbeats: the broker proposes 0; when a client asks for some in `tune-ok` the broker sends them
 *   while it has nothing else to send, and never times a client out.
 * - Frames on a channel never opened are processed as if it were open. Malformed input (a bad frame
 *   type, size or end octet, a content frame out of place, a method that does not decode) destroys that
 *   socket; an unknown method is ignored.
 *
 * @module
 */
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import {
  decodeMethodArgs,
  type FieldTable,
  FrameWriter,
  type Method,
  type MethodInit,
  PROTOCOL_HEADER,
} from '../../src/protocol/index.js';
import { Reader } from '../../src/protocol/reader.js';
import { VERSION } from '../../src/version.js';

/** Options of {@link startNullBroker}. */
export interface NullBrokerOptions {
  /** Port to listen on; 0 (the default) for any free port. */
  port?: number;
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /**
   * After this many publishes on a connection, send it `connection.blocked` (reason
   * `null broker: blocked`) and stop reading its socket, for good. Default: never.
   */
  blockAfter?: number;
}

/** What the broker counted since it started. */
export interface NullBrokerStats {
  /** Connections open now. */
  connections: number;
  /** Messages published (all of their frames received), routed or not. */
  published: number;
  /** Messages delivered (`basic.deliver` and `basic.get-ok`). */
  delivered: number;
  /** Deliveries the clients acked (each message of a `multiple` ack counts). */
  acked: number;
}

/** A running null broker. */
export interface NullBroker {
  readonly port: number;
  /** `amqp://guest:guest@HOST:PORT` (any credentials are accepted). */
  readonly url: string;
  stats(): NullBrokerStats;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a null broker and resolves once it listens. */
export async function startNullBroker(options: NullBrokerOptions = {}): Promise<NullBroker> {
  const broker = new Broker(options.blockAfter ?? 0);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    broker.server.once('error', reject);
    broker.server.listen(options.port ?? 0, host, () => {
      broker.server.off('error', reject);
      resolve();
    });
  });
  // Errors after listening (none expected) must not crash the process.
  broker.server.on('error', () => {});
  const port = (broker.server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `amqp://guest:guest@${urlHost}:${port}`,
    stats: () => ({
      connections: broker.conns.size,
      published: broker.published,
      delivered: broker.delivered,
      acked: broker.acked,
    }),
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => broker.server.close(() => resolve()));
        const ended = [...broker.conns].map((conn) => {
          const gone = new Promise<void>((resolve) => conn.socket.once('close', () => resolve()));
          conn.socket.destroy();
          return gone;
        });
        await Promise.all([stopped, ...ended]);
      })();
      return closing;
    },
  };
}

const FRAME_END = 0xce;
const TWO_32 = 4294967296;
/** frame_max the broker proposes and uses until the client's tune-ok. */
const SERVER_FRAME_MAX = 131072;
/** Largest body accepted in a content header (RabbitMQ's own ceiling). */
const MAX_BODY_SIZE = 512 * 1024 * 1024;
/** Size of a connection's output buffers. */
const OUT_CHUNK = 256 * 1024;
/** Output pending beyond this is written at once while delivering. */
const FLUSH_BYTES = 64 * 1024;
/** A delivery template holds as many copies of a message as fit here (at least one): one batch. */
const TEMPLATE_BYTES = 64 * 1024;
const MAX_TEMPLATE_COPIES = 512;
/** The sockets' write buffer: deliveries stop when it holds this much and resume on 'drain'. */
const HIGH_WATER_MARK = 512 * 1024;
/** Credit of a consumer without a prefetch limit: the socket's buffer is the limit. */
const UNLIMITED = 0x3fffffff;

const SERVER_PROPERTIES: FieldTable = {
  product: 'rxamqp null broker',
  version: VERSION,
  platform: `Node.js ${process.version}`,
  information: 'a scripted AMQP 0-9-1 server for benchmarks: it counts messages and stores none',
  capabilities: {
    publisher_confirms: true,
    exchange_exchange_bindings: true,
    'basic.nack': true,
    consumer_cancel_notify: true,
    'connection.blocked': true,
    consumer_priorities: true,
    authentication_failure_close: true,
    per_consumer_qos: true,
    direct_reply_to: true,
  },
};

/** The pseudo-queue of RabbitMQ's direct reply-to, and the prefix of the reply-to it accepts. */
const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
const DIRECT_REPLY_TO_BYTES = Buffer.from(DIRECT_REPLY_TO, 'latin1');
/** The queue argument that makes a queue an echo queue (see the module's header). */
export const ECHO_ARGUMENT = 'x-null-echo';

/** Malformed input: the connection is destroyed. */
class Malformed extends Error {}

function malformed(what: string): Malformed {
  return new Malformed(`null broker: ${what}`);
}

class Queue {
  ready = 0;
  /** Body size of the latest publish: the size of the deliveries. */
  bodySize = 0;
  readonly consumers: Consumer[] = [];
  /** Round-robin position in `consumers`. */
  rr = 0;
  scheduled = false;
  deleted = false;
  /** Declared with `x-null-echo: true`: direct reply-to requests are answered, not enqueued. */
  echo = false;

  constructor(readonly name: string) {}
}

class Consumer {
  /** In its queue's consumer list (false once cancelled). */
  active = true;
  unacked = 0;
  /** `copies` deliveries back to back, delivery tags to patch; built for `templateSize`. */
  template: Buffer = EMPTY;
  templateSize = -1;
  templateLength = 0;
  copies = 0;
  tagOffset = 0;

  constructor(
    readonly ch: Chan,
    /** Index in the channel's `slots`. */
    readonly slot: number,
    readonly tag: string,
    readonly queue: Queue,
    readonly noAck: boolean,
    readonly prefetch: number,
    /** False for the pseudo-consumer behind basic.get: never in a queue's consumer list. */
    readonly consuming: boolean,
  ) {}
}

const EMPTY = Buffer.alloc(0);

class Chan {
  /** Content of a publish: 0 none, 1 header expected, 2 body frames expected. */
  state = 0;
  remaining = 0;
  size = 0;
  target: Queue | null = null;
  /** Confirm mode, publish sequence number, and whether an ack is due at the end of the chunk. */
  confirm = false;
  seq = 0;
  ackQueued = false;
  /** The broker sent channel.close: everything but close / close-ok is ignored. */
  closing = false;
  flow = true;
  consumerPrefetch = 0;
  globalPrefetch = 0;
  /**
   * Unacked deliveries: a ring indexed by delivery tag holding the consumer's slot + 1 (0 when settled
   * or delivered without ack) for every tag from `base` to `nextTag` - 1.
   */
  unacked = 0;
  nextTag = 1;
  base = 1;
  owner: Int32Array = new Int32Array(1024);
  mask = 1023;
  readonly slots: Consumer[] = [];
  getConsumers: Map<Queue, Consumer> | undefined = undefined;
  /** The last routing key published to and its queue, valid for `routeVersion`. */
  readonly routeKey: Buffer = Buffer.alloc(256);
  routeKeyLength = -1;
  routeQueue: Queue | null = null;
  routeVersion = -1;
  /** The direct reply-to consumer's tag (null: none), and its UTF-8 bytes for the hand encoder. */
  replyTag: string | null = null;
  replyTagBytes: Buffer = EMPTY;
  /**
   * The reply-to (when it names direct reply-to; length 0 otherwise) and correlation id (length -1:
   * none) of the publish in progress, read from its content header only when it goes to an echo
   * queue. Copied: the header may sit in the connection's carry-over buffer, reused before the body ends.
   */
  readonly replyTo: Buffer = Buffer.alloc(255);
  replyToLength = 0;
  readonly correlationId: Buffer = Buffer.alloc(255);
  correlationIdLength = -1;

  constructor(
    readonly conn: Conn,
    readonly id: number,
  ) {}
}

class Broker {
  readonly server: Server;
  readonly conns = new Set<Conn>();
  readonly queues = new Map<string, Queue>();
  /** Changes whenever a queue is created or deleted: invalidates the channels' routing caches. */
  topologyVersion = 0;
  published = 0;
  delivered = 0;
  acked = 0;
  private nextQueue = 1;
  private nextConsumer = 1;
  /** Queues to deliver from before the next flush. */
  private pending: Queue[] = [];
  /** Connections with output to write. */
  readonly dirty: Conn[] = [];
  readonly writer = new FrameWriter({ frameMax: SERVER_FRAME_MAX });
  readonly reader = new Reader();

  constructor(readonly blockAfter: number) {
    this.server = createServer({ noDelay: true, highWaterMark: HIGH_WATER_MARK }, (socket) => {
      this.conns.add(new Conn(this, socket));
    });
  }

  queueName(): string {
    return `amq.gen-${this.nextQueue++}`;
  }

  consumerTag(): string {
    return `null-ctag-${this.nextConsumer++}`;
  }

  schedule(q: Queue): void {
    if (q.scheduled) return;
    q.scheduled = true;
    this.pending.push(q);
  }

  /** Delivers from the queues that may deliver, then writes every connection's output. */
  runPending(): void {
    while (this.pending.length > 0) {
      const list = this.pending;
      this.pending = [];
      for (const q of list) {
        q.scheduled = false;
        this.pump(q);
      }
    }
    const dirty = this.dirty;
    for (let i = 0; i < dirty.length; i++) {
      const conn = dirty[i]!;
      conn.dirty = false;
      conn.flush();
    }
    dirty.length = 0;
  }

  /** Delivers what the queue holds to its consumers with credit, round robin, a batch at a time. */
  private pump(q: Queue): void {
    const cs = q.consumers;
    const n = cs.length;
    if (n === 0 || q.deleted) return;
    let i = q.rr % n;
    let idle = 0;
    while (q.ready > 0 && idle < n) {
      const c = cs[i]!;
      const credit = creditOf(c);
      if (credit > 0) {
        const conn = c.ch.conn;
        try {
          if (c.templateSize !== q.bodySize) conn.buildTemplate(c, q.bodySize);
          conn.deliver(c, Math.min(credit, q.ready, c.copies));
          if (conn.pendingBytes() >= FLUSH_BYTES) conn.flush();
        } catch (e) {
          conn.fail(e);
        }
        idle = 0;
      } else idle++;
      i = i + 1 === n ? 0 : i + 1;
    }
    q.rr = i;
  }

  removeConsumer(c: Consumer): void {
    if (!c.active) return;
    c.active = false;
    const list = c.queue.consumers;
    const i = list.indexOf(c);
    if (i >= 0) list.splice(i, 1);
  }

  deleteQueue(q: Queue): void {
    q.deleted = true;
    q.ready = 0;
    this.queues.delete(q.name);
    this.topologyVersion++;
    for (const c of q.consumers.slice()) {
      this.removeConsumer(c);
      const conn = c.ch.conn;
      if (!conn.dead && conn.consumerCancelNotify && !c.ch.closing) {
        conn.sendMethod(c.ch.id, { name: 'basic.cancel', consumerTag: c.tag, nowait: true });
      }
    }
  }
}

function creditOf(c: Consumer): number {
  if (!c.active) return 0;
  const ch = c.ch;
  const conn = ch.conn;
  if (conn.paused || conn.dead || ch.closing || !ch.flow) return 0;
  if (c.noAck) return UNLIMITED;
  let credit = c.prefetch === 0 ? UNLIMITED : c.prefetch - c.unacked;
  if (ch.globalPrefetch > 0) credit = Math.min(credit, ch.globalPrefetch - ch.unacked);
  return credit;
}

class Conn {
  /** 0 until the protocol header has arrived. */
  private started = false;
  /** No more input is processed (closing, blocked). */
  private stopped = false;
  dead = false;
  /** The socket's write buffer is full: no deliveries until 'drain'. */
  paused = false;
  dirty = false;
  private ending = false;
  private blockedNow = false;
  private connectionBlocked = false;
  consumerCancelNotify = true;
  /** Largest frame accepted and written. */
  frameMax = SERVER_FRAME_MAX;
  private published = 0;
  private channels: (Chan | undefined)[] = [];
  /** Confirm channels that published in this chunk. */
  private readonly ackList: Chan[] = [];

  /** An incomplete frame (or protocol header) carried over to the next chunk. */
  private tail: Buffer = Buffer.allocUnsafe(4096);
  private tailLength = 0;
  /** Bytes of a body frame (its end octet included) still to skip, and its channel. */
  private skip = 0;
  private skipChannel: Chan | null = null;

  /** Output: `sealed` buffers, then `out` from `outStart` to `outPos`. Written regions are never reused. */
  private out: Buffer = Buffer.allocUnsafe(OUT_CHUNK);
  private outStart = 0;
  private outPos = 0;
  private sealed: Buffer[] = [];

  private heartbeatTimer: NodeJS.Timeout | undefined;
  private wrote = false;

  constructor(
    private readonly broker: Broker,
    readonly socket: Socket,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', () => {});
    socket.on('close', () => this.onClose());
  }

  // ---- input -------------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.stopped || this.dead) return;
    try {
      this.consume(chunk);
      this.writeAcks();
      if (this.blockedNow) {
        this.blockedNow = false;
        if (this.connectionBlocked) {
          this.sendMethod(0, { name: 'connection.blocked', reason: 'null broker: blocked' });
        }
      }
      this.broker.runPending();
      if (this.ending) this.socket.end();
    } catch (e) {
      this.fail(e);
      try {
        this.broker.runPending();
      } catch {
        // the other connections' output waits for their next event
      }
    }
  }

  private consume(b: Buffer): void {
    let off = 0;
    if (!this.started) {
      off = this.protocolHeader(b);
      if (!this.started) return;
    }
    if (this.skip > 0) off = this.continueSkip(b, off);
    else if (this.tailLength > 0) off = this.continueTail(b, off);
    if (off < b.length && !this.stopped) this.parse(b, off);
  }

  private protocolHeader(b: Buffer): number {
    const take = Math.min(8 - this.tailLength, b.length);
    b.copy(this.tail, this.tailLength, 0, take);
    this.tailLength += take;
    if (this.tailLength < 8) return take;
    this.tailLength = 0;
    const t = this.tail;
    if (t[0] !== 0x41 || t[1] !== 0x4d || t[2] !== 0x51 || t[3] !== 0x50)
      throw malformed('no protocol header');
    if (t[4] !== 0 || t[5] !== 0 || t[6] !== 9 || t[7] !== 1) {
      // Another protocol version: answer with ours and hang up, as the spec says.
      this.stopped = true;
      this.socket.end(PROTOCOL_HEADER);
      return b.length;
    }
    this.started = true;
    this.sendMethod(0, {
      name: 'connection.start',
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: SERVER_PROPERTIES,
      mechanisms: 'PLAIN AMQPLAIN',
      locales: 'en_US',
    });
    return take;
  }

  /** Skips the rest of a body frame; returns where the chunk continues. */
  private continueSkip(b: Buffer, off: number): number {
    const n = Math.min(this.skip, b.length - off);
    this.skip -= n;
    off += n;
    if (this.skip === 0) {
      if (b[off - 1] !== FRAME_END) throw malformed('bad frame end');
      const ch = this.skipChannel;
      this.skipChannel = null;
      if (ch !== null && ch.state === 2 && ch.remaining === 0) this.completePublish(ch);
    }
    return off;
  }

  /** Completes the frame begun in the last chunk; returns where the chunk continues. */
  private continueTail(b: Buffer, off: number): number {
    const len = b.length;
    if (this.tailLength < 7) {
      const take = Math.min(7 - this.tailLength, len - off);
      b.copy(this.tail, this.tailLength, off, off + take);
      this.tailLength += take;
      off += take;
      if (this.tailLength < 7) return off;
    }
    const t = this.tail;
    const type = t[0]!;
    const chan = (t[1]! << 8) | t[2]!;
    const size = t[3]! * 0x1000000 + ((t[4]! << 16) | (t[5]! << 8) | t[6]!);
    const total = size + 8;
    // Like RabbitMQ, the limit is on the payload: some clients send frames of frame_max + 8 bytes.
    if (size > this.frameMax) throw malformed('frame larger than frame_max');
    if (type === 3) {
      this.skipChannel = this.bodyFrame(chan, size);
      this.skip = total - 7;
      this.tailLength = 0;
      return this.continueSkip(b, off);
    }
    if (t.length < total) {
      const bigger = Buffer.allocUnsafe(total);
      t.copy(bigger, 0, 0, this.tailLength);
      this.tail = bigger;
    }
    const take = Math.min(total - this.tailLength, len - off);
    b.copy(this.tail, this.tailLength, off, off + take);
    this.tailLength += take;
    off += take;
    if (this.tailLength < total) return off;
    this.tailLength = 0;
    if (this.tail[total - 1] !== FRAME_END) throw malformed('bad frame end');
    this.frame(this.tail, 0, type, chan, size);
    return off;
  }

  /** Parses whole frames from `off`; keeps an incomplete one for the next chunk. */
  private parse(b: Buffer, off: number): void {
    const len = b.length;
    const limit = this.frameMax;
    while (len - off >= 7) {
      const type = b[off]!;
      const chan = (b[off + 1]! << 8) | b[off + 2]!;
      const size = b[off + 3]! * 0x1000000 + ((b[off + 4]! << 16) | (b[off + 5]! << 8) | b[off + 6]!);
      const total = size + 8;
      if (size > limit) throw malformed('frame larger than frame_max');
      if (type === 3) {
        const ch = this.bodyFrame(chan, size);
        if (len - off < total) {
          this.skip = total - (len - off);
          this.skipChannel = ch;
          return;
        }
        if (b[off + total - 1] !== FRAME_END) throw malformed('bad frame end');
        off += total;
        if (ch !== null && ch.remaining === 0) {
          this.completePublish(ch);
          if (this.stopped) return;
        }
        continue;
      }
      if (len - off < total) break;
      if (b[off + total - 1] !== FRAME_END) throw malformed('bad frame end');
      this.frame(b, off, type, chan, size);
      off += total;
      if (this.stopped) return;
    }
    if (off < len) {
      const n = len - off;
      if (this.tail.length < n) this.tail = Buffer.allocUnsafe(Math.max(n, 4096));
      b.copy(this.tail, 0, off, len);
      this.tailLength = n;
    }
  }

  /** Checks a body frame's place and counts its bytes; null on a channel being closed. */
  private bodyFrame(chan: number, size: number): Chan | null {
    const ch = this.channels[chan];
    if (ch === undefined || chan === 0) throw malformed('body frame without a content method');
    if (ch.closing) return null;
    if (ch.state !== 2) throw malformed('body frame without a content header');
    const remaining = ch.remaining - size;
    if (remaining < 0) throw malformed('body frames longer than the content header said');
    ch.remaining = remaining;
    return ch;
  }

  /** A whole method, header or heartbeat frame at `off`. */
  private frame(b: Buffer, off: number, type: number, chan: number, size: number): void {
    if (type === 1) {
      if (size < 4) throw malformed('method frame shorter than its ids');
      const classId = (b[off + 7]! << 8) | b[off + 8]!;
      const methodId = (b[off + 9]! << 8) | b[off + 10]!;
      const p = off + 11;
      const end = off + 7 + size;
      let ch: Chan | undefined;
      if (chan !== 0) {
        ch = this.channels[chan];
        if (ch !== undefined && ch.state !== 0 && !ch.closing) throw malformed('method frame inside content');
        if (classId === 60) {
          switch (methodId) {
            case 40:
              this.publish(ch ?? this.channel(chan), b, p, end);
              return;
            case 80: // basic.ack: delivery tag, multiple
              if (end - p !== 9) throw malformed('bad basic.ack');
              if (ch !== undefined && !ch.closing) {
                this.settle(ch, readTag(b, p), (b[p + 8]! & 1) !== 0, false, true);
              }
              return;
            case 120: // basic.nack: delivery tag, multiple, requeue
              if (end - p !== 9) throw malformed('bad basic.nack');
              if (ch !== undefined && !ch.closing) {
                this.settle(ch, readTag(b, p), (b[p + 8]! & 1) !== 0, (b[p + 8]! & 2) !== 0, false);
              }
              return;
            case 90: // basic.reject: delivery tag, requeue
              if (end - p !== 9) throw malformed('bad basic.reject');
              if (ch !== undefined && !ch.closing)
                this.settle(ch, readTag(b, p), false, (b[p + 8]! & 1) !== 0, false);
              return;
          }
        }
      }
      const reader = this.broker.reader;
      let method: Method | undefined;
      try {
        method = decodeMethodArgs(reader.reset(b, p, end), classId, methodId);
      } catch (e) {
        throw malformed(`undecodable method ${classId}/${methodId}: ${(e as Error).message}`);
      } finally {
        reader.release();
      }
      if (method === undefined) return; // unknown method: ignored
      if (chan === 0) this.connectionMethod(method);
      else this.channelMethod(ch ?? this.channel(chan), method);
      return;
    }
    if (type === 2) {
      const ch = this.channels[chan];
      if (ch === undefined || chan === 0) throw malformed('content header without a content method');
      if (ch.closing) return;
      if (ch.state !== 1 || size < 14) throw malformed('unexpected content header');
      const p = off + 7;
      if (((b[p]! << 8) | b[p + 1]!) !== 60) throw malformed('content header of another class');
      const high = readU32(b, p + 4);
      const bodySize = high * TWO_32 + readU32(b, p + 8);
      if (bodySize > MAX_BODY_SIZE) throw malformed(`body of ${bodySize} bytes`);
      ch.size = bodySize;
      // Only an echo queue's requests need their properties (the one test the other publishes pay).
      if (ch.target?.echo === true) readReplyProperties(ch, b, p + 12, off + 7 + size);
      if (bodySize === 0) this.completePublish(ch);
      else {
        ch.state = 2;
        ch.remaining = bodySize;
      }
      return;
    }
    if (type === 8) return; // heartbeat
    throw malformed(`unknown frame type ${type}`);
  }

  private channel(id: number): Chan {
    let ch = this.channels[id];
    if (ch === undefined) {
      ch = new Chan(this, id);
      while (this.channels.length <= id) this.channels.push(undefined);
      this.channels[id] = ch;
    }
    return ch;
  }

  // ---- publishing ----------------------------------------------------------------------------------

  private publish(ch: Chan, b: Buffer, p: number, end: number): void {
    // ticket (2), exchange (shortstr), routing key (shortstr), mandatory + immediate bits
    if (end - p < 5) throw malformed('bad basic.publish');
    const rkAt = p + 3 + b[p + 2]!;
    if (rkAt >= end) throw malformed('bad basic.publish');
    const rkLength = b[rkAt]!;
    const rk = rkAt + 1;
    if (rk + rkLength + 1 !== end) throw malformed('bad basic.publish');
    if (ch.closing) return;
    const broker = this.broker;
    let target: Queue | null;
    if (
      ch.routeKeyLength === rkLength &&
      ch.routeVersion === broker.topologyVersion &&
      sameBytes(b, rk, ch.routeKey, rkLength)
    ) {
      target = ch.routeQueue;
    } else {
      target = broker.queues.get(b.toString('utf8', rk, rk + rkLength)) ?? null;
      b.copy(ch.routeKey, 0, rk, rk + rkLength);
      ch.routeKeyLength = rkLength;
      ch.routeQueue = target;
      ch.routeVersion = broker.topologyVersion;
    }
    ch.target = target;
    ch.state = 1;
  }

  private completePublish(ch: Chan): void {
    ch.state = 0;
    const broker = this.broker;
    broker.published++;
    const q = ch.target;
    if (q !== null && !q.deleted) {
      if (q.echo && ch.replyToLength > 0) {
        // A request to the echo responder: answered, not enqueued (a 406 closes the channel).
        if (!this.echo(ch)) return;
      } else {
        q.ready++;
        q.bodySize = ch.size;
        if (q.consumers.length !== 0 && !q.scheduled) broker.schedule(q);
      }
    }
    if (ch.confirm) {
      ch.seq++;
      if (!ch.ackQueued) {
        ch.ackQueued = true;
        this.ackList.push(ch);
      }
    }
    if (++this.published === broker.blockAfter) {
      this.stopped = true;
      this.blockedNow = true;
      this.socket.pause();
    }
  }

  /** One multiple basic.ack per confirm channel that published since the last call. */
  private writeAcks(): void {
    const list = this.ackList;
    if (list.length === 0) return;
    for (let i = 0; i < list.length; i++) {
      const ch = list[i]!;
      if (ch.ackQueued) {
        ch.ackQueued = false;
        this.writeAck(ch.id, ch.seq);
      }
    }
    list.length = 0;
  }

  private writeAck(chan: number, tag: number): void {
    this.reserve(21);
    const o = this.out;
    const p = this.outPos;
    o[p] = 1;
    o[p + 1] = chan >>> 8;
    o[p + 2] = chan & 0xff;
    o[p + 3] = 0;
    o[p + 4] = 0;
    o[p + 5] = 0;
    o[p + 6] = 13;
    o[p + 7] = 0;
    o[p + 8] = 60;
    o[p + 9] = 0;
    o[p + 10] = 80;
    writeTag(o, p + 11, tag);
    o[p + 19] = 1; // multiple
    o[p + 20] = FRAME_END;
    this.outPos = p + 21;
  }

  /**
   * Answers a direct reply-to request on its channel's reply consumer: `basic.deliver` (no-ack), a
   * content header carrying only the correlation id, and body frames of the request's size, encoded by
   * hand into the output. False (and the channel closed with 406) when the channel has no reply
   * consumer.
   */
  private echo(ch: Chan): boolean {
    if (ch.replyTag === null) {
      this.channelError(ch, 406, 'PRECONDITION_FAILED - fast reply consumer does not exist', 60, 40);
      return false;
    }
    const tagBytes = ch.replyTagBytes;
    const rk = ch.replyToLength;
    const corr = ch.correlationIdLength;
    const size = ch.size;
    const chunk = this.frameMax - 8;
    const bodyFrames = size === 0 ? 0 : Math.ceil(size / chunk);
    // ids (4), consumer tag, delivery tag (8), redelivered (1), exchange '' (1), routing key
    const methodSize = 4 + 1 + tagBytes.length + 8 + 1 + 1 + 1 + rk;
    // class, weight, body size (12), flags (2), correlation id
    const headerSize = 14 + (corr >= 0 ? 1 + corr : 0);
    const total = 8 + methodSize + 8 + headerSize + 8 * bodyFrames + size;
    this.reserve(total);
    const o = this.out;
    let p = this.outPos;
    const id = ch.id;

    p = frameHeader(o, p, 1, id, methodSize);
    o[p] = 0;
    o[p + 1] = 60;
    o[p + 2] = 0;
    o[p + 3] = 60;
    o[p + 4] = tagBytes.length;
    tagBytes.copy(o, p + 5);
    p += 5 + tagBytes.length;
    writeTag(o, p, this.replyDeliveryTag(ch));
    o[p + 8] = 0; // redelivered
    o[p + 9] = 0; // exchange ''
    o[p + 10] = rk;
    ch.replyTo.copy(o, p + 11, 0, rk);
    p += 11 + rk;
    o[p++] = FRAME_END;

    p = frameHeader(o, p, 2, id, headerSize);
    o[p] = 0;
    o[p + 1] = 60;
    o[p + 2] = 0;
    o[p + 3] = 0;
    writeTag(o, p + 4, size);
    o[p + 12] = corr >= 0 ? 0x04 : 0; // correlation-id: bit 10 of the flags
    o[p + 13] = 0;
    p += 14;
    if (corr >= 0) {
      o[p] = corr;
      ch.correlationId.copy(o, p + 1, 0, corr);
      p += 1 + corr;
    }
    o[p++] = FRAME_END;

    for (let left = size; left > 0; ) {
      const n = Math.min(left, chunk);
      p = frameHeader(o, p, 3, id, n);
      o.fill(0x61, p, p + n);
      p += n;
      o[p++] = FRAME_END;
      left -= n;
    }
    this.outPos = p;
    this.broker.delivered++;
    return true;
  }

  /** The next delivery tag of the channel for a no-ack delivery (kept out of the unacked ring). */
  private replyDeliveryTag(ch: Chan): number {
    const tag = ch.nextTag;
    if (ch.unacked > 0) {
      // Other consumers' deliveries are outstanding: the ring covers every tag from its base.
      if (tag + 1 - ch.base > ch.owner.length) growRing(ch, tag + 1 - ch.base);
      ch.owner[tag & ch.mask] = 0;
      ch.nextTag = tag + 1;
    } else {
      ch.nextTag = tag + 1;
      ch.base = tag + 1;
    }
    return tag;
  }

  // ---- delivering ----------------------------------------------------------------------------------

  /** Encodes `copies` deliveries of `size`-byte bodies for consumer `c`, back to back. */
  buildTemplate(c: Consumer, size: number): void {
    const w = new FrameWriter({ frameMax: this.frameMax, maxBodySize: MAX_BODY_SIZE, chunkSize: 64 * 1024 });
    w.writeContent(
      c.ch.id,
      {
        name: 'basic.deliver',
        consumerTag: c.tag,
        deliveryTag: 0,
        redelivered: false,
        exchange: '',
        routingKey: c.queue.name,
      },
      {},
      Buffer.alloc(size, 0x61),
    );
    const taken = w.take()!;
    const one = Buffer.from(taken.buffer, taken.byteOffset, taken.byteLength);
    const copies = Math.max(1, Math.min(MAX_TEMPLATE_COPIES, Math.floor(TEMPLATE_BYTES / one.length)));
    const template = copies === 1 ? one : Buffer.allocUnsafe(copies * one.length);
    for (let i = 1; i < copies; i++) one.copy(template, i * one.length);
    if (copies > 1) one.copy(template, 0);
    c.template = template;
    c.templateLength = one.length;
    c.templateSize = size;
    c.copies = copies;
    // frame header (7), class and method ids (4), consumer tag (1 + length), then the delivery tag
    c.tagOffset = 12 + Buffer.byteLength(c.tag);
  }

  /** Writes `k` (≤ c.copies) deliveries from the consumer's queue. */
  deliver(c: Consumer, k: number): void {
    const ch = c.ch;
    const length = c.templateLength;
    const bytes = k * length;
    this.reserve(bytes);
    const o = this.out;
    const pos = this.outPos;
    c.template.copy(o, pos, 0, bytes);
    let tag = ch.nextTag;
    const track = !c.noAck || ch.unacked > 0;
    if (ch.unacked === 0) ch.base = tag;
    if (track && tag + k - ch.base > ch.owner.length) growRing(ch, tag + k - ch.base);
    const owner = ch.owner;
    const mask = ch.mask;
    const mark = c.noAck ? 0 : c.slot + 1;
    let at = pos + c.tagOffset;
    for (let i = 0; i < k; i++) {
      writeTag(o, at, tag);
      if (track) owner[tag & mask] = mark;
      tag++;
      at += length;
    }
    this.outPos = pos + bytes;
    ch.nextTag = tag;
    if (!track) ch.base = tag;
    c.queue.ready -= k;
    this.broker.delivered += k;
    if (!c.noAck) {
      c.unacked += k;
      ch.unacked += k;
    }
  }

  /** Acks, nacks or rejects `tag` (and all before it with `multiple`; all outstanding for tag 0). */
  private settle(ch: Chan, tag: number, multiple: boolean, requeue: boolean, ack: boolean): void {
    if (ch.unacked === 0) return;
    const owner = ch.owner;
    const mask = ch.mask;
    if (!multiple) {
      if (tag < ch.base || tag >= ch.nextTag) return;
      const o = owner[tag & mask]!;
      if (o === 0) return;
      owner[tag & mask] = 0;
      this.settleOne(ch, ch.slots[o - 1]!, requeue, ack);
    } else {
      const last = tag === 0 || tag >= ch.nextTag ? ch.nextTag - 1 : tag;
      for (let t = ch.base; t <= last; t++) {
        const o = owner[t & mask]!;
        if (o !== 0) {
          owner[t & mask] = 0;
          this.settleOne(ch, ch.slots[o - 1]!, requeue, ack);
        }
      }
    }
    if (ch.unacked === 0) ch.base = ch.nextTag;
    else {
      let base = ch.base;
      while (base < ch.nextTag && owner[base & mask] === 0) base++;
      ch.base = base;
    }
  }

  private settleOne(ch: Chan, c: Consumer, requeue: boolean, ack: boolean): void {
    c.unacked--;
    ch.unacked--;
    const q = c.queue;
    if (ack) this.broker.acked++;
    else if (requeue && !q.deleted) q.ready++;
    if (q.ready > 0 && q.consumers.length > 0 && !q.scheduled) this.broker.schedule(q);
  }

  /** Returns the channel's unacked deliveries to their queues. */
  private requeueAll(ch: Chan): void {
    if (ch.unacked > 0) {
      const owner = ch.owner;
      const mask = ch.mask;
      for (let t = ch.base; t < ch.nextTag; t++) {
        const o = owner[t & mask]!;
        if (o !== 0) {
          owner[t & mask] = 0;
          this.settleOne(ch, ch.slots[o - 1]!, true, false);
        }
      }
    }
    ch.unacked = 0;
    ch.base = ch.nextTag;
  }

  /** Forgets the channel's consumers and requeues its unacked deliveries. */
  private releaseChannel(ch: Chan): void {
    for (const c of ch.slots) this.broker.removeConsumer(c);
    ch.replyTag = null;
    this.requeueAll(ch);
    if (ch.ackQueued) {
      ch.ackQueued = false;
      this.writeAck(ch.id, ch.seq);
    }
    ch.state = 0;
  }

  /** Closes a channel from the broker's side (a 404): the client answers with close-ok. */
  private channelError(
    ch: Chan,
    replyCode: number,
    replyText: string,
    classId: number,
    methodId: number,
  ): void {
    this.releaseChannel(ch);
    ch.closing = true;
    this.sendMethod(ch.id, { name: 'channel.close', replyCode, replyText, classId, methodId });
  }

  private consumerFor(ch: Chan, q: Queue, tag: string, noAck: boolean, consuming: boolean): Consumer {
    const c = new Consumer(
      ch,
      ch.slots.length,
      tag,
      q,
      noAck,
      consuming ? ch.consumerPrefetch : 0,
      consuming,
    );
    ch.slots.push(c);
    return c;
  }

  // ---- methods -------------------------------------------------------------------------------------

  private connectionMethod(m: Method): void {
    switch (m.name) {
      case 'connection.start-ok': {
        const capabilities = m.clientProperties.capabilities as Record<string, unknown> | undefined;
        this.connectionBlocked = capabilities?.['connection.blocked'] === true;
        this.consumerCancelNotify = capabilities?.consumer_cancel_notify === true;
        this.sendMethod(0, {
          name: 'connection.tune',
          channelMax: 2047,
          frameMax: SERVER_FRAME_MAX,
          heartbeat: 0,
        });
        return;
      }
      case 'connection.tune-ok':
        this.frameMax = m.frameMax === 0 ? SERVER_FRAME_MAX : Math.max(4096, m.frameMax);
        if (m.heartbeat > 0 && this.heartbeatTimer === undefined) {
          this.heartbeatTimer = setInterval(() => this.heartbeat(), (m.heartbeat * 1000) / 2);
          this.heartbeatTimer.unref();
        }
        return;
      case 'connection.open':
        this.sendMethod(0, { name: 'connection.open-ok' });
        return;
      case 'connection.close':
        // Confirms first, then nothing more for this connection's consumers, then close-ok.
        this.writeAcks();
        this.paused = true;
        for (const ch of this.channels) if (ch !== undefined) this.releaseChannel(ch);
        this.channels = [];
        this.sendMethod(0, { name: 'connection.close-ok' });
        this.stopped = true;
        this.ending = true;
        return;
      case 'connection.close-ok':
        this.stopped = true;
        this.socket.destroy();
        return;
      case 'connection.update-secret':
        this.sendMethod(0, { name: 'connection.update-secret-ok' });
        return;
      default:
        return; // secure-ok, blocked/unblocked from the client, methods of other classes: ignored
    }
  }

  private channelMethod(ch: Chan, m: Method): void {
    const broker = this.broker;
    const id = ch.id;
    if (ch.closing) {
      if (m.name === 'channel.close-ok' || m.name === 'channel.close') {
        if (m.name === 'channel.close') this.sendMethod(id, { name: 'channel.close-ok' });
        this.channels[id] = undefined;
      }
      return;
    }
    switch (m.name) {
      case 'channel.open':
        // A fresh channel (re-opening an open one starts it over).
        this.releaseChannel(ch);
        this.channels[id] = undefined;
        this.channel(id);
        this.sendMethod(id, { name: 'channel.open-ok' });
        return;
      case 'channel.close':
        this.releaseChannel(ch);
        ch.closing = true;
        this.channels[id] = undefined;
        this.sendMethod(id, { name: 'channel.close-ok' });
        return;
      case 'channel.close-ok':
        return;
      case 'channel.flow':
        ch.flow = m.active;
        this.sendMethod(id, { name: 'channel.flow-ok', active: m.active });
        if (m.active) this.scheduleChannel(ch);
        return;
      case 'exchange.declare':
        if (!m.nowait) this.sendMethod(id, { name: 'exchange.declare-ok' });
        return;
      case 'exchange.delete':
        if (!m.nowait) this.sendMethod(id, { name: 'exchange.delete-ok' });
        return;
      case 'exchange.bind':
        if (!m.nowait) this.sendMethod(id, { name: 'exchange.bind-ok' });
        return;
      case 'exchange.unbind':
        if (!m.nowait) this.sendMethod(id, { name: 'exchange.unbind-ok' });
        return;
      case 'queue.declare': {
        const name = m.queue === '' ? broker.queueName() : m.queue;
        let q = broker.queues.get(name);
        if (q === undefined) {
          if (m.passive) {
            this.channelError(ch, 404, notFound(name), 50, 10);
            return;
          }
          q = new Queue(name);
          broker.queues.set(name, q);
          broker.topologyVersion++;
        }
        if (m.arguments[ECHO_ARGUMENT] === true) q.echo = true;
        if (!m.nowait) {
          this.sendMethod(id, {
            name: 'queue.declare-ok',
            queue: name,
            messageCount: q.ready,
            consumerCount: q.consumers.length,
          });
        }
        return;
      }
      case 'queue.bind':
        if (!m.nowait) this.sendMethod(id, { name: 'queue.bind-ok' });
        return;
      case 'queue.unbind':
        this.sendMethod(id, { name: 'queue.unbind-ok' });
        return;
      case 'queue.purge': {
        const q = broker.queues.get(m.queue);
        if (q === undefined) {
          this.channelError(ch, 404, notFound(m.queue), 50, 30);
          return;
        }
        const messageCount = q.ready;
        q.ready = 0;
        if (!m.nowait) this.sendMethod(id, { name: 'queue.purge-ok', messageCount });
        return;
      }
      case 'queue.delete': {
        const q = broker.queues.get(m.queue);
        const messageCount = q?.ready ?? 0;
        if (q !== undefined) broker.deleteQueue(q);
        if (!m.nowait) this.sendMethod(id, { name: 'queue.delete-ok', messageCount });
        return;
      }
      case 'basic.qos':
        if (m.global) ch.globalPrefetch = m.prefetchCount;
        else ch.consumerPrefetch = m.prefetchCount;
        this.sendMethod(id, { name: 'basic.qos-ok' });
        this.scheduleChannel(ch);
        return;
      case 'basic.consume': {
        if (m.queue === DIRECT_REPLY_TO) {
          this.replyConsumer(ch, m.consumerTag, m.noAck, m.nowait);
          return;
        }
        const q = broker.queues.get(m.queue);
        if (q === undefined) {
          this.channelError(ch, 404, notFound(m.queue), 60, 20);
          return;
        }
        const tag = m.consumerTag === '' ? broker.consumerTag() : m.consumerTag;
        const c = this.consumerFor(ch, q, tag, m.noAck, true);
        q.consumers.push(c);
        if (!m.nowait) this.sendMethod(id, { name: 'basic.consume-ok', consumerTag: tag });
        broker.schedule(q);
        return;
      }
      case 'basic.cancel': {
        if (ch.replyTag === m.consumerTag) ch.replyTag = null;
        for (const c of ch.slots) {
          if (c.consuming && c.active && c.tag === m.consumerTag) broker.removeConsumer(c);
        }
        if (!m.nowait) this.sendMethod(id, { name: 'basic.cancel-ok', consumerTag: m.consumerTag });
        return;
      }
      case 'basic.get':
        this.get(ch, m.queue, m.noAck);
        return;
      case 'basic.recover':
        this.requeueAll(ch);
        this.sendMethod(id, { name: 'basic.recover-ok' });
        return;
      case 'basic.recover-async':
        this.requeueAll(ch);
        return;
      case 'confirm.select':
        ch.confirm = true;
        if (!m.nowait) this.sendMethod(id, { name: 'confirm.select-ok' });
        return;
      case 'tx.select':
        this.sendMethod(id, { name: 'tx.select-ok' });
        return;
      case 'tx.commit':
        this.sendMethod(id, { name: 'tx.commit-ok' });
        return;
      case 'tx.rollback':
        this.sendMethod(id, { name: 'tx.rollback-ok' });
        return;
      default:
        return; // unknown here (or sent by the wrong side): ignored
    }
  }

  /** `basic.consume` on `amq.rabbitmq.reply-to`: no queue, no-ack only, one per channel (RabbitMQ's rules). */
  private replyConsumer(ch: Chan, consumerTag: string, noAck: boolean, nowait: boolean): void {
    if (!noAck) {
      this.channelError(ch, 406, 'PRECONDITION_FAILED - reply consumer cannot acknowledge', 60, 20);
      return;
    }
    if (ch.replyTag !== null) {
      this.channelError(ch, 406, 'PRECONDITION_FAILED - reply consumer already set', 60, 20);
      return;
    }
    const tag = consumerTag === '' ? this.broker.consumerTag() : consumerTag;
    ch.replyTag = tag;
    ch.replyTagBytes = Buffer.from(tag, 'utf8');
    if (!nowait) this.sendMethod(ch.id, { name: 'basic.consume-ok', consumerTag: tag });
  }

  private get(ch: Chan, queue: string, noAck: boolean): void {
    const q = this.broker.queues.get(queue);
    if (q === undefined) {
      this.channelError(ch, 404, notFound(queue), 60, 70);
      return;
    }
    if (q.ready === 0) {
      this.sendMethod(ch.id, { name: 'basic.get-empty' });
      return;
    }
    let c = ch.getConsumers?.get(q);
    if (c === undefined) {
      c = this.consumerFor(ch, q, '', false, false);
      ch.getConsumers ??= new Map();
      ch.getConsumers.set(q, c);
    }
    const tag = ch.nextTag;
    if (ch.unacked === 0) ch.base = tag;
    if (!noAck || ch.unacked > 0) {
      if (tag + 1 - ch.base > ch.owner.length) growRing(ch, tag + 1 - ch.base);
      ch.owner[tag & ch.mask] = noAck ? 0 : c.slot + 1;
    }
    ch.nextTag = tag + 1;
    if (ch.unacked === 0 && noAck) ch.base = ch.nextTag;
    if (!noAck) {
      c.unacked++;
      ch.unacked++;
    }
    q.ready--;
    this.broker.delivered++;
    const w = new FrameWriter({ frameMax: this.frameMax, maxBodySize: MAX_BODY_SIZE });
    w.writeContent(
      ch.id,
      {
        name: 'basic.get-ok',
        deliveryTag: tag,
        redelivered: false,
        exchange: '',
        routingKey: q.name,
        messageCount: q.ready,
      },
      {},
      Buffer.alloc(q.bodySize, 0x61),
    );
    for (const segment of w.takeSegments()) this.append(segment);
  }

  /** Queues whose consumers on this channel may now have credit. */
  private scheduleChannel(ch: Chan): void {
    for (const c of ch.slots) if (c.active && c.queue.ready > 0) this.broker.schedule(c.queue);
  }

  // ---- output --------------------------------------------------------------------------------------

  pendingBytes(): number {
    return this.outPos - this.outStart + (this.sealed.length === 0 ? 0 : FLUSH_BYTES);
  }

  /** Makes room for `n` bytes at `outPos` and marks the connection for the next flush. */
  private reserve(n: number): void {
    if (this.outPos + n > this.out.length) {
      if (this.outPos > this.outStart) this.sealed.push(this.out.subarray(this.outStart, this.outPos));
      this.out = Buffer.allocUnsafe(Math.max(OUT_CHUNK, n));
      this.outStart = 0;
      this.outPos = 0;
    }
    if (!this.dirty) {
      this.dirty = true;
      this.broker.dirty.push(this);
    }
  }

  private append(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.out.set(bytes, this.outPos);
    this.outPos += bytes.length;
  }

  sendMethod(chan: number, method: MethodInit): void {
    const w = this.broker.writer;
    w.writeMethod(chan, method);
    for (const segment of w.takeSegments()) this.append(segment);
  }

  /** Writes the pending output in one write (several buffers: corked, one writev). */
  flush(): void {
    const hasCurrent = this.outPos > this.outStart;
    if (!hasCurrent && this.sealed.length === 0) return;
    if (this.dead) {
      this.sealed.length = 0;
      this.outStart = this.outPos;
      return;
    }
    const socket = this.socket;
    let ok: boolean;
    if (this.sealed.length === 0) {
      ok = socket.write(this.out.subarray(this.outStart, this.outPos));
    } else {
      socket.cork();
      ok = true;
      for (const segment of this.sealed) ok = socket.write(segment);
      if (hasCurrent) ok = socket.write(this.out.subarray(this.outStart, this.outPos));
      socket.uncork();
      this.sealed = [];
    }
    this.outStart = this.outPos;
    this.wrote = true;
    if (!ok) this.paused = true;
  }

  private heartbeat(): void {
    if (!this.wrote && !this.dead && this.started) {
      this.reserve(8);
      const o = this.out;
      const p = this.outPos;
      o[p] = 8;
      o.fill(0, p + 1, p + 7);
      o[p + 7] = FRAME_END;
      this.outPos = p + 8;
      this.flush();
    }
    this.wrote = false;
  }

  private onDrain(): void {
    if (this.dead) return;
    this.paused = false;
    try {
      for (const ch of this.channels) if (ch !== undefined) this.scheduleChannel(ch);
      this.broker.runPending();
    } catch (e) {
      this.fail(e);
    }
  }

  // ---- end -----------------------------------------------------------------------------------------

  /** Malformed input or an internal failure: this connection goes, the others stay. */
  fail(_error: unknown): void {
    this.stopped = true;
    this.paused = true; // no more deliveries before 'close' cleans up
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.dead) return;
    this.dead = true;
    this.stopped = true;
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    const broker = this.broker;
    broker.conns.delete(this);
    try {
      for (const ch of this.channels) if (ch !== undefined) this.releaseChannel(ch);
      this.channels = [];
      broker.runPending();
    } catch {
      // nothing left to tell this connection; the others were written to before the failure
    }
  }
}

/** RabbitMQ's reply text for a missing queue, cut to fit a short string. */
function notFound(queue: string): string {
  const text = `NOT_FOUND - no queue '${queue}' in vhost '/'`;
  return Buffer.byteLength(text) <= 255 ? text : "NOT_FOUND - no queue of that name in vhost '/'";
}

function readU32(b: Buffer, p: number): number {
  return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
}

function readTag(b: Buffer, p: number): number {
  return readU32(b, p) * TWO_32 + readU32(b, p + 4);
}

function writeTag(o: Buffer, p: number, tag: number): void {
  const low = tag >>> 0;
  const high = (tag - low) / TWO_32;
  o[p] = high >>> 24;
  o[p + 1] = (high >>> 16) & 0xff;
  o[p + 2] = (high >>> 8) & 0xff;
  o[p + 3] = high & 0xff;
  o[p + 4] = low >>> 24;
  o[p + 5] = (low >>> 16) & 0xff;
  o[p + 6] = (low >>> 8) & 0xff;
  o[p + 7] = low & 0xff;
}

function sameBytes(b: Buffer, p: number, key: Buffer, n: number): boolean {
  for (let i = 0; i < n; i++) if (b[p + i] !== key[i]) return false;
  return true;
}

/** Writes a frame header (type, channel, payload size) at `p`; returns where the payload starts. */
function frameHeader(o: Buffer, p: number, type: number, chan: number, size: number): number {
  o[p] = type;
  o[p + 1] = chan >>> 8;
  o[p + 2] = chan & 0xff;
  o[p + 3] = size >>> 24;
  o[p + 4] = (size >>> 16) & 0xff;
  o[p + 5] = (size >>> 8) & 0xff;
  o[p + 6] = size & 0xff;
  return p + 7;
}

/**
 * Reads the reply-to (kept only when it starts with `amq.rabbitmq.reply-to`) and the correlation id of
 * a content header's properties, whose flags are at `p`, into the channel. The properties before them
 * are skipped in their wire order: content-type, content-encoding (short strings), headers (a table,
 * skipped by its length), delivery-mode and priority (octets); nothing after reply-to is read.
 */
function readReplyProperties(ch: Chan, b: Buffer, p: number, end: number): void {
  ch.replyToLength = 0;
  ch.correlationIdLength = -1;
  if (p + 2 > end) throw malformed('content header without property flags');
  const flags = (b[p]! << 8) | b[p + 1]!;
  let at = p + 2;
  // Further flag words (bit 0 set): basic has no property there, so they are only stepped over.
  for (let more = flags & 1; more !== 0; at += 2) {
    if (at + 2 > end) throw malformed('bad property flags');
    more = b[at + 1]! & 1;
  }
  if ((flags & 0x0600) === 0) return; // neither correlation-id nor reply-to
  if ((flags & 0x8000) !== 0) at = skipShortString(b, at, end); // content-type
  if ((flags & 0x4000) !== 0) at = skipShortString(b, at, end); // content-encoding
  if ((flags & 0x2000) !== 0) {
    if (at + 4 > end) throw malformed('bad headers property');
    at += 4 + readU32(b, at); // headers: a table, by its byte length
  }
  if ((flags & 0x1000) !== 0) at++; // delivery-mode
  if ((flags & 0x0800) !== 0) at++; // priority
  if ((flags & 0x0400) !== 0) {
    const next = skipShortString(b, at, end);
    b.copy(ch.correlationId, 0, at + 1, next);
    ch.correlationIdLength = next - at - 1;
    at = next;
  }
  if ((flags & 0x0200) !== 0) {
    const next = skipShortString(b, at, end);
    const length = next - at - 1;
    if (
      length >= DIRECT_REPLY_TO_BYTES.length &&
      sameBytes(b, at + 1, DIRECT_REPLY_TO_BYTES, DIRECT_REPLY_TO_BYTES.length)
    ) {
      b.copy(ch.replyTo, 0, at + 1, next);
      ch.replyToLength = length;
    }
  }
}

/** The position after the short string at `at`, checked against `end`. */
function skipShortString(b: Buffer, at: number, end: number): number {
  if (at >= end) throw malformed('bad content header properties');
  const next = at + 1 + b[at]!;
  if (next > end) throw malformed('bad content header properties');
  return next;
}

/** Grows a channel's ring of unacked tags to hold at least `needed` tags from its base. */
function growRing(ch: Chan, needed: number): void {
  let size = ch.owner.length;
  while (size < needed) size *= 2;
  const owner = new Int32Array(size);
  const mask = size - 1;
  for (let t = ch.base; t < ch.nextTag; t++) owner[t & mask] = ch.owner[t & ch.mask]!;
  ch.owner = owner;
  ch.mask = mask;
}
