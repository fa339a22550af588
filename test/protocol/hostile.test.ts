import fc from 'fast-check';
import { FrameError, FrameWriter, PROTOCOL_HEADER } from '../../src/protocol/index.js';
import { collectingDecoder, thrown } from './support.js';

/** A raw frame with the given type, channel and payload, and a correct size and frame-end. */
function frame(type: number, channel: number, payload: Buffer, end = 0xce): Buffer {
  const head = Buffer.alloc(7);
  head[0] = type;
  head.writeUInt16BE(channel, 1);
  head.writeUInt32BE(payload.length, 3);
  return Buffer.concat([head, payload, Buffer.from([end])]);
}

function methodPayload(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s/g, ''), 'hex');
}

const deliverPayload = methodPayload('003c 003c 03 746167 0000000000000001 00 00 01 71'); // ctag "tag", tag 1, "", "q"
const deliverFrame = frame(1, 1, deliverPayload);

function header(bodySizeHex: string, flags = '0000', classId = '003c'): Buffer {
  return frame(2, 1, methodPayload(`${classId} 0000 ${bodySizeHex} ${flags}`));
}

function expectFrameError(
  bytes: Buffer | Buffer[],
  replyCode: number,
  code: string,
  frameMax?: number,
): FrameError {
  const { decoder } = collectingDecoder(frameMax === undefined ? {} : { frameMax });
  const chunks = Array.isArray(bytes) ? bytes : [bytes];
  const e = thrown(() => {
    for (const c of chunks) decoder.push(c);
  });
  expect(e).toBeInstanceOf(FrameError);
  expect({ replyCode: (e as FrameError).replyCode, code: (e as FrameError).code }).toEqual({
    replyCode,
    code,
  });
  // The decoder stays failed: the next push throws the same error.
  expect(thrown(() => decoder.push(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce])))).toBe(e);
  return e as FrameError;
}

describe('hostile input', () => {
  it('rejects a frame larger than 4096 bytes before tune from its header alone, allocating nothing', () => {
    const head = Buffer.from([1, 0, 0, 0xff, 0xff, 0xff, 0xff]); // claims a 4 GiB payload
    const e = expectFrameError(head, 501, 'FRAME_TOO_LARGE');
    expect(e.message).toContain('exceeds frame_max 4096');
    expectFrameError(frame(1, 0, Buffer.alloc(4096 - 7)), 501, 'FRAME_TOO_LARGE');
  });

  it('accepts frames up to the negotiated frame_max and rejects one byte more', () => {
    const { decoder, events } = collectingDecoder({ frameMax: 131072 });
    const body = Buffer.alloc(131072 - 8, 7);
    decoder.push(deliverFrame);
    decoder.push(header(`00000000${body.length.toString(16).padStart(8, '0')}`));
    decoder.push(frame(3, 1, body));
    expect(events).toHaveLength(1);
    expectFrameError(frame(3, 1, Buffer.alloc(131072 - 7)), 501, 'FRAME_TOO_LARGE', 131072);
  });

  it('rejects a bad frame-end octet', () => {
    expectFrameError(frame(8, 0, Buffer.alloc(0), 0x00), 501, 'BAD_FRAME_END');
  });

  it('rejects unknown frame types', () => {
    for (const type of [0, 4, 9, 255])
      expectFrameError(frame(type, 0, Buffer.alloc(0)), 501, 'UNKNOWN_FRAME_TYPE');
  });

  it('recognises a protocol header sent back by a server that does not speak 0-9-1', () => {
    expectFrameError(Buffer.from('AMQP\x00\x00\x0a\x00', 'latin1'), 501, 'PROTOCOL_MISMATCH');
    expectFrameError(Buffer.from(PROTOCOL_HEADER), 501, 'PROTOCOL_MISMATCH');
  });

  it('rejects a heartbeat on a channel or with a payload', () => {
    expectFrameError(frame(8, 1, Buffer.alloc(0)), 501, 'BAD_HEARTBEAT');
    expectFrameError(frame(8, 0, Buffer.alloc(1)), 501, 'BAD_HEARTBEAT');
  });

  it('rejects a body size of 2^63 and one over the configured maximum', () => {
    expectFrameError([deliverFrame, header('8000000000000000')], 501, 'BODY_TOO_LARGE');
    expectFrameError([deliverFrame, header('0000000008000001')], 501, 'BODY_TOO_LARGE'); // 128 MiB + 1
    const { decoder } = collectingDecoder({ maxBodySize: 10 });
    decoder.push(deliverFrame);
    expect((thrown(() => decoder.push(header('000000000000000b'))) as FrameError).code).toBe(
      'BODY_TOO_LARGE',
    );
  });

  it('rejects body frames carrying more than the header declared', () => {
    expectFrameError(
      [deliverFrame, header('0000000000000002'), frame(3, 1, Buffer.alloc(3))],
      501,
      'BODY_OVERRUN',
    );
  });

  it('checks a body frame split across chunks (streamed into its body) as strictly as a whole one', () => {
    const split = (bytes: Buffer, at: number[]): FrameError => {
      const { decoder } = collectingDecoder();
      let off = 0;
      return thrown(() => {
        for (const cut of [...at, bytes.length]) {
          decoder.push(bytes.subarray(off, cut));
          off = cut;
        }
      }) as FrameError;
    };
    const overrun = Buffer.concat([deliverFrame, header('0000000000000002'), frame(3, 1, Buffer.alloc(3))]);
    const bodyAt = deliverFrame.length + header('0000000000000002').length;
    // Cut inside the body frame's header, and just after it.
    for (const cut of [bodyAt + 3, bodyAt + 7, bodyAt + 8])
      expect(split(overrun, [cut]).code).toBe('BODY_OVERRUN');
    const noHeader = Buffer.concat([deliverFrame, frame(3, 1, Buffer.alloc(5))]);
    expect(split(noHeader, [deliverFrame.length + 9]).code).toBe('UNEXPECTED_FRAME');
    const badEnd = Buffer.concat([
      deliverFrame,
      header('0000000000000004'),
      frame(3, 1, Buffer.alloc(4), 0x00),
    ]);
    for (const cut of [bodyAt + 9, bodyAt + 11, bodyAt + 12]) {
      const e = split(badEnd, [cut]);
      expect([e.code, e.replyCode]).toEqual(['BAD_FRAME_END', 501]);
    }
    // And a good one, split at every offset, gives the same body.
    const good = Buffer.concat([deliverFrame, header('0000000000000004'), frame(3, 1, Buffer.from('abcd'))]);
    for (let cut = 1; cut < good.length; cut++) {
      const { decoder, events } = collectingDecoder();
      decoder.push(good.subarray(0, cut));
      decoder.push(good.subarray(cut));
      expect((events[0] as { body: Buffer }).body.toString()).toBe('abcd');
    }
  });

  it('rejects content frames out of sequence with 505', () => {
    expectFrameError(header('0000000000000001'), 505, 'UNEXPECTED_FRAME');
    expectFrameError(frame(3, 1, Buffer.alloc(1)), 505, 'UNEXPECTED_FRAME');
    expectFrameError([deliverFrame, frame(3, 1, Buffer.alloc(1))], 505, 'UNEXPECTED_FRAME');
    expectFrameError([deliverFrame, deliverFrame], 505, 'UNEXPECTED_FRAME');
    expectFrameError(
      [deliverFrame, header('0000000000000001'), header('0000000000000001')],
      505,
      'UNEXPECTED_FRAME',
    );
    expectFrameError([deliverFrame, header('0000000000000001', '0000', '0032')], 505, 'UNEXPECTED_FRAME');
  });

  it('rejects property flags for properties the basic class lacks', () => {
    expectFrameError([deliverFrame, header('0000000000000000', '0002')], 502, 'BAD_PROPERTY_FLAGS');
    expectFrameError([deliverFrame, header('0000000000000000', '0001 8000')], 502, 'BAD_PROPERTY_FLAGS');
  });

  it('rejects nesting deeper than 32 in a method argument table', () => {
    // connection.start with server-properties nested 33 deep
    let table = Buffer.alloc(4); // empty table
    for (let i = 0; i < 33; i++) {
      const entry = Buffer.concat([Buffer.from([1, 0x74, 0x46]), table]); // key "t", tag F, nested table
      const len = Buffer.alloc(4);
      len.writeUInt32BE(entry.length);
      table = Buffer.concat([len, entry]);
    }
    const payload = Buffer.concat([
      methodPayload('000a 000a 00 09'),
      table,
      methodPayload('00000005 504c41494e 00000005 656e5f5553'),
    ]);
    expectFrameError(frame(1, 0, payload), 502, 'TABLE_TOO_DEEP');
  });

  it('rejects unknown methods with 503 and trailing bytes with 502', () => {
    expectFrameError(frame(1, 0, methodPayload('003c 03e7')), 503, 'UNKNOWN_METHOD');
    expectFrameError(frame(1, 1, methodPayload('0014 0029 00')), 502, 'TRAILING_BYTES'); // channel.close-ok + 1 byte
  });

  it('rejects a delivery tag beyond 2^53 rather than losing precision', () => {
    const payload = methodPayload('003c 0050 0020000000000000 00'); // basic.ack, tag 2^53
    expectFrameError(frame(1, 1, payload), 502, 'INTEGER_TOO_LARGE');
  });

  it('gives a typed error for a method payload truncated at every offset', () => {
    const writer = new FrameWriter({ frameMax: 131072 });
    writer.writeMethod(0, {
      name: 'connection.start',
      serverProperties: {
        product: 'RabbitMQ',
        capabilities: { publisher_confirms: true },
        n: 1,
        list: [1, 'a'],
      },
      mechanisms: 'PLAIN AMQPLAIN',
      locales: 'en_US',
    });
    const whole = writer.take()! as Buffer;
    const payload = whole.subarray(7, whole.length - 1);
    for (let cut = 0; cut < payload.length; cut++) {
      const e = expectFrameError(frame(1, 0, payload.subarray(0, cut)), 502, 'TRUNCATED_FIELD');
      expect(e.channel).toBe(0);
    }
  });

  it('gives a typed error for a content header truncated at every offset', () => {
    const payload = methodPayload('003c 0000 0000000000000000 9000 04 74657874 01');
    for (let cut = 0; cut < payload.length - 1; cut++) {
      expectFrameError([deliverFrame, frame(2, 1, payload.subarray(0, cut))], 502, 'TRUNCATED_FIELD');
    }
  });

  it('never throws anything but FrameError for arbitrary bytes after a valid prefix', () => {
    const writer = new FrameWriter();
    writer.writeMethod(0, { name: 'connection.tune', channelMax: 2047, frameMax: 131072, heartbeat: 60 });
    const prefix = Buffer.from(writer.take()!);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 50 }), (junk, chunk) => {
        const { decoder } = collectingDecoder();
        const bytes = Buffer.concat([prefix, junk]);
        try {
          for (let off = 0; off < bytes.length; off += chunk) decoder.push(bytes.subarray(off, off + chunk));
        } catch (e) {
          expect(e).toBeInstanceOf(FrameError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never throws anything but FrameError for valid streams with corrupted bytes', () => {
    const writer = new FrameWriter({ frameMax: 4096 });
    writer.writeMethod(0, {
      name: 'connection.start',
      serverProperties: { a: [1, 2n ** 60n, { b: 'c' }], d: new Date(0) },
      mechanisms: 'PLAIN',
      locales: 'en_US',
    });
    writer.writeContent(
      1,
      { name: 'basic.deliver', consumerTag: 't', deliveryTag: 1, exchange: 'e', routingKey: 'r' },
      { headers: { x: 1.5 }, contentType: 'a' },
      Buffer.alloc(5000, 1),
    );
    const valid = Buffer.from(writer.take()!);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (edits) => {
          const bytes = Buffer.from(valid);
          for (const [at, v] of edits) bytes[at] = v;
          const { decoder } = collectingDecoder();
          try {
            decoder.push(bytes);
          } catch (e) {
            expect(e).toBeInstanceOf(FrameError);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
