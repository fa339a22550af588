/**
 * The `codec` scenario: the pure wire codec, with no socket.
 *
 * - **encode**: `FrameWriter.writePublish` of basic.publish triplets (method, header, body frames) with a
 *   256-byte body, calling `take()` every {@link TAKE_EVERY} messages as a transport would.
 * - **decode**: a buffer of pre-encoded basic.deliver triplets fed to `FrameDecoder` in 64 KiB chunks
 *   cut without regard to frame boundaries, as a socket delivers them, with a handler that reads what
 *   it is given.
 *
 * Each comes in two property sets: typical (content type, persistent delivery mode) and the same with
 * a small headers table.
 *
 * @module
 */

import { deepStrictEqual, strictEqual } from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  type BasicProperties,
  type ContentMethod,
  FrameDecoder,
  type FrameHandler,
  FrameWriter,
  type Method,
} from '../src/protocol/index.js';
import type { Scenario, Target, Workload } from './lib/types.js';

/** Negotiated frame_max (RabbitMQ's default). */
const FRAME_MAX = 131072;
const BODY_SIZE = 256;
/** Messages written between two `take()` calls. */
const TAKE_EVERY = 64;
/** Socket read size. */
const CHUNK_SIZE = 64 * 1024;
/** Deliveries in the pre-encoded decode buffer (a few MiB, larger than the CPU caches). */
const DELIVERIES = 16384;
const CHANNEL = 1;
const EXCHANGE = 'orders';
const ROUTING_KEY = 'orders.created.eu-west';
const CONSUMER_TAG = 'amq.ctag-Xx3lJ0ZrhBDy4a1qXJ4T8A';

const TARGET: Target = { opsPerSec: 1_000_000, label: '≥ 1M/s' };

interface Variant {
  readonly suffix: string;
  readonly properties: BasicProperties;
  /**
   * The properties of the i-th delivered message, where some vary per message (a trace id): so that
   * the decode figures do not profit from caches that real traffic would not hit.
   */
  delivered(i: number): BasicProperties;
}

const PLAIN: BasicProperties = { contentType: 'application/json', deliveryMode: 2 };

function withHeaders(traceId: string): BasicProperties {
  return {
    contentType: 'application/json',
    deliveryMode: 2,
    headers: { 'x-tenant': 'acme', 'x-attempt': 1, 'x-trace-id': traceId },
  };
}

/** A 32-hex-digit trace id that differs per message. */
function traceId(i: number): string {
  return `4bf92f3577b34da6${(i * 2654435761).toString(16).padStart(16, '0').slice(-16)}`;
}

const VARIANTS: readonly Variant[] = [
  { suffix: '', properties: PLAIN, delivered: () => PLAIN },
  { suffix: ' +headers', properties: withHeaders(traceId(0)), delivered: (i) => withHeaders(traceId(i)) },
];

function encodeWorkload(variant: Variant): Workload {
  const properties = variant.properties;
  const body = randomBytes(BODY_SIZE);
  const writer = new FrameWriter({ frameMax: FRAME_MAX });
  return {
    name: `encode publish${variant.suffix}`,
    unit: 'triplet',
    cpuBound: true,
    params: {
      bodySize: BODY_SIZE,
      frameMax: FRAME_MAX,
      takeEvery: TAKE_EVERY,
      headers: variant.suffix !== '',
    },
    target: TARGET,
    setup() {
      // The bytes written must decode back to what was published.
      const published: { method: ContentMethod; properties: BasicProperties; body: Buffer }[] = [];
      const decoder = new FrameDecoder(
        {
          onMethod: unexpected,
          onContent: (_channel, method, props, received) => {
            published.push({ method, properties: props, body: received as Buffer });
          },
          onHeartbeat: unexpected,
        },
        { frameMax: FRAME_MAX },
      );
      const check = new FrameWriter({ frameMax: FRAME_MAX });
      for (let i = 0; i < 3; i++) check.writePublish(CHANNEL, EXCHANGE, ROUTING_KEY, body, properties);
      decoder.push(check.take()!);
      strictEqual(published.length, 3);
      for (const message of published) {
        deepStrictEqual(message.method, {
          name: 'basic.publish',
          ticket: 0,
          exchange: EXCHANGE,
          routingKey: ROUTING_KEY,
          mandatory: false,
          immediate: false,
        });
        deepStrictEqual(message.properties, properties);
        deepStrictEqual(message.body, body);
      }
    },
    run(n) {
      const w = writer;
      const framesBefore = w.framesWritten;
      let written = 0;
      let sinceTake = 0;
      for (let i = 0; i < n; i++) {
        w.writePublish(CHANNEL, EXCHANGE, ROUTING_KEY, body, properties);
        if (++sinceTake === TAKE_EVERY) {
          sinceTake = 0;
          written += w.take()!.length;
        }
      }
      const rest = w.take();
      if (rest !== undefined) written += rest.length;
      return { counters: { frames: w.framesWritten - framesBefore, bytes: written } };
    },
  };
}

function unexpected(): never {
  throw new Error('unexpected frame');
}

/** Encodes `count` deliveries (delivery tags 1..count) into one buffer. */
function encodeDeliveries(count: number, variant: Variant, body: Buffer): Buffer {
  const writer = new FrameWriter({ frameMax: FRAME_MAX });
  const parts: Uint8Array[] = [];
  for (let i = 1; i <= count; i++) {
    writer.writeContent(
      CHANNEL,
      {
        name: 'basic.deliver',
        consumerTag: CONSUMER_TAG,
        deliveryTag: i,
        redelivered: false,
        exchange: EXCHANGE,
        routingKey: ROUTING_KEY,
      },
      variant.delivered(i),
      body,
    );
    if (i % TAKE_EVERY === 0) parts.push(writer.take()!);
  }
  const rest = writer.take();
  if (rest !== undefined) parts.push(rest);
  return Buffer.concat(parts);
}

/** Views of `buf` of `size` bytes each (the last one shorter), cut regardless of frame boundaries. */
function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < buf.length; off += size)
    out.push(buf.subarray(off, Math.min(off + size, buf.length)));
  return out;
}

function decodeWorkload(variant: Variant): Workload {
  const body = randomBytes(BODY_SIZE);
  let stream: Buffer = Buffer.alloc(0);
  let pieces: Buffer[] = [];

  // What the handler reads, so that nothing the decoder produces is dead.
  let delivered = 0;
  let lastTag = 0;
  let checksum = 0;
  const handler: FrameHandler = {
    onMethod(_channel: number, method: Method): void {
      throw new Error(`unexpected method ${method.name}`);
    },
    onContent(channel, method, props, received) {
      delivered++;
      if (method.name === 'basic.deliver') {
        lastTag = method.deliveryTag;
        checksum += method.consumerTag.length + method.routingKey.length + (method.redelivered ? 1 : 0);
      }
      checksum += channel + received.length + received[received.length - 1]! + (props.deliveryMode ?? 0);
      checksum += props.contentType?.length ?? 0;
      const attempt = props.headers?.['x-attempt'];
      if (typeof attempt === 'number') checksum += attempt;
    },
    onHeartbeat: unexpected,
  };
  const decoder = new FrameDecoder(handler, { frameMax: FRAME_MAX });

  return {
    name: `decode deliver${variant.suffix}`,
    unit: 'triplet',
    cpuBound: true,
    params: {
      bodySize: BODY_SIZE,
      frameMax: FRAME_MAX,
      chunkSize: CHUNK_SIZE,
      deliveriesPerPass: DELIVERIES,
      headers: variant.suffix !== '',
    },
    target: TARGET,
    setup() {
      stream = encodeDeliveries(DELIVERIES, variant, body);
      pieces = chunks(stream, CHUNK_SIZE);
      // One checked pass: every delivery arrives, in order, intact. Each is checked as it arrives and
      // none is kept: decoded objects kept alive here would teach V8 to pretenure the decoder's
      // allocations, and the measured rounds would then run in that (slower) mode.
      let seen = 0;
      const check = new FrameDecoder(
        {
          onMethod: unexpected,
          onContent: (_channel, method, props, received) => {
            seen++;
            strictEqual(method.name === 'basic.deliver' ? method.deliveryTag : -1, seen);
            if (seen <= 4 || seen === DELIVERIES) {
              deepStrictEqual(props, variant.delivered(seen));
              deepStrictEqual(received, body);
            }
          },
          onHeartbeat: unexpected,
        },
        { frameMax: FRAME_MAX },
      );
      for (const piece of pieces) check.push(piece);
      strictEqual(seen, DELIVERIES);
      strictEqual(check.bufferedBytes, 0);
    },
    run(n) {
      const passes = Math.max(1, Math.ceil(n / DELIVERIES));
      const framesBefore = decoder.framesDecoded;
      const deliveredBefore = delivered;
      const list = pieces;
      for (let p = 0; p < passes; p++) {
        for (let i = 0; i < list.length; i++) decoder.push(list[i]!);
      }
      const ops = passes * DELIVERIES;
      if (delivered - deliveredBefore !== ops || lastTag !== DELIVERIES || checksum <= 0) {
        throw new Error(`decoded ${delivered - deliveredBefore} deliveries, expected ${ops}`);
      }
      return {
        ops,
        counters: { frames: decoder.framesDecoded - framesBefore, bytes: passes * stream.length },
      };
    },
  };
}

const codec: Scenario = {
  name: 'codec',
  description: 'FrameWriter/FrameDecoder throughput: publish triplets encoded, deliver triplets decoded',
  workloads: () => [...VARIANTS.map(encodeWorkload), ...VARIANTS.map(decodeWorkload)],
};

export default codec;
