/**
 * Memory from sizes the peer declares. Before these fixes the decoder reserved what a frame header or a
 * content header claimed before any of it arrived: with frameMax 0, 8 bytes claiming a 1 GiB frame
 * allocated 1 GiB; a content header declaring a 128 MiB body and one body byte reserved 128 MiB, on
 * each of 64 channels 8 GiB. Each test below failed (or blew its bound by GiBs) with that code.
 */
import fc from 'fast-check';
import {
  type BasicProperties,
  type ContentMethod,
  FrameDecoder,
  type FrameDecoderOptions,
  FrameError,
  FrameWriter,
} from '../../src/protocol/index.js';
import { collectingDecoder, decodeInChunks, thrown } from './support.js';

const MiB = 1024 * 1024;
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

/** A frame header (7 bytes) declaring `size` payload bytes. */
function frameHead(type: number, channel: number, size: number): Buffer {
  const head = Buffer.alloc(7);
  head[0] = type;
  head.writeUInt16BE(channel, 1);
  head.writeUInt32BE(size, 3);
  return head;
}

function frame(type: number, channel: number, payload: Buffer, end = 0xce): Buffer {
  return Buffer.concat([frameHead(type, channel, payload.length), payload, Buffer.from([end])]);
}

function deliver(channel: number, tag = 1): Buffer {
  return frame(1, channel, hex(`003c 003c 03 746167 ${tag.toString(16).padStart(16, '0')} 00 00 01 71`));
}

function header(channel: number, bodySize: number): Buffer {
  const size = Buffer.alloc(8);
  size.writeUInt32BE(Math.floor(bodySize / 2 ** 32), 0);
  size.writeUInt32BE(bodySize % 2 ** 32, 4);
  return frame(2, channel, Buffer.concat([hex('003c 0000'), size, hex('0000')]));
}

const arrayBuffers = (): number => process.memoryUsage().arrayBuffers;

describe('memory the peer can make the decoder hold', () => {
  it('an incomplete frame claiming 1 GiB (frameMax 0) holds only what arrived', () => {
    const { decoder } = collectingDecoder({ frameMax: 0 });
    const before = arrayBuffers();
    decoder.push(Buffer.concat([frameHead(1, 0, 2 ** 30), Buffer.alloc(1)]));
    expect(decoder.bytesHeld).toBeLessThanOrEqual(4096);
    expect(arrayBuffers() - before).toBeLessThan(64 * MiB);
    // It grows as the bytes come (doubling), never past what it was sent twice over plus 4 KiB.
    for (let i = 0; i < 20; i++) decoder.push(Buffer.alloc(10_000));
    expect(decoder.bytesHeld).toBeLessThanOrEqual(2 * (8 + 200_000) + 4096);
  });

  it('a method frame split anywhere still decodes (the buffer grows to the frame)', () => {
    const writer = new FrameWriter({ frameMax: 131072 });
    writer.writeMethod(0, {
      name: 'connection.start',
      serverProperties: { big: 'x'.repeat(100_000) },
      mechanisms: 'PLAIN',
      locales: 'en_US',
    });
    const bytes = writer.take()!;
    for (const sizes of [[1000], [3, 70_000], [5000, 1]]) {
      const events = decodeInChunks(bytes, sizes, { frameMax: 131072 });
      expect(events).toHaveLength(1);
      expect(
        (events[0] as { method: { serverProperties: { big: string } } }).method.serverProperties.big,
      ).toHaveLength(100_000);
    }
  });

  it('a 128 MiB body declared on 64 channels with one byte each holds bytes, not 8 GiB', () => {
    for (const frameMax of [0, 131072]) {
      const { decoder, events } = collectingDecoder({ frameMax });
      const before = arrayBuffers();
      for (let ch = 1; ch <= 64; ch++) {
        decoder.push(Buffer.concat([deliver(ch), header(ch, 128 * MiB), frame(3, ch, Buffer.from([ch]))]));
      }
      expect(events).toHaveLength(0);
      expect(decoder.bytesHeld).toBeLessThanOrEqual(64 * 16);
      expect(arrayBuffers() - before).toBeLessThan(64 * MiB);
    }
  });

  it('a body frame claiming 128 MiB that streams in slowly holds what arrived', () => {
    const { decoder } = collectingDecoder({ frameMax: 0 });
    for (let ch = 1; ch <= 64; ch++) {
      decoder.push(
        Buffer.concat([deliver(ch), header(ch, 128 * MiB), frameHead(3, ch, 128 * MiB), Buffer.alloc(1)]),
      );
      // The stream is inside channel ch's body frame now: finish it only for the last channel.
      if (ch < 64) {
        decoder.reset();
        decoder.frameMax = 0;
      }
    }
    expect(decoder.bytesHeld).toBeLessThanOrEqual(16);
    decoder.push(Buffer.alloc(100_000));
    expect(decoder.bytesHeld).toBeLessThanOrEqual(2 * 100_001);
  });

  it('allocates small bodies whole within a 16 MiB budget, and grows the rest', () => {
    const { decoder } = collectingDecoder({ frameMax: 131072 });
    for (let ch = 1; ch <= 40; ch++) {
      decoder.push(Buffer.concat([deliver(ch), header(ch, MiB), frame(3, ch, Buffer.from([1]))]));
    }
    // 16 bodies of 1 MiB allocated whole, the other 24 hold one byte each.
    expect(decoder.bytesHeld).toBe(16 * MiB + 24);
  });

  it('delivers bodies correctly whichever way they were allocated, split anywhere', () => {
    const sizes = [1, 2048, 2049, 100_000, MiB, MiB + 1, 3 * MiB + 7];
    const bodies = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    for (let i = 0; i < bodies.length; i++) bodies[i]![bodies[i]!.length - 1] = 0xab;
    const writer = new FrameWriter({ frameMax: 131072, maxBodySize: 8 * MiB });
    // Interleave channels: each message's frames go out in turn with others pending.
    bodies.forEach((b, i) => {
      writer.writeContent(
        i + 1,
        { name: 'basic.deliver', consumerTag: 't', deliveryTag: i + 1, exchange: '', routingKey: 'q' },
        {},
        b,
      );
    });
    const stream = Buffer.concat(
      (() => {
        const parts: Buffer[] = [];
        let seg = writer.take();
        while (seg !== undefined) {
          parts.push(seg as Buffer);
          seg = writer.take();
        }
        return parts;
      })(),
    );
    for (const chunk of [[65536], [131072 + 3], [777, 100_000]]) {
      const events = decodeInChunks(stream, chunk, { frameMax: 131072, maxBodySize: 8 * MiB });
      expect(events.map((e) => (e.kind === 'content' ? e.body.length : -1))).toEqual(sizes);
      events.forEach((e, i) => {
        if (e.kind !== 'content') throw new Error('content expected');
        expect(e.body.equals(bodies[i]!)).toBe(true);
        expect(Buffer.isBuffer(e.body)).toBe(true);
      });
    }
  });

  it('a 1 MiB body in 128 KiB frames is allocated once, at its size', () => {
    const body = Buffer.alloc(MiB, 5);
    const writer = new FrameWriter({ frameMax: 131072, maxBodySize: 8 * MiB });
    writer.writeContent(
      1,
      { name: 'basic.deliver', consumerTag: 't', deliveryTag: 1, exchange: '', routingKey: 'q' },
      {},
      body,
    );
    const [event] = decodeInChunks(writer.take()!, [65536], { frameMax: 131072 });
    if (event?.kind !== 'content') throw new Error('content expected');
    expect(event.body.equals(body)).toBe(true);
    expect(event.body.buffer.byteLength).toBe(MiB); // its own memory, no slack from growing
  });
});

describe('acceptContent', () => {
  function decoderWith(
    accept: (channel: number, method: ContentMethod) => boolean,
    options?: FrameDecoderOptions,
  ) {
    const delivered: { channel: number; body: Buffer; properties: BasicProperties }[] = [];
    const asked: [number, string][] = [];
    const decoder = new FrameDecoder(
      {
        onMethod: () => {},
        onHeartbeat: () => {},
        onContent: (channel, _m, properties, body) =>
          delivered.push({ channel, body: body as Buffer, properties }),
        acceptContent: (channel, method) => {
          asked.push([channel, method.name]);
          return accept(channel, method);
        },
      },
      options,
    );
    return { decoder, delivered, asked };
  }

  it('skips a refused message without assembling or allocating it, and delivers the next', () => {
    const { decoder, delivered, asked } = decoderWith((channel) => channel !== 7, { frameMax: 131072 });
    decoder.push(Buffer.concat([deliver(7), header(7, 150_000), frame(3, 7, Buffer.alloc(100_000))]));
    expect(decoder.bytesHeld).toBe(0);
    // A body frame split across chunks is skipped as it streams.
    const rest = frame(3, 7, Buffer.alloc(50_000));
    decoder.push(rest.subarray(0, 20_000));
    expect(decoder.bytesHeld).toBe(0);
    decoder.push(rest.subarray(20_000));
    decoder.push(Buffer.concat([deliver(1), header(1, 3), frame(3, 1, Buffer.from('abc'))]));
    expect(asked).toEqual([
      [7, 'basic.deliver'],
      [1, 'basic.deliver'],
    ]);
    expect(delivered.map((d) => [d.channel, d.body.toString()])).toEqual([[1, 'abc']]);
    // A refused empty message, then a refused one that completes: nothing delivered, state clean.
    decoder.push(
      Buffer.concat([deliver(7), header(7, 0), deliver(7), header(7, 2), frame(3, 7, Buffer.from('zz'))]),
    );
    expect(delivered).toHaveLength(1);
    expect(decoder.assembling).toBe(false);
  });

  it('still checks the framing of a refused message', () => {
    const refuse = (): boolean => false;
    const cases: [Buffer, string][] = [
      [Buffer.concat([deliver(7), header(7, 2), frame(3, 7, Buffer.alloc(3))]), 'BODY_OVERRUN'],
      [Buffer.concat([deliver(7), header(7, 2), frame(3, 7, Buffer.alloc(2), 0)]), 'BAD_FRAME_END'],
      [Buffer.concat([deliver(7), frame(3, 7, Buffer.alloc(2))]), 'UNEXPECTED_FRAME'],
      [Buffer.concat([deliver(7), header(7, 2), deliver(7)]), 'UNEXPECTED_FRAME'],
      [Buffer.concat([deliver(7), header(7, 128 * MiB + 1)]), 'BODY_TOO_LARGE'],
    ];
    for (const [bytes, code] of cases) {
      for (const cut of [bytes.length, bytes.length - 3]) {
        const { decoder } = decoderWith(refuse, { frameMax: 131072 });
        const e = thrown(() => {
          decoder.push(bytes.subarray(0, cut));
          decoder.push(bytes.subarray(cut));
        });
        expect([code, (e as FrameError).code]).toEqual([code, code]);
      }
    }
  });

  it('fails the decoder with what it throws', () => {
    const refusal = new Error('channel 7 is not open');
    const { decoder, delivered } = decoderWith(() => {
      throw refusal;
    });
    expect(thrown(() => decoder.push(Buffer.concat([deliver(7), header(7, 1)])))).toBe(refusal);
    expect(thrown(() => decoder.push(deliver(1)))).toBe(refusal);
    expect(delivered).toHaveLength(0);
  });
});

describe('any input under 64 KiB', () => {
  const channel = fc.integer({ min: 1, max: 64 });
  const declared = fc.oneof(
    fc.constantFrom(0, 1, 2048, MiB, MiB + 1, 16 * MiB, 128 * MiB),
    fc.integer({ min: 0, max: 128 * MiB }),
  );
  /** Pieces of a stream: mostly well-formed content frames with hostile sizes, some junk. */
  const piece = fc.oneof(
    { weight: 4, arbitrary: channel.map((ch) => deliver(ch)) },
    { weight: 4, arbitrary: fc.tuple(channel, declared).map(([ch, n]) => header(ch, n)) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(channel, fc.integer({ min: 0, max: 3000 }))
        .map(([ch, n]) => frame(3, ch, Buffer.alloc(n, 1))),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(1, 2, 3), channel, fc.constantFrom(2 ** 32 - 9, 2 ** 30, 128 * MiB, 131064))
        .map(([type, ch, n]) => frameHead(type, ch, n)),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  );
  const input = fc
    .array(piece, { maxLength: 300 })
    .map((parts) => Buffer.concat(parts).subarray(0, 64 * 1024 - 1));

  it('never makes the decoder hold more than a fixed bound (16 MiB budget + what arrived)', () => {
    fc.assert(
      fc.property(
        input,
        fc.constantFrom<FrameDecoderOptions>({}, { frameMax: 0 }, { frameMax: 131072 }),
        fc.integer({ min: 1, max: 70_000 }),
        (bytes, options, chunk) => {
          const { decoder } = collectingDecoder(options);
          const before = arrayBuffers();
          let held = 0;
          try {
            for (let off = 0; off < bytes.length; off += chunk) {
              decoder.push(bytes.subarray(off, off + chunk));
              held = Math.max(held, decoder.bytesHeld);
            }
          } catch (e) {
            expect(e).toBeInstanceOf(FrameError);
          }
          expect(held).toBeLessThanOrEqual(16 * MiB + 2 * bytes.length + 4096);
          expect(arrayBuffers() - before).toBeLessThan(64 * MiB);
        },
      ),
      { numRuns: 300 },
    );
  });
});
