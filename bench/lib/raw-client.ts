/**
 * The raw client: the least a client can do to publish with confirms, used by the bench as the ceiling
 * of the broker on this machine. It opens one connection and one channel with a hand-driven
 * handshake, pre-encodes a batch of `basic.publish` triplets once, and then only writes slices of that
 * buffer to the socket and counts the broker's `basic.ack`s with the codec's decoder. No channel layer,
 * no RxJS, no per-message objects: whatever rate it reaches is what the broker gives any client.
 *
 * @module
 */
import * as net from 'node:net';
import { FrameDecoder, FrameWriter, type Method, type MethodInit } from '../../src/protocol/index.js';

/** An open raw connection with channel 1 in confirm mode. */
export interface RawConfirmClient {
  /**
   * Publishes `n` messages (the body given at creation, to `queue` via the default exchange) with at
   * most `window` unconfirmed, and resolves when the broker has acked all of them.
   */
  publishConfirmed(queue: string, n: number, window: number): Promise<void>;
  /** Sends `queue.purge` and waits for its reply. */
  purge(queue: string): Promise<void>;
  /** Sends `queue.declare` (transient, not auto-delete) and waits for its reply. */
  declare(queue: string): Promise<void>;
  /** Sends `queue.delete` and waits for its reply. */
  delete(queue: string): Promise<void>;
  close(): Promise<void>;
}

/** Connects to `host:port` as `user`/`password` and opens channel 1 in confirm mode. */
export async function openRawConfirmClient(url: URL, body: Buffer): Promise<RawConfirmClient> {
  const socket = net.connect({ host: url.hostname, port: Number(url.port || 5672), noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const writer = new FrameWriter();
  let waiting: ((m: Method) => void) | undefined;
  let onAck: ((tag: number, multiple: boolean) => void) | undefined;
  let failure: Error | undefined;
  const decoder = new FrameDecoder({
    onMethod(_channel, method) {
      if (method.name === 'basic.ack') {
        onAck?.(Number(method.deliveryTag), method.multiple);
        return;
      }
      if (method.name === 'connection.close' || method.name === 'channel.close') {
        failure = new Error(`raw client: broker sent ${method.name} ${method.replyCode} ${method.replyText}`);
        socket.destroy(failure);
        return;
      }
      const w = waiting;
      waiting = undefined;
      w?.(method);
    },
    onContent() {},
    onHeartbeat() {},
  });
  socket.on('data', (chunk) => decoder.push(chunk));
  socket.on('error', (e) => {
    failure ??= e;
  });

  const send = (channel: number, method: MethodInit): void => {
    writer.writeMethod(channel, method);
    for (const b of writer.takeSegments()) socket.write(b);
  };
  const reply = (): Promise<Method> =>
    new Promise((resolve, reject) => {
      if (failure !== undefined) reject(failure);
      waiting = resolve;
      socket.once('close', () => reject(failure ?? new Error('raw client: socket closed')));
    });
  const call = async (channel: number, method: MethodInit): Promise<Method> => {
    const r = reply();
    send(channel, method);
    return r;
  };

  let r = reply();
  socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
  await r; // connection.start
  const user = decodeURIComponent(url.username || 'guest');
  const password = decodeURIComponent(url.password || 'guest');
  const tune = await call(0, {
    name: 'connection.start-ok',
    clientProperties: { product: 'rxamqp bench raw client' },
    mechanism: 'PLAIN',
    response: `\0${user}\0${password}`,
  });
  if (tune.name !== 'connection.tune') throw new Error(`raw client: expected tune, got ${tune.name}`);
  const frameMax = tune.frameMax === 0 ? 131072 : Math.min(tune.frameMax, 131072);
  send(0, { name: 'connection.tune-ok', channelMax: 1, frameMax, heartbeat: 0 });
  writer.frameMax = frameMax;
  decoder.frameMax = frameMax;
  const vhost = decodeURIComponent(url.pathname.slice(1)) || '/';
  await call(0, { name: 'connection.open', virtualHost: vhost });
  await call(1, { name: 'channel.open' });
  await call(1, { name: 'confirm.select' });

  // One pre-encoded batch per queue: `PRE` publish triplets written as slices.
  const PRE = 1000;
  const batches = new Map<string, { buf: Buffer; frameLen: number }>();
  const batchFor = (queue: string) => {
    let b = batches.get(queue);
    if (b === undefined) {
      const w = new FrameWriter({});
      w.frameMax = frameMax;
      w.writeContent(1, { name: 'basic.publish', exchange: '', routingKey: queue }, {}, body);
      const one = w.take()!;
      const buf = Buffer.allocUnsafe(one.length * PRE);
      for (let i = 0; i < PRE; i++) one.copy(buf, i * one.length);
      b = { buf, frameLen: one.length };
      batches.set(queue, b);
    }
    return b;
  };

  let nextTag = 1;
  return {
    publishConfirmed(queue, n, window) {
      const { buf, frameLen } = batchFor(queue);
      return new Promise<void>((resolve, reject) => {
        let sent = 0;
        let acked = 0;
        const firstTag = nextTag;
        const pump = (): void => {
          let room = Math.min(window - (sent - acked), n - sent);
          while (room > 0) {
            const k = Math.min(room, PRE);
            socket.write(buf.subarray(0, k * frameLen));
            sent += k;
            room -= k;
          }
        };
        onAck = (tag, multiple) => {
          const upTo = tag - firstTag + 1;
          acked = multiple ? Math.max(acked, upTo) : acked + 1;
          if (acked >= n) {
            onAck = undefined;
            nextTag = firstTag + n;
            resolve();
          } else pump();
        };
        socket.once('close', () => reject(failure ?? new Error('raw client: socket closed')));
        pump();
      });
    },
    async purge(queue) {
      await call(1, { name: 'queue.purge', queue });
    },
    async declare(queue) {
      await call(1, { name: 'queue.declare', queue, durable: false, autoDelete: false });
    },
    async delete(queue) {
      await call(1, { name: 'queue.delete', queue });
    },
    async close() {
      const done = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      r = reply();
      send(0, { name: 'connection.close', replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
      await r.catch(() => undefined);
      socket.end();
      await done;
    },
  };
}
