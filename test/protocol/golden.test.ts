/**
 * Golden tests: bytes a real RabbitMQ 3.10 sent, recorded by `scripts/capture-golden.ts` into
 * `test/fixtures/golden/*.json`. Pure (no broker): each fixture is decoded whole and one byte at a
 * time, its decoded fields are checked, and encoding what was decoded with the same channel and
 * frame_max must give back the server's bytes exactly.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type BasicProperties,
  type ContentMethod,
  Decimal,
  type FieldTable,
  type FieldValue,
  FrameDecoder,
  FrameWriter,
  fieldTypesOf,
  type Method,
  type MethodName,
  type MethodOf,
} from '../../src/protocol/index.js';

const FIXTURE_DIR = join(__dirname, '..', 'fixtures', 'golden');

/** The fixtures the capture script writes; the directory must hold exactly these. */
const FIXTURES = [
  'basic-ack-confirm.json',
  'basic-consume-ok.json',
  'basic-deliver.json',
  'basic-get-empty.json',
  'basic-get-ok-multiframe.json',
  'basic-get-ok.json',
  'basic-return.json',
  'channel-close-404.json',
  'channel-open-ok.json',
  'confirm-select-ok.json',
  'connection-close-ok.json',
  'connection-open-ok.json',
  'connection-start.json',
  'connection-tune.json',
  'queue-declare-ok.json',
] as const;
type FixtureName = (typeof FIXTURES)[number];

interface Fixture {
  description: string;
  trigger: string;
  method: MethodName;
  channel: number;
  frameMax: number;
  frames: number;
  broker: string;
  hex: string;
}

type Decoded =
  | { kind: 'method'; channel: number; method: Method }
  | { kind: 'content'; channel: number; method: ContentMethod; properties: BasicProperties; body: Buffer };

function load(name: FixtureName): { fixture: Fixture; bytes: Buffer } {
  const fixture = JSON.parse(readFileSync(join(FIXTURE_DIR, name), 'utf8')) as Fixture;
  return { fixture, bytes: Buffer.from(fixture.hex, 'hex') };
}

/** Decodes `bytes` fed whole, or one byte per push. */
function decode(bytes: Buffer, frameMax: number, bytewise = false): Decoded[] {
  const events: Decoded[] = [];
  const decoder = new FrameDecoder(
    {
      onMethod: (channel, method) => events.push({ kind: 'method', channel, method }),
      onContent: (channel, method, properties, body) =>
        events.push({ kind: 'content', channel, method, properties, body: Buffer.from(body) }),
      onHeartbeat: () => {
        throw new Error('no heartbeat was recorded');
      },
    },
    { frameMax },
  );
  if (bytewise) {
    for (let i = 0; i < bytes.length; i++) decoder.push(bytes.subarray(i, i + 1));
  } else {
    decoder.push(bytes);
  }
  expect(decoder.bufferedBytes).toBe(0);
  expect(decoder.assembling).toBe(false);
  return events;
}

/** The single event of a fixture, decoded whole. */
function decodeOne(name: FixtureName): Decoded {
  const { fixture, bytes } = load(name);
  const events = decode(bytes, fixture.frameMax);
  expect(events).toHaveLength(1);
  return events[0]!;
}

function method<N extends MethodName>(
  name: FixtureName,
  expected: N,
): { channel: number; method: MethodOf<N> } {
  const event = decodeOne(name);
  expect(event.kind).toBe('method');
  expect(event.method.name).toBe(expected);
  return { channel: event.channel, method: event.method as MethodOf<N> };
}

function content<N extends ContentMethod['name']>(
  name: FixtureName,
  expected: N,
): { channel: number; method: MethodOf<N>; properties: BasicProperties; body: Buffer } {
  const event = decodeOne(name);
  if (event.kind !== 'content') throw new Error(`${name} holds no content`);
  expect(event.method.name).toBe(expected);
  return { ...event, method: event.method as MethodOf<N> };
}

/** Encodes decoded events again with the fixture's frame_max. */
function encode(events: Decoded[], frameMax: number): Buffer {
  const writer = new FrameWriter({ frameMax });
  for (const e of events) {
    if (e.kind === 'method') writer.writeMethod(e.channel, e.method);
    else writer.writeContent(e.channel, e.method, e.properties, e.body);
  }
  return (writer.take() as Buffer | undefined) ?? Buffer.alloc(0);
}

/** Frame types, channels and payload sizes, read straight from the bytes (not with the codec). */
function frames(bytes: Buffer): { type: number; channel: number; size: number }[] {
  const out: { type: number; channel: number; size: number }[] = [];
  let off = 0;
  while (off < bytes.length) {
    const size = bytes.readUInt32BE(off + 3);
    expect(bytes[off + 7 + size]).toBe(0xce);
    out.push({ type: bytes[off]!, channel: bytes.readUInt16BE(off + 1), size });
    off += 8 + size;
  }
  expect(off).toBe(bytes.length);
  return out;
}

/** Every remembered wire tag in a decoded value, by path, so two decodes can be compared tag for tag. */
function tagsOf(
  value: FieldValue | FieldTable | undefined,
  path = '$',
  out: Record<string, unknown> = {},
): Record<string, unknown> {
  if (Array.isArray(value) || (typeof value === 'object' && value !== null && value.constructor === Object)) {
    const container = value as FieldTable | FieldValue[];
    out[path] = { ...fieldTypesOf(container) };
    for (const [k, v] of Object.entries(container)) tagsOf(v as FieldValue, `${path}.${k}`, out);
  }
  return out;
}

function queueName(): string {
  return method('queue-declare-ok.json', 'queue.declare-ok').method.queue;
}

describe('golden fixtures', () => {
  it('are exactly the recorded set', () => {
    const files = readdirSync(FIXTURE_DIR)
      .filter((f) => f.endsWith('.json'))
      .sort();
    expect(files).toEqual([...FIXTURES]);
  });

  describe.each(FIXTURES)('%s', (name) => {
    const { fixture, bytes } = load(name);

    it('holds whole frames on the recorded channel, as many as recorded', () => {
      expect(fixture.hex).toMatch(/^([0-9a-f]{2})+$/);
      expect(fixture.broker).toMatch(/^RabbitMQ \d+\.\d+\.\d+$/);
      const list = frames(bytes);
      expect(list).toHaveLength(fixture.frames);
      for (const f of list) {
        expect(f.channel).toBe(fixture.channel);
        expect(f.size + 8).toBeLessThanOrEqual(fixture.frameMax);
      }
      expect(list[0]!.type).toBe(1);
    });

    it('decodes to one event, the same whole and one byte at a time', () => {
      const whole = decode(bytes, fixture.frameMax);
      const bytewise = decode(bytes, fixture.frameMax, true);
      expect(whole).toHaveLength(1);
      expect(whole[0]!.channel).toBe(fixture.channel);
      expect(whole[0]!.method.name).toBe(fixture.method);
      expect(bytewise).toEqual(whole);
      const w = whole[0]!;
      const b = bytewise[0]!;
      if (w.kind === 'content' && b.kind === 'content') {
        expect(tagsOf(b.properties.headers)).toEqual(tagsOf(w.properties.headers));
      }
      if (w.method.name === 'connection.start' && b.method.name === 'connection.start') {
        expect(tagsOf(b.method.serverProperties)).toEqual(tagsOf(w.method.serverProperties));
      }
    });

    it('encodes back to the exact bytes the server sent', () => {
      const events = decode(bytes, fixture.frameMax);
      const again = encode(events, fixture.frameMax);
      expect(again.toString('hex')).toBe(fixture.hex);
    });
  });
});

describe('golden: connection', () => {
  it('connection.start: version 0-9, PLAIN, RabbitMQ server properties', () => {
    const { channel, method: start } = method('connection-start.json', 'connection.start');
    expect(channel).toBe(0);
    expect(start.versionMajor).toBe(0);
    expect(start.versionMinor).toBe(9);
    expect(start.mechanisms).toBe('AMQPLAIN PLAIN');
    expect(start.locales).toBe('en_US');
    const props = start.serverProperties;
    expect(Object.keys(props)).toEqual([
      'capabilities',
      'cluster_name',
      'copyright',
      'information',
      'platform',
      'product',
      'version',
    ]);
    expect(props.product).toBe('RabbitMQ');
    expect(props.version).toBe('3.10.8');
    expect(props.platform).toMatch(/^Erlang\/OTP /);
    expect(props.capabilities).toEqual({
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      'basic.nack': true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      consumer_priorities: true,
      authentication_failure_close: true,
      per_consumer_qos: true,
      direct_reply_to: true,
    });
    // long strings, booleans and a table: every tag is the one inference picks, so nothing is remembered
    expect(fieldTypesOf(props)).toEqual({});
    expect(fieldTypesOf(props.capabilities as FieldTable)).toEqual({});
  });

  it('connection.tune: the server proposal', () => {
    const { channel, method: tune } = method('connection-tune.json', 'connection.tune');
    expect(channel).toBe(0);
    expect(tune).toEqual({ name: 'connection.tune', channelMax: 2047, frameMax: 131072, heartbeat: 60 });
  });

  it('connection.open-ok', () => {
    const { channel, method: openOk } = method('connection-open-ok.json', 'connection.open-ok');
    expect(channel).toBe(0);
    expect(openOk).toEqual({ name: 'connection.open-ok', knownHosts: '' });
  });

  it('connection.close-ok', () => {
    const { channel, method: closeOk } = method('connection-close-ok.json', 'connection.close-ok');
    expect(channel).toBe(0);
    expect(closeOk).toEqual({ name: 'connection.close-ok' });
  });
});

describe('golden: channel, queue, confirms', () => {
  it('channel.open-ok on channel 1', () => {
    const { channel, method: openOk } = method('channel-open-ok.json', 'channel.open-ok');
    expect(channel).toBe(1);
    expect(openOk).toEqual({ name: 'channel.open-ok', channelId: '' });
  });

  it('queue.declare-ok with a server-named queue', () => {
    const { channel, method: declareOk } = method('queue-declare-ok.json', 'queue.declare-ok');
    expect(channel).toBe(1);
    expect(declareOk.queue).toMatch(/^amq\.gen-[A-Za-z0-9_-]{22}$/);
    expect(declareOk.messageCount).toBe(0);
    expect(declareOk.consumerCount).toBe(0);
  });

  it('channel.close 404 from a passive declare of a missing queue', () => {
    const { channel, method: close } = method('channel-close-404.json', 'channel.close');
    expect(channel).toBe(2);
    expect(close).toEqual({
      name: 'channel.close',
      replyCode: 404,
      replyText: "NOT_FOUND - no queue 'rxamqp.golden.missing-queue' in vhost '/'",
      classId: 50,
      methodId: 10,
    });
  });

  it('confirm.select-ok and the basic.ack of the first confirmed publish', () => {
    const selectOk = method('confirm-select-ok.json', 'confirm.select-ok');
    expect(selectOk.channel).toBe(1);
    expect(selectOk.method).toEqual({ name: 'confirm.select-ok' });
    const ack = method('basic-ack-confirm.json', 'basic.ack');
    expect(ack.channel).toBe(1);
    expect(ack.method).toEqual({ name: 'basic.ack', deliveryTag: 1, multiple: false });
  });
});

describe('golden: basic', () => {
  it('basic.get-ok with a small message in one body frame', () => {
    const got = content('basic-get-ok.json', 'basic.get-ok');
    expect(got.channel).toBe(1);
    expect(got.method).toEqual({
      name: 'basic.get-ok',
      deliveryTag: 1,
      redelivered: false,
      exchange: '',
      routingKey: queueName(),
      messageCount: 0,
    });
    expect(got.properties).toEqual({ contentType: 'text/plain', deliveryMode: 1, messageId: 'get-1' });
    expect(got.body.toString()).toBe('golden get-ok body');
    expect(frames(load('basic-get-ok.json').bytes).map((f) => f.type)).toEqual([1, 2, 3]);
  });

  it('basic.get-empty', () => {
    const { channel, method: empty } = method('basic-get-empty.json', 'basic.get-empty');
    expect(channel).toBe(1);
    expect(empty).toEqual({ name: 'basic.get-empty', clusterId: '' });
  });

  it('basic.consume-ok', () => {
    const { channel, method: consumeOk } = method('basic-consume-ok.json', 'basic.consume-ok');
    expect(channel).toBe(1);
    expect(consumeOk).toEqual({ name: 'basic.consume-ok', consumerTag: 'golden-consumer' });
  });

  it('basic.return 312 NO_ROUTE of a mandatory publish', () => {
    const returned = content('basic-return.json', 'basic.return');
    expect(returned.channel).toBe(1);
    expect(returned.method).toEqual({
      name: 'basic.return',
      replyCode: 312,
      replyText: 'NO_ROUTE',
      exchange: 'amq.direct',
      routingKey: 'rxamqp.golden.unroutable',
    });
    expect(returned.properties).toEqual({ contentType: 'text/plain' });
    expect(returned.body.toString()).toBe('nobody is listening');
  });

  it('basic.get-ok with a 10 KiB body in three body frames at frame_max 4096', () => {
    const { fixture, bytes } = load('basic-get-ok-multiframe.json');
    expect(fixture.frameMax).toBe(4096);
    const list = frames(bytes);
    expect(list.map((f) => f.type)).toEqual([1, 2, 3, 3, 3]);
    expect(list.slice(2).map((f) => f.size)).toEqual([4088, 4088, 2064]);

    const got = content('basic-get-ok-multiframe.json', 'basic.get-ok');
    expect(got.method).toEqual({
      name: 'basic.get-ok',
      deliveryTag: 3,
      redelivered: false,
      exchange: '',
      routingKey: queueName(),
      messageCount: 0,
    });
    expect(got.properties).toEqual({ contentType: 'application/octet-stream' });
    expect(got.body).toHaveLength(10240);
    const wrong = got.body.findIndex((b, i) => b !== i % 251);
    expect(wrong).toBe(-1);

    // The split depends on frame_max: at the server's 131072 the same message is one body frame.
    const larger = encode([{ kind: 'content', ...got }], 131072);
    expect(frames(larger).map((f) => f.type)).toEqual([1, 2, 3]);
    expect(larger.length).toBe(bytes.length - 2 * 8);
  });

  describe('basic.deliver with every basic property and every field type', () => {
    let delivered: ReturnType<typeof content<'basic.deliver'>>;
    let headers: FieldTable;

    beforeAll(() => {
      delivered = content('basic-deliver.json', 'basic.deliver');
      if (delivered.properties.headers === undefined) throw new Error('the delivered message has no headers');
      headers = delivered.properties.headers;
    });

    it('method and the 13 properties besides headers', () => {
      expect(delivered.channel).toBe(1);
      expect(delivered.method).toEqual({
        name: 'basic.deliver',
        consumerTag: 'golden-consumer',
        deliveryTag: 2,
        redelivered: false,
        exchange: '',
        routingKey: queueName(),
      });
      const { headers: _h, ...rest } = delivered.properties;
      expect(rest).toEqual({
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 2,
        priority: 7,
        correlationId: 'corr-0042',
        replyTo: 'rxamqp.golden.replies',
        expiration: '600000',
        messageId: 'msg-0001',
        timestamp: new Date('2024-01-02T03:04:05Z'),
        type: 'golden.rich',
        userId: 'guest',
        appId: 'rxamqp-golden',
        clusterId: 'golden-cluster',
      });
      expect(Object.keys(delivered.properties)).toHaveLength(14);
      expect(JSON.parse(delivered.body.toString())).toEqual({ golden: 'deliver', n: 1 });
    });

    it('header values, in the order they were published', () => {
      expect(Object.keys(headers)).toEqual([
        'bool',
        'int8',
        'uint8',
        'int16',
        'uint16',
        'int32',
        'uint32',
        'int64',
        'int64small',
        'float32',
        'float64',
        'decimal',
        'string',
        'bytes',
        'array',
        'timestamp',
        'table',
        'void',
      ]);
      expect(headers.bool).toBe(true);
      expect(headers.int8).toBe(-100);
      expect(headers.uint8).toBe(200);
      expect(headers.int16).toBe(-30000);
      expect(headers.uint16).toBe(60000);
      expect(headers.int32).toBe(-2000000000);
      expect(headers.uint32).toBe(4000000000);
      expect(headers.int64).toBe(2n ** 62n + 3n);
      expect(headers.int64small).toBe(42);
      expect(headers.float32).toBe(1.5);
      expect(headers.float64).toBe(Math.PI);
      expect(headers.decimal).toBeInstanceOf(Decimal);
      expect(headers.decimal).toEqual(new Decimal(2, 1999));
      expect(String(headers.decimal)).toBe('19.99');
      expect(headers.string).toBe('h\u00e9llo w\u00f6rld \u2713');
      expect(Buffer.isBuffer(headers.bytes)).toBe(true);
      expect([...(headers.bytes as Buffer)]).toEqual([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]);
      expect(headers.array).toEqual([1, 'two', false, null, -1, [7], { inner: 'x' }]);
      expect(headers.timestamp).toEqual(new Date('2024-01-02T03:04:05Z'));
      expect(headers.table).toEqual({ name: 'nested', depth: { level: 2, ok: true } });
      expect(headers.void).toBeNull();
    });

    it('header wire types: remembered where the JavaScript type does not decide them', () => {
      expect(fieldTypesOf(headers)).toEqual({
        int8: 'b',
        uint8: 'B',
        int16: 's',
        uint16: 'u',
        uint32: 'i',
        int64small: 'l',
        float32: 'f',
      });
      const array = headers.array as FieldValue[];
      expect(fieldTypesOf(array)).toEqual({ 4: 'b' });
      expect(fieldTypesOf(array[5] as FieldValue[])).toEqual({ 0: 'u' });
      expect(fieldTypesOf(array[6] as FieldTable)).toEqual({});
      expect(fieldTypesOf(headers.table as FieldTable)).toEqual({});
      // The rest carry their tag in their JavaScript type: t, I, l (bigint), d, D, S, x, A, T, F, V.
      expect(typeof headers.bool).toBe('boolean');
      expect(typeof headers.int64).toBe('bigint');
      expect(Number.isInteger(headers.float64)).toBe(false);
      expect(headers.timestamp).toBeInstanceOf(Date);
      expect(Array.isArray(headers.array)).toBe(true);
    });

    it('every tag appears on the wire in the content header', () => {
      // Each top-level header is a short-string key followed by its tag octet; read them off the raw
      // header frame (the second frame) without the codec.
      const { bytes } = load('basic-deliver.json');
      const methodSize = bytes.readUInt32BE(3);
      const header = bytes.subarray(8 + methodSize + 7);
      expect(header.readUInt16BE(0)).toBe(60);
      expect(header.readUInt16BE(12)).toBe(0xfffc); // all 14 property flags
      // class, weight, body size, flags (14 bytes), then content-type and content-encoding short strings
      const tableAt = 14 + 1 + 'application/json'.length + 1 + 'utf-8'.length;
      const tableLength = header.readUInt32BE(tableAt);
      const tableStart = tableAt + 4;
      const tags: Record<string, string> = {};
      let p = tableStart;
      while (p < tableStart + tableLength) {
        const keyLength = header[p]!;
        const key = header.toString('latin1', p + 1, p + 1 + keyLength);
        p += 1 + keyLength;
        tags[key] = String.fromCharCode(header[p]!);
        p = skipValue(header, p);
      }
      expect(p).toBe(tableStart + tableLength);
      expect(tags).toEqual({
        bool: 't',
        int8: 'b',
        uint8: 'B',
        int16: 's',
        uint16: 'u',
        int32: 'I',
        uint32: 'i',
        int64: 'l',
        int64small: 'l',
        float32: 'f',
        float64: 'd',
        decimal: 'D',
        string: 'S',
        bytes: 'x',
        array: 'A',
        timestamp: 'T',
        table: 'F',
        void: 'V',
      });
    });
  });
});

/** Skips a tagged value at `p` (the tag octet) and returns the offset after it. */
function skipValue(buf: Buffer, p: number): number {
  const tag = String.fromCharCode(buf[p]!);
  const fixed: Record<string, number> = {
    t: 1,
    b: 1,
    B: 1,
    s: 2,
    u: 2,
    I: 4,
    i: 4,
    l: 8,
    f: 4,
    d: 8,
    D: 5,
    T: 8,
    V: 0,
  };
  const size = fixed[tag];
  if (size !== undefined) return p + 1 + size;
  if ('SxAF'.includes(tag)) return p + 1 + 4 + buf.readUInt32BE(p + 1);
  throw new Error(`unexpected tag ${tag}`);
}
