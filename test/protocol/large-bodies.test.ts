/**
 * Large bodies (issue 14): the writer writing over its buffers once its owner has released them, and
 * the decoder's buffer set aside for the next large body. Neither may let a caller's bytes alias memory
 * that is written again.
 */
import { FrameDecoder, FrameWriter } from '../../src/protocol/index.js';
import { collectingDecoder, decodeInChunks } from './support.js';

const MiB = 1024 * 1024;
const FRAME_MAX = 131072;

const PATTERN = Buffer.from(Array.from({ length: 251 }, (_, i) => (i * 31) & 0xff));

/** `size` bytes of a pattern that repeats every 251 bytes (not a divisor of any frame size), from `seed`. */
function patterned(size: number, seed: number): Buffer {
  const body = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 251) PATTERN.copy(body, i, 0, Math.min(251, size - i));
  if (size > 0) body[0] = seed & 0xff;
  return body;
}

/** True when the events are content events with exactly these bodies (Buffer.equals: jest's deep equality is slow on MiBs). */
function sameBodies(events: readonly { kind: string }[], bodies: readonly Buffer[]): boolean {
  return (
    events.length === bodies.length &&
    events.every((e, i) => e.kind === 'content' && (e as unknown as { body: Buffer }).body.equals(bodies[i]!))
  );
}

/** A basic.deliver triplet of `body` on channel 1, encoded. */
function delivery(body: Uint8Array, tag = 1): Buffer {
  const writer = new FrameWriter({ frameMax: FRAME_MAX });
  writer.writeContent(
    1,
    { name: 'basic.deliver', consumerTag: 'c', deliveryTag: tag, exchange: '', routingKey: 'q' },
    {},
    body,
  );
  return Buffer.from(writer.take()!);
}

describe('FrameWriter with a released owner', () => {
  it('writes over its buffer once released, and never before', () => {
    let released = false;
    const writer = new FrameWriter({ frameMax: FRAME_MAX, released: () => released });
    const first = patterned(MiB, 1);
    writer.writePublish(1, '', 'q', first);
    const out1 = writer.takeSegments();
    const copy1 = Buffer.concat(out1);
    // Not released: the next large publish must not touch what was handed out.
    writer.writePublish(1, '', 'q', patterned(MiB, 2));
    const out2 = writer.takeSegments();
    expect(Buffer.concat(out1).equals(copy1)).toBe(true);
    expect(out2.some((s) => s.buffer === out1[0]!.buffer)).toBe(false);
    // Released: the writer reuses a buffer it handed out before instead of allocating.
    released = true;
    const third = patterned(MiB, 3);
    writer.writePublish(1, '', 'q', third);
    const out3 = writer.takeSegments();
    expect(out3).toHaveLength(1);
    expect([out1[0]!.buffer, out2[0]!.buffer]).toContain(out3[0]!.buffer);
    third.fill(0); // the caller reuses its body at once: what was written is a copy
    const events = decodeInChunks(Buffer.concat(out3), [], { frameMax: FRAME_MAX });
    expect(events).toHaveLength(1);
    expect((events[0] as { body: Buffer }).body.equals(patterned(MiB, 3))).toBe(true);
  });

  it('does not write over bytes written but not yet taken, released or not', () => {
    const writer = new FrameWriter({ frameMax: FRAME_MAX, chunkSize: 4096, released: () => true });
    const bodies = [patterned(MiB, 4), patterned(3000, 5), patterned(MiB + 1, 6), patterned(10, 7)];
    for (const body of bodies) writer.writePublish(1, '', 'q', body);
    const events = decodeInChunks(Buffer.concat(writer.takeSegments()), [65536], { frameMax: FRAME_MAX });
    expect(sameBodies(events, bodies)).toBe(true);
  });

  it('keeps no huge buffer for small messages, and every message round-trips', () => {
    const writer = new FrameWriter({ frameMax: FRAME_MAX, released: () => true });
    const sizes = [10 * MiB, 100, 2 * MiB, 5 * MiB, 256, MiB, MiB];
    for (const size of sizes) {
      const body = patterned(size, size & 0xff);
      writer.writePublish(1, '', 'q', body);
      const bytes = Buffer.concat(writer.takeSegments());
      body.fill(0);
      const events = decodeInChunks(bytes, [], { frameMax: FRAME_MAX, maxBodySize: 16 * MiB });
      expect((events[0] as { body: Buffer }).body.equals(patterned(size, size & 0xff))).toBe(true);
    }
  });
});

describe('FrameDecoder with 1 MiB bodies', () => {
  it.each([
    ['one chunk', [] as number[]],
    ['frame-sized chunks', [FRAME_MAX]],
    ['64 KiB chunks', [65536]],
    ['chunks cutting frame ends and headers', [FRAME_MAX - 1, 7, 1, FRAME_MAX + 9]],
    ['odd chunks', [4093, 65537, 3]],
  ])('assembles bodies split into %s', (_name, sizes) => {
    const bodies = [patterned(MiB, 1), patterned(MiB, 2), patterned(MiB - 1, 3), patterned(FRAME_MAX - 8, 4)];
    const bytes = Buffer.concat(bodies.map((b, i) => delivery(b, i + 1)));
    const events = decodeInChunks(bytes, sizes, { frameMax: FRAME_MAX });
    expect(sameBodies(events, bodies)).toBe(true);
  });

  it('assembles a body at every split of the stream around frame boundaries', () => {
    const body = patterned(3 * (FRAME_MAX - 8) + 5, 9);
    const bytes = delivery(body);
    // Splits at and around every frame boundary (method, header, each body frame's header and end).
    const cuts = new Set<number>();
    for (let off = 0; off < bytes.length; ) {
      const size = bytes.readUInt32BE(off + 3);
      for (const d of [-9, -8, -7, -2, -1, 0, 1, 2, 6, 7, 8]) cuts.add(off + d);
      off += size + 8;
    }
    for (const cut of cuts) {
      if (cut <= 0 || cut >= bytes.length) continue;
      const { decoder, events } = collectingDecoder({ frameMax: FRAME_MAX });
      decoder.push(bytes.subarray(0, cut));
      decoder.push(bytes.subarray(cut));
      expect([cut, (events[0] as { body: Buffer }).body.equals(body)]).toEqual([cut, true]);
    }
  });

  it('hands out bodies that no later body, chunk or set-aside buffer writes over', () => {
    const { decoder, events } = collectingDecoder({ frameMax: FRAME_MAX });
    const chunk = Buffer.allocUnsafe(65536); // one read buffer reused for every chunk, as the TCP transport does
    const expected: Buffer[] = [];
    for (let m = 0; m < 6; m++) {
      const body = patterned(m === 3 ? 200_000 : MiB, m);
      expected.push(Buffer.from(body));
      const bytes = delivery(body, m + 1);
      for (let off = 0; off < bytes.length; off += chunk.length) {
        const n = bytes.copy(chunk, 0, off, Math.min(bytes.length, off + chunk.length));
        decoder.push(chunk.subarray(0, n));
      }
      chunk.fill(0xee);
    }
    const bodies = events.map((e) => (e as { body: Buffer }).body);
    expect(sameBodies(events, expected)).toBe(true);
    const memories = new Set(bodies.map((b) => b.buffer));
    expect(memories.size).toBe(bodies.length); // each body has memory of its own
    expect(memories.has(chunk.buffer)).toBe(false);
  });

  it('a body in a single frame is copied out of the chunk', () => {
    const body = patterned(FRAME_MAX - 8, 11);
    const bytes = delivery(body);
    const events = decodeInChunks(bytes, [], { frameMax: FRAME_MAX });
    const delivered = (events[0] as { body: Buffer }).body;
    bytes.fill(0);
    expect(delivered.equals(body)).toBe(true);
  });

  it('sets a buffer aside only once a large body is complete, and counts it as held', () => {
    const decoder = new FrameDecoder(
      { onMethod: () => {}, onContent: () => {}, onHeartbeat: () => {} },
      { frameMax: FRAME_MAX },
    );
    const bytes = delivery(patterned(MiB, 1));
    decoder.push(bytes.subarray(0, bytes.length - 1));
    expect(decoder.bytesHeld).toBe(MiB); // the body being filled
    decoder.push(bytes.subarray(bytes.length - 1));
    expect(decoder.bytesHeld).toBe(MiB); // the buffer for the next 1 MiB body
    decoder.reset();
    expect(decoder.bytesHeld).toBe(0);
  });
});
