/**
 * Field tables offline: message headers with inferred and explicit wire types, encoded as a
 * basic.publish triplet by `FrameWriter`, decoded back by `FrameDecoder` from small chunks, and checked
 * to be exact: same values, same remembered type tags, same bytes when encoded again.
 *
 *   npx tsx examples/field-tables.ts
 *
 * No broker needed. Exits non-zero (an AssertionError) if the codec stops round-tripping exactly.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { type BasicProperties, Decimal, EncodeError, type FieldTable, field, fieldTypesOf } from 'rxamqp';
import { type ContentMethod, FrameDecoder, FrameWriter } from 'rxamqp/protocol';

// Timestamps (tag T) carry whole seconds, so this example uses a Date without milliseconds.
const sentAt = new Date('2024-05-01T12:00:00Z');

const headers: FieldTable = {
  // Inferred from the JavaScript type:
  tenant: 'acme', // S long string
  retries: 3, // I int32
  offsetMs: 2 ** 40, // l int64: a safe integer outside int32
  sequence: 2n ** 62n, // l int64: a bigint (stays a bigint: it is not a safe integer)
  ratio: 0.25, // d float64
  urgent: true, // t boolean
  sentAt, // T timestamp
  price: new Decimal(2, 1999), // D decimal 19.99
  trace: Buffer.from([0xde, 0xad, 0xbe, 0xef]), // x byte array
  replyBy: null, // V void
  route: ['eu-west-1', 7, { hop: 1 }], // A array of S, I, F
  origin: { service: 'checkout', attempt: field.uint16(2), inner: { depth: field.int8(-3) } }, // F table
  // Explicit tags, for the wire types inference does not pick:
  priority: field.uint8(200), // B
  weight: field.float32(0.5), // f
  delta: field.int16(-42), // s
  quota: field.uint32(4_000_000_000), // i
  small64: field.int64(5), // l although 5 fits int32
  whole: field.float64(10), // d although 10 is an integer
};

// What the decoder gives back: plain values (the tags are remembered out of sight).
const expectedHeaders: FieldTable = {
  ...headers,
  origin: { service: 'checkout', attempt: 2, inner: { depth: -3 } },
  priority: 200,
  weight: 0.5,
  delta: -42,
  quota: 4_000_000_000,
  small64: 5,
  whole: 10,
};

const properties: BasicProperties = {
  contentType: 'application/json',
  deliveryMode: 2,
  priority: 5,
  messageId: 'order-1042',
  timestamp: sentAt,
  headers,
};

// A body larger than one frame: before connection.tune, frame_max is 4096, so it takes several.
const body = Buffer.from(
  JSON.stringify({ order: 1042, lines: Array.from({ length: 1000 }, (_, i) => `sku-${i}`) }),
);

const writer = new FrameWriter();
writer.writePublish(1, 'orders', 'order.created', body, properties);
const framesWritten = writer.framesWritten;
// A view of the writer's pooled buffer: bytes once taken are never overwritten by later writes.
const wire = writer.take()!;

interface Received {
  channel: number;
  method: ContentMethod;
  properties: BasicProperties;
  body: Buffer;
}
const received: Received[] = [];
const decoder = new FrameDecoder({
  onMethod: (channel, method) => assert.fail(`unexpected ${method.name} on channel ${channel}`),
  onContent: (channel, method, props, content) =>
    received.push({ channel, method, properties: props, body: Buffer.from(content) }),
  onHeartbeat: () => assert.fail('unexpected heartbeat'),
});
// Feed the bytes in small, uneven chunks: frames split anywhere must decode the same.
let chunks = 0;
for (let off = 0, size = 1; off < wire.length; off += size, size = (size % 13) + 1) {
  decoder.push(wire.subarray(off, off + size));
  chunks++;
}

assert.equal(received.length, 1, 'one message decoded');
const message = received[0]!;
assert.equal(message.channel, 1);
assert.equal(message.method.name, 'basic.publish');
if (message.method.name === 'basic.publish') {
  assert.equal(message.method.exchange, 'orders');
  assert.equal(message.method.routingKey, 'order.created');
  assert.equal(message.method.mandatory, false);
}
assert.deepEqual(message.body, body);
assert.deepEqual(message.properties, { ...properties, headers: expectedHeaders });

const decodedHeaders = message.properties.headers!;
const origin = decodedHeaders.origin as FieldTable;
// The tags that the JavaScript values alone would not reproduce. (fieldTypesOf returns a
// prototype-less object; spreading it makes a plain one for deepEqual.)
assert.deepEqual(
  { ...fieldTypesOf(decodedHeaders) },
  { priority: 'B', weight: 'f', delta: 's', quota: 'i', small64: 'l', whole: 'd' },
);
assert.deepEqual({ ...fieldTypesOf(origin) }, { attempt: 'u' });
assert.deepEqual({ ...fieldTypesOf(origin.inner as FieldTable) }, { depth: 'b' });
assert.deepEqual({ ...fieldTypesOf(headers) }, {}, 'a table built in code remembers nothing');

// Republishing the decoded message (say, a dead-lettered one) gives the very same bytes.
const again = new FrameWriter();
again.writePublish(message.channel, 'orders', 'order.created', message.body, message.properties);
assert.deepEqual(again.take(), wire, 're-encoded bytes differ from the original');

console.log(
  `Encoded basic.publish with a ${body.length}-byte body as ${framesWritten} frames ` +
    `(${wire.length} bytes at frame_max 4096); decoded it from ${chunks} chunks of 1-13 bytes.`,
);
console.log('Headers as decoded:');
console.log(inspect(decodedHeaders, { depth: null, colors: process.stdout.isTTY, breakLength: 100 }));
console.log(`fieldTypesOf(headers):        ${JSON.stringify(fieldTypesOf(decodedHeaders))}`);
console.log(`fieldTypesOf(headers.origin): ${JSON.stringify(fieldTypesOf(origin))}`);
console.log('Round trip exact: values, type tags and re-encoded bytes all match.');

// Encoding refuses what the wire cannot carry, and writes nothing when it does.
try {
  writer.writePublish(1, 'orders', 'k'.repeat(300), body);
  assert.fail('a 300-byte routing key was accepted');
} catch (e) {
  if (!(e instanceof EncodeError)) throw e;
  assert.equal(e.code, 'STRING_TOO_LONG');
  assert.equal(writer.pendingBytes, 0, 'nothing written after an EncodeError');
  console.log(`A 300-byte routing key: ${e.name} ${e.code}: ${e.message}`);
}
