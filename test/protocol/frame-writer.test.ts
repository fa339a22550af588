import { ConfigurationError, EncodeError, FrameDecoder, FrameWriter } from '../../src/protocol/index.js';
import { decodeInChunks, thrown } from './support.js';

/** Splits a byte stream into its frames' [type, channel, payload size]. */
function frames(bytes: Buffer): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let off = 0; off < bytes.length; ) {
    const size = bytes.readUInt32BE(off + 3);
    expect(bytes[off + 7 + size]).toBe(0xce);
    out.push([bytes[off]!, bytes.readUInt16BE(off + 1), size]);
    off += size + 8;
  }
  return out;
}

describe('FrameWriter', () => {
  it.each([
    [0, 0],
    [1, 1],
    [4088, 1],
    [4089, 2],
    [4088 * 3, 3],
    [4088 * 3 + 1, 4],
  ])('splits a %i-byte body into %i body frames of at most frame_max', (size, count) => {
    const writer = new FrameWriter({ frameMax: 4096 });
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = i % 251;
    writer.writePublish(5, 'ex', 'rk', body);
    const bytes = writer.take()! as Buffer;
    const list = frames(bytes);
    expect(list.slice(0, 2).map((f) => f[0])).toEqual([1, 2]);
    const bodies = list.slice(2);
    expect(bodies).toHaveLength(count);
    for (const [type, channel, payload] of bodies) {
      expect([type, channel]).toEqual([3, 5]);
      expect(payload + 8).toBeLessThanOrEqual(4096);
    }
    const events = decodeInChunks(bytes, [], { frameMax: 4096 });
    expect((events[0] as { body: Buffer }).body.equals(body)).toBe(true);
  });

  it('copies every body when it is written: changing the body afterwards changes nothing sent', () => {
    const writer = new FrameWriter({ frameMax: 131072 });
    const body = Buffer.alloc(300_000, 0x61);
    writer.writePublish(2, '', 'big', body, { contentType: 'application/octet-stream' });
    writer.writePublish(2, '', 'small', Buffer.from('after'));
    body.fill(0x62); // a caller reusing its buffer at once
    const segments = writer.takeSegments();
    expect(segments.some((seg) => seg.buffer === body.buffer)).toBe(false);
    const bytes = Buffer.concat(segments);
    expect(frames(bytes).map((f) => f[0])).toEqual([1, 2, 3, 3, 3, 1, 2, 3]);
    for (const sizes of [[], [1], [7, 65536], [131072], [100_003]]) {
      const events = decodeInChunks(bytes, sizes, { frameMax: 131072 }) as { body: Buffer }[];
      expect(events).toHaveLength(2);
      expect(events[0]!.body.equals(Buffer.alloc(300_000, 0x61))).toBe(true);
      expect(events[1]!.body.toString()).toBe('after');
    }
  });

  it('never writes again into a region it has handed out', () => {
    const writer = new FrameWriter({ frameMax: 131072, chunkSize: 1024 });
    writer.writePublish(1, '', 'q', Buffer.alloc(100, 1));
    const first = writer.take()! as Buffer;
    const copy = Buffer.from(first);
    for (let i = 0; i < 200; i++) writer.writePublish(1, '', 'q', Buffer.alloc(100, 2));
    writer.writePublish(1, '', 'q', Buffer.alloc(5000, 3)); // larger than a chunk
    expect(first.equals(copy)).toBe(true);
    const rest = writer.take()!;
    expect(decodeInChunks(rest, [], { frameMax: 131072 })).toHaveLength(201);
    expect(writer.take()).toBeUndefined();
    expect(writer.pendingBytes).toBe(0);
  });

  it('keeps partially written frames intact when the buffer grows mid-frame', () => {
    const writer = new FrameWriter({ frameMax: 131072, chunkSize: 64 });
    const headers: Record<string, string> = {};
    for (let i = 0; i < 50; i++) headers[`key-${i}`] = 'v'.repeat(i);
    writer.writeMethod(1, { name: 'basic.qos', prefetchCount: 10 });
    writer.writePublish(1, 'ex', 'rk', Buffer.from('body'), { headers, contentType: 'text/plain' });
    const events = decodeInChunks(writer.take()!, [3], { frameMax: 131072 });
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ kind: 'content', properties: { headers, contentType: 'text/plain' } });
  });

  it('writes nothing when an argument is invalid, and carries on afterwards', () => {
    const writer = new FrameWriter();
    writer.writeMethod(1, { name: 'basic.qos', prefetchCount: 1 });
    const before = writer.pendingBytes;
    const bad: [() => void, string][] = [
      [() => writer.writePublish(1, '', 'x'.repeat(256), Buffer.alloc(1)), 'STRING_TOO_LONG'],
      [() => writer.writePublish(1, 'é'.repeat(128), '', Buffer.alloc(1)), 'STRING_TOO_LONG'],
      [() => writer.writePublish(1, '', '', Buffer.alloc(1), { priority: 256 }), 'VALUE_OUT_OF_RANGE'],
      [
        () => writer.writePublish(1, '', '', Buffer.alloc(1), { headers: { f: (() => 0) as never } }),
        'INVALID_VALUE',
      ],
      [() => writer.writePublish(1, '', '', 'text' as never), 'INVALID_VALUE'],
      [() => writer.writePublish(70000, '', '', Buffer.alloc(1)), 'VALUE_OUT_OF_RANGE'],
      [() => writer.writeMethod(1, { name: 'basic.ack', deliveryTag: -1 }), 'VALUE_OUT_OF_RANGE'],
      [() => writer.writeMethod(1, { name: 'basic.ack', deliveryTag: 2 ** 53 }), 'VALUE_OUT_OF_RANGE'],
      [() => writer.writeMethod(1, { name: 'basic.qos', prefetchCount: 65536 }), 'VALUE_OUT_OF_RANGE'],
      [() => writer.writeMethod(1, { name: 'basic.qos', prefetchSize: Number.NaN }), 'VALUE_OUT_OF_RANGE'],
      [() => writer.writeMethod(1, { name: 'queue.declare', queue: 42 as never }), 'INVALID_VALUE'],
      [() => writer.writeMethod(1, { name: 'basic.publish' } as never), 'INVALID_METHOD'],
      [() => writer.writeMethod(1, { name: 'no.such' } as never), 'INVALID_METHOD'],
      [() => writer.writeContent(1, { name: 'basic.ack' }, {}, Buffer.alloc(0)), 'NOT_CONTENT_METHOD'],
    ];
    for (const [fn, code] of bad) {
      const e = thrown(fn);
      expect(e).toBeInstanceOf(EncodeError);
      expect([String(fn), (e as EncodeError).code]).toEqual([String(fn), code]);
      expect(writer.pendingBytes).toBe(before);
    }
    writer.writePublish(1, '', 'q', Buffer.from('ok'));
    const events = decodeInChunks(writer.take()!, []);
    expect(events.map((e) => e.kind)).toEqual(['method', 'content']);
  });

  it('reuses the encoded destination of repeated publishes and re-encodes when it changes', () => {
    const writer = new FrameWriter();
    const bad = thrown(() => writer.writePublish(1, undefined as never, undefined as never, Buffer.alloc(1)));
    expect((bad as EncodeError).code).toBe('INVALID_VALUE');
    const sends: [string, string, boolean][] = [
      ['ex', 'a', false],
      ['ex', 'a', false],
      ['ex', 'b', false],
      ['ex', 'b', true],
      ['', 'b', true],
      ['', 'b', true],
    ];
    for (const [exchange, routingKey, mandatory] of sends)
      writer.writePublish(1, exchange, routingKey, Buffer.from('x'), {}, mandatory);
    const events = decodeInChunks(writer.take()!, []);
    expect(
      events.map(
        (e) => (e as { method: { exchange: string; routingKey: string; mandatory: boolean } }).method,
      ),
    ).toEqual(
      sends.map(([exchange, routingKey, mandatory]) =>
        expect.objectContaining({ exchange, routingKey, mandatory }),
      ),
    );
  });

  it('rejects a header frame larger than frame_max and a body over the maximum', () => {
    const writer = new FrameWriter({ frameMax: 4096, maxBodySize: 1000 });
    const big = thrown(() =>
      writer.writePublish(1, '', 'q', Buffer.alloc(1), { headers: { h: 'x'.repeat(5000) } }),
    );
    expect((big as EncodeError).code).toBe('FRAME_TOO_LARGE');
    const body = thrown(() => writer.writePublish(1, '', 'q', Buffer.alloc(1001)));
    expect((body as EncodeError).code).toBe('BODY_TOO_LARGE');
    expect(writer.pendingBytes).toBe(0);
  });

  it('validates frame_max, with a ConfigurationError (writer and decoder alike)', () => {
    const writer = new FrameWriter();
    expect(writer.frameMax).toBe(4096);
    for (const bad of [100, -1, 4096.5, 2 ** 32, Number.NaN]) {
      const e = thrown(() => {
        writer.frameMax = bad;
      });
      expect(e).toBeInstanceOf(ConfigurationError);
      expect((e as ConfigurationError).code).toBe('INVALID_CONFIGURATION');
      const decoder = new FrameDecoder({ onMethod() {}, onContent() {}, onHeartbeat() {} });
      expect(
        thrown(() => {
          decoder.frameMax = bad;
        }),
      ).toBeInstanceOf(ConfigurationError);
      expect(
        thrown(
          () => new FrameDecoder({ onMethod() {}, onContent() {}, onHeartbeat() {} }, { frameMax: bad }),
        ),
      ).toBeInstanceOf(ConfigurationError);
    }
    writer.frameMax = 0;
    expect(writer.frameMax).toBe(0);
    writer.frameMax = 131072;
    expect(writer.frameMax).toBe(131072);
  });

  it('writes a heartbeat as the 8 bytes of the spec', () => {
    const writer = new FrameWriter();
    writer.writeHeartbeat();
    expect(Buffer.from(writer.take()!).toString('hex')).toBe('08000000000000ce');
  });
});
