/**
 * Messages other clients publish, through a real RabbitMQ: a header table the way py-amqp (under
 * Celery and kombu) writes it, with `L` for a signed 64-bit integer, travels through the broker
 * untouched. Before, rxamqp closed the whole connection on it (`unknown field value type 0x4c`): the
 * message was lost with `get({ noAck: true })` and a recovering consumer reconnected in a loop. (A
 * table with a tag nobody knows cannot come through RabbitMQ 3.10, which closes the publisher's
 * connection with 541; the client's handling of one is tested against the scripted server in
 * test/scripted/consume-wire.test.ts.)
 */
import { firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { type Connection, type Delivery, fieldTypesOf, openConnection } from '../../src/node.js';
import { AmqpTestSocket } from '../support/amqp-socket.js';
import { type BrokerEndpoint, brokerEndpoint, brokerUrl, stopBroker } from '../support/broker.js';

let endpoint: BrokerEndpoint;
let url: string;

beforeAll(async () => {
  endpoint = await brokerEndpoint();
  url = await brokerUrl();
}, 180_000);

afterAll(async () => {
  await stopBroker();
}, 60_000);

/** A content header frame on channel 1 whose properties are only `headers`, given as raw table bytes. */
function headerFrame(table: number[], bodySize: number): Uint8Array {
  const payload = [
    0,
    60, // class basic
    0,
    0, // weight
    0,
    0,
    0,
    0,
    (bodySize >>> 24) & 0xff,
    (bodySize >>> 16) & 0xff,
    (bodySize >>> 8) & 0xff,
    bodySize & 0xff,
    0x20,
    0x00, // property flags: headers only
    (table.length >>> 24) & 0xff,
    (table.length >>> 16) & 0xff,
    (table.length >>> 8) & 0xff,
    table.length & 0xff,
    ...table,
  ];
  const n = payload.length;
  return Uint8Array.from([
    2,
    0,
    1,
    (n >>> 24) & 0xff,
    (n >>> 16) & 0xff,
    (n >>> 8) & 0xff,
    n & 0xff,
    ...payload,
    0xce,
  ]);
}

/** basic.publish to the default exchange on channel 1, by hand (the codec writes content methods only with their content). */
function publishFrame(queue: string): Uint8Array {
  const payload = [0, 60, 0, 40, 0, 0, 0, ...key(queue), 0];
  const n = payload.length;
  return Uint8Array.from([1, 0, 1, 0, 0, (n >>> 8) & 0xff, n & 0xff, ...payload, 0xce]);
}

function bodyFrame(body: string): Uint8Array {
  const bytes = [...Buffer.from(body)];
  const n = bytes.length;
  return Uint8Array.from([
    3,
    0,
    1,
    (n >>> 24) & 0xff,
    (n >>> 16) & 0xff,
    (n >>> 8) & 0xff,
    n & 0xff,
    ...bytes,
    0xce,
  ]);
}

const key = (k: string): number[] => [k.length, ...Buffer.from(k)];
/** `n` = 2^40 as py-amqp writes an int beyond 32 bits: tag L, signed 64-bit big-endian. */
const PY_AMQP_TABLE = [
  ...key('n'),
  0x4c,
  0,
  0,
  0x01,
  0,
  0,
  0,
  0,
  0,
  ...key('s'),
  0x53,
  0,
  0,
  0,
  2,
  0x68,
  0x69,
];

describe('header tables written by other clients, through RabbitMQ', () => {
  it('reads the L tag py-amqp writes, in a consumer and in get({ noAck: true }), the connection staying up', async () => {
    const conn = await openConnection(url);
    const other = await AmqpTestSocket.connect(endpoint);
    try {
      await check(conn, other);
    } finally {
      other.destroy();
      if (conn.isOpen) await lastValueFrom(conn.close());
    }
  });
});

async function check(conn: Connection, other: AmqpTestSocket): Promise<void> {
  const ch = await conn.openChannel();
  const { queue } = await lastValueFrom(ch.queueDeclare('', { exclusive: true }));

  // Another client (raw frames, as py-amqp or a misbehaving producer would send them).
  await other.handshake();
  other.send(1, { name: 'channel.open' });
  await other.expectMethod('channel.open-ok');
  const publish = (table: number[], body: string): void => {
    other.sendRaw(publishFrame(queue));
    other.sendRaw(headerFrame(table, Buffer.byteLength(body)));
    other.sendRaw(bodyFrame(body));
  };
  publish(PY_AMQP_TABLE, 'from py-amqp');
  publish(PY_AMQP_TABLE, 'second');
  other.sendRaw(publishFrame(queue));
  other.sendRaw(headerFrame([], 5));
  other.sendRaw(bodyFrame('after'));
  await other.close();

  // get with noAck: the message the old decoder lost for good.
  const first = await firstValueFrom(ch.get(queue, { noAck: true }));
  expect(first.text()).toBe('from py-amqp');
  expect(first.headersError).toBeUndefined();
  expect(first.properties.headers).toEqual({ n: 2 ** 40, s: 'hi' });
  expect(fieldTypesOf(first.properties.headers!)).toEqual({ n: 'L' });
  // A consumer: the one the old decoder sent into a reconnect loop.
  const got: Delivery[] = await firstValueFrom(ch.consume(queue).pipe(take(2), toArray()));
  const [second, after] = got as [Delivery, Delivery];
  expect(second.text()).toBe('second');
  expect(second.properties.headers).toEqual({ n: 2 ** 40, s: 'hi' });
  expect(after.text()).toBe('after');
  expect(after.properties.headers).toEqual({});
  for (const d of got) expect(d.ack()).toBe(true);
  expect(conn.isOpen).toBe(true);
}
