/**
 * Records golden fixtures: the exact bytes a real RabbitMQ sends for a fixed conversation, cut into one
 * JSON file per server method (or content triplet) in `test/fixtures/golden/`. `test/protocol/golden.test.ts`
 * decodes them and re-encodes them byte for byte, without a broker.
 *
 * Usage: `npx tsx scripts/capture-golden.ts` (broker from AMQP_URL, else 127.0.0.1:5672 — see
 * test/support/broker.ts). The fixtures are committed data; rerun only to refresh them, then review the
 * golden test's expectations (the server-named queue and the server version change between runs).
 *
 * The connection negotiates frame_max 4096 (the protocol minimum) so that a 10 KB body arrives in
 * several body frames.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BasicProperties, Decimal, type FieldTable, field } from '../src/node.js';
import type { MethodName } from '../src/protocol/index.js';
import { AmqpTestSocket, type ServerEvent } from '../test/support/amqp-socket.js';
import { brokerEndpoint, redactUrl, stopBroker } from '../test/support/broker.js';

const OUT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'golden');
const FRAME_MAX = 4096;
const CONSUMER_TAG = 'golden-consumer';
const MISSING_QUEUE = 'rxamqp.golden.missing-queue';
const UNROUTABLE_KEY = 'rxamqp.golden.unroutable';

/** One fixture file. */
interface Fixture {
  description: string;
  /** What the client sent to provoke the bytes. */
  trigger: string;
  /** Name of the (first) method in the bytes. */
  method: MethodName;
  channel: number;
  /** frame_max in effect when the bytes were received (the re-encode must split bodies the same way). */
  frameMax: number;
  /** Number of whole frames in `hex`. */
  frames: number;
  broker: string;
  hex: string;
}

/**
 * A message with all 14 basic properties and headers with every field type tag RabbitMQ accepts:
 * t b B s u I i l f d D S x A T F V.
 */
export const RICH_HEADERS: FieldTable = {
  bool: true,
  int8: field.int8(-100),
  uint8: field.uint8(200),
  int16: field.int16(-30000),
  uint16: field.uint16(60000),
  int32: -2000000000,
  uint32: field.uint32(4000000000),
  int64: 2n ** 62n + 3n,
  int64small: field.int64(42),
  float32: field.float32(1.5),
  float64: Math.PI,
  decimal: new Decimal(2, 1999),
  string: 'h\u00e9llo w\u00f6rld \u2713',
  bytes: Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]),
  array: [1, 'two', false, null, field.int8(-1), [field.uint16(7)], { inner: 'x' }],
  timestamp: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
  table: { name: 'nested', depth: { level: 2, ok: true } },
  void: null,
};

export const RICH_PROPERTIES: BasicProperties = {
  contentType: 'application/json',
  contentEncoding: 'utf-8',
  headers: RICH_HEADERS,
  deliveryMode: 2,
  priority: 7,
  correlationId: 'corr-0042',
  replyTo: 'rxamqp.golden.replies',
  expiration: '600000',
  messageId: 'msg-0001',
  timestamp: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
  type: 'golden.rich',
  userId: 'guest',
  appId: 'rxamqp-golden',
  clusterId: 'golden-cluster',
};

const RICH_BODY = Buffer.from('{"golden":"deliver","n":1}');
const GET_BODY = Buffer.from('golden get-ok body');
const RETURN_BODY = Buffer.from('nobody is listening');
const CONFIRM_BODY = Buffer.from('confirm me');
/** 10 KiB of a recognizable pattern: byte i is i % 251. */
const LARGE_BODY = Buffer.from(Array.from({ length: 10 * 1024 }, (_, i) => i % 251));

async function main(): Promise<void> {
  const endpoint = await brokerEndpoint();
  console.log(`capturing from ${redactUrl(endpoint.url)} (${endpoint.source})`);
  if (endpoint.username !== 'guest') {
    throw new Error('the rich message sets user-id "guest": capture with the guest user');
  }
  const amqp = await AmqpTestSocket.connect(endpoint);
  const fixtures = new Map<string, Fixture>();
  let broker = 'unknown';
  let frameMax = 4096;

  const record = (file: string, event: ServerEvent, description: string, trigger: string): void => {
    if (event.kind === 'heartbeat') throw new Error(`unexpected heartbeat while capturing ${file}`);
    if (fixtures.has(file)) throw new Error(`fixture ${file} recorded twice`);
    fixtures.set(file, {
      description,
      trigger,
      method: event.method.name,
      channel: event.channel,
      frameMax,
      frames: event.frames,
      broker,
      hex: event.raw.toString('hex'),
    });
  };

  try {
    // connection: start, tune (both with frame_max still at the 4096 minimum), open-ok
    const hs = await amqp.handshake({
      frameMax: FRAME_MAX,
      clientProperties: { product: 'rxamqp-golden-capture' },
    });
    const props = hs.start.method.serverProperties;
    broker = `${String(props.product)} ${String(props.version)}`;
    record(
      'connection-start.json',
      hs.start,
      'connection.start: server properties (with capabilities), mechanisms and locales',
      'protocol header AMQP 0-9-1',
    );
    record(
      'connection-tune.json',
      hs.tune,
      "connection.tune: the server's channel_max, frame_max and heartbeat proposal",
      'connection.start-ok PLAIN guest',
    );
    frameMax = hs.frameMax;
    record(
      'connection-open-ok.json',
      hs.openOk,
      'connection.open-ok',
      `connection.tune-ok frame_max ${FRAME_MAX} heartbeat 0, connection.open vhost ${endpoint.vhost}`,
    );

    amqp.send(1, { name: 'channel.open' });
    record(
      'channel-open-ok.json',
      await amqp.expectMethod('channel.open-ok'),
      'channel.open-ok on channel 1',
      'channel.open',
    );

    amqp.send(1, { name: 'queue.declare', queue: '', exclusive: true });
    const declareOk = await amqp.expectMethod('queue.declare-ok');
    const queue = declareOk.method.queue;
    record(
      'queue-declare-ok.json',
      declareOk,
      'queue.declare-ok for an exclusive server-named queue',
      'queue.declare queue "" exclusive',
    );

    // basic.get-ok with a small message, then basic.get-empty
    amqp.publish(1, '', queue, GET_BODY, { contentType: 'text/plain', deliveryMode: 1, messageId: 'get-1' });
    amqp.send(1, { name: 'basic.get', queue, noAck: true });
    record(
      'basic-get-ok.json',
      await amqp.expectMethod('basic.get-ok'),
      'basic.get-ok triplet: method, content header (content-type, delivery-mode, message-id), one body frame',
      'basic.publish to the default exchange, then basic.get no-ack',
    );
    amqp.send(1, { name: 'basic.get', queue, noAck: true });
    record(
      'basic-get-empty.json',
      await amqp.expectMethod('basic.get-empty'),
      'basic.get-empty on an empty queue',
      'basic.get no-ack',
    );

    // basic.deliver of the rich message from a consumer
    amqp.publish(1, '', queue, RICH_BODY, RICH_PROPERTIES);
    amqp.send(1, { name: 'basic.consume', queue, consumerTag: CONSUMER_TAG, noAck: true });
    record(
      'basic-consume-ok.json',
      await amqp.expectMethod('basic.consume-ok'),
      'basic.consume-ok with the consumer tag the client chose',
      `basic.consume consumer-tag ${CONSUMER_TAG} no-ack`,
    );
    record(
      'basic-deliver.json',
      await amqp.expectMethod('basic.deliver'),
      'basic.deliver triplet: all 14 basic properties, headers with every field type tag (t b B s u I i l f d D S x A T F V)',
      'basic.publish of the rich message to the default exchange, then basic.consume',
    );
    amqp.send(1, { name: 'basic.cancel', consumerTag: CONSUMER_TAG });
    await amqp.expectMethod('basic.cancel-ok');

    // basic.return of a mandatory message nobody can take
    amqp.publish(1, 'amq.direct', UNROUTABLE_KEY, RETURN_BODY, { contentType: 'text/plain' }, true);
    record(
      'basic-return.json',
      await amqp.expectMethod('basic.return'),
      'basic.return triplet: 312 NO_ROUTE for a mandatory publish nothing is bound to',
      `basic.publish mandatory to amq.direct with routing key ${UNROUTABLE_KEY}`,
    );

    // a body split over several body frames (frame_max 4096: 4088 payload bytes per frame)
    amqp.publish(1, '', queue, LARGE_BODY, { contentType: 'application/octet-stream' });
    amqp.send(1, { name: 'basic.get', queue, noAck: true });
    record(
      'basic-get-ok-multiframe.json',
      await amqp.expectMethod('basic.get-ok'),
      `basic.get-ok of a ${LARGE_BODY.length}-byte body split over several body frames (frame_max ${FRAME_MAX})`,
      `basic.publish of ${LARGE_BODY.length} bytes (byte i = i % 251), then basic.get no-ack`,
    );

    // publisher confirms
    amqp.send(1, { name: 'confirm.select' });
    record(
      'confirm-select-ok.json',
      await amqp.expectMethod('confirm.select-ok'),
      'confirm.select-ok',
      'confirm.select',
    );
    amqp.publish(1, '', queue, CONFIRM_BODY);
    record(
      'basic-ack-confirm.json',
      await amqp.expectMethod('basic.ack'),
      'basic.ack confirming the first publish after confirm.select',
      'basic.publish to the queue in confirm mode',
    );

    // a channel closed by the server: 404 on a passive declare of a missing queue
    amqp.send(2, { name: 'channel.open' });
    await amqp.expectMethod('channel.open-ok');
    amqp.send(2, { name: 'queue.declare', queue: MISSING_QUEUE, passive: true });
    record(
      'channel-close-404.json',
      await amqp.expectMethod('channel.close'),
      'channel.close 404 NOT_FOUND caused by queue.declare (50/10)',
      `queue.declare passive ${MISSING_QUEUE} on channel 2`,
    );
    amqp.send(2, { name: 'channel.close-ok' });

    const closeOk = await amqp.close();
    record('connection-close-ok.json', closeOk, 'connection.close-ok', 'connection.close 200');

    // Every byte the server sent belongs to exactly one recorded or skipped event, with nothing left over.
    const all = amqp.receivedBytes;
    const decoded = Buffer.concat(amqp.events.map((e) => e.raw));
    if (!all.equals(decoded)) {
      throw new Error(`the server sent ${all.length} bytes but the events account for ${decoded.length}`);
    }
    const extra = await nextOrNothing(amqp);
    if (extra !== undefined) throw new Error(`unexpected ${extra.kind} after connection.close-ok`);
  } finally {
    amqp.destroy();
    await stopBroker();
  }

  mkdirSync(OUT_DIR, { recursive: true });
  for (const old of readdirSync(OUT_DIR)) {
    if (old.endsWith('.json') && !fixtures.has(old)) rmSync(join(OUT_DIR, old));
  }
  for (const [file, fixture] of fixtures) {
    writeFileSync(join(OUT_DIR, file), `${JSON.stringify(fixture, null, 2)}\n`);
    console.log(
      `  ${file}: ${fixture.method} on channel ${fixture.channel}, ${fixture.frames} frame(s), ${fixture.hex.length / 2} bytes`,
    );
  }
  console.log(`wrote ${fixtures.size} fixtures to ${OUT_DIR} (${broker})`);
}

async function nextOrNothing(amqp: AmqpTestSocket): Promise<ServerEvent | undefined> {
  try {
    return await amqp.next(200);
  } catch {
    return undefined;
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
