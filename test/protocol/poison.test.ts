/**
 * Poison messages: a content header whose headers table cannot be decoded is delivered without its
 * headers and with a HeadersDecodeError, and the decoder keeps working. Before, such a header failed
 * the whole decoder (and so the connection) with a FrameError.
 */
import { FrameError, FrameWriter, HeadersDecodeError } from '../../src/protocol/index.js';
import { collectingDecoder, decodeInChunks, thrown } from './support.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

function frame(type: number, channel: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(7);
  head[0] = type;
  head.writeUInt16BE(channel, 1);
  head.writeUInt32BE(payload.length, 3);
  return Buffer.concat([head, payload, Buffer.from([0xce])]);
}

/** basic.deliver: consumer tag "tag", delivery tag `tag`, not redelivered, exchange "", key "q". */
function deliver(channel: number, tag: number): Buffer {
  return frame(1, channel, hex(`003c 003c 03 746167 ${tag.toString(16).padStart(16, '0')} 00 00 01 71`));
}

/**
 * A content header with content-type "text", the given raw headers table (its bytes without the
 * length), delivery mode 2, and a body of `bodySize`.
 */
function header(
  channel: number,
  bodySize: number,
  tableBytes: Buffer,
  tableLength = tableBytes.length,
): Buffer {
  const size = Buffer.alloc(8);
  size.writeUInt32BE(bodySize, 4);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(tableLength);
  return frame(
    2,
    channel,
    Buffer.concat([hex('003c 0000'), size, hex('b000 04 74657874'), len, tableBytes, hex('02')]),
  );
}

const body = (channel: number, bytes: Buffer): Buffer => frame(3, channel, bytes);

/** An entry "bad" with the unknown tag 0x51 ('Q') and four bytes after it. */
const UNKNOWN_TAG = hex('03 626164 51 00000001');
/** An entry "a" whose nested table says 10 bytes but the table ends after 2. */
const TRUNCATED_NESTED = hex('01 61 46 0000000a 0000');

function nestedTooDeep(): Buffer {
  let inner = hex('00000000');
  for (let i = 0; i < 33; i++) {
    const entry = Buffer.concat([hex('01 74 46'), inner]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(entry.length);
    inner = Buffer.concat([len, entry]);
  }
  return inner.subarray(4); // the outermost table's entries
}

describe('a headers table that cannot be decoded', () => {
  it.each([
    ['an unknown tag (0x51)', UNKNOWN_TAG, 'UNKNOWN_FIELD_TYPE'],
    ['a truncated nested value', TRUNCATED_NESTED, 'TRUNCATED_FIELD'],
    ['nesting deeper than 32', nestedTooDeep(), 'TABLE_TOO_DEEP'],
  ])('with %s: the message arrives without headers and with a HeadersDecodeError', (_, table, code) => {
    const stream = Buffer.concat([
      deliver(1, 1),
      header(1, 5, table),
      body(1, Buffer.from('hello')),
      // The decoder keeps working: the next message on the same channel, and one on another.
      deliver(1, 2),
      header(1, 2, hex('01 6b 53 00000001 76')), // { k: 'v' }
      body(1, Buffer.from('ok')),
      deliver(2, 3),
      header(2, 0, Buffer.alloc(0)),
    ]);
    // Whole, and one byte at a time (the header frame then arrives in pieces).
    for (const sizes of [[], [1]]) {
      const events = decodeInChunks(stream, sizes);
      expect(events).toHaveLength(3);
      const [first, second, third] = events;
      if (first?.kind !== 'content' || second?.kind !== 'content' || third?.kind !== 'content') {
        throw new Error('expected three messages');
      }
      expect(first.properties).toEqual({ contentType: 'text', deliveryMode: 2 }); // no headers key
      expect('headers' in first.properties).toBe(false);
      expect(first.body.toString()).toBe('hello');
      const e = first.headersError!;
      expect(e).toBeInstanceOf(HeadersDecodeError);
      expect(e.code).toBe('HEADERS_UNREADABLE');
      expect(e.cause).toBeInstanceOf(FrameError);
      expect((e.cause as FrameError).code).toBe(code);
      expect(e.message).toContain((e.cause as FrameError).message);
      expect(Buffer.from(e.raw).equals(table)).toBe(true);
      expect(second.properties).toEqual({ contentType: 'text', deliveryMode: 2, headers: { k: 'v' } });
      expect(second.headersError).toBeUndefined();
      expect(second.body.toString()).toBe('ok');
      expect(third.channel).toBe(2);
      expect(third.headersError).toBeUndefined();
    }
  });

  it('is handed over with an empty body too', () => {
    const events = decodeInChunks(Buffer.concat([deliver(1, 1), header(1, 0, UNKNOWN_TAG)]), []);
    expect(events).toHaveLength(1);
    expect((events[0] as { headersError?: unknown }).headersError).toBeInstanceOf(HeadersDecodeError);
  });

  it('stays a FrameError when the table claims more bytes than the frame has', () => {
    const { decoder } = collectingDecoder();
    decoder.push(deliver(1, 1));
    const e = thrown(() => decoder.push(header(1, 1, hex('01 61 56'), 100)));
    expect(e).toBeInstanceOf(FrameError);
    expect((e as FrameError).code).toBe('TRUNCATED_FIELD');
  });

  it('only the headers table is skipped: a bad table in a method is still a FrameError', () => {
    // connection.start whose server-properties hold the unknown tag
    const len = Buffer.alloc(4);
    len.writeUInt32BE(UNKNOWN_TAG.length);
    const payload = Buffer.concat([
      hex('000a 000a 00 09'),
      len,
      UNKNOWN_TAG,
      hex('00000005 504c41494e 00000005 656e5f5553'),
    ]);
    const { decoder } = collectingDecoder();
    const e = thrown(() => decoder.push(frame(1, 0, payload)));
    expect((e as FrameError).code).toBe('UNKNOWN_FIELD_TYPE');
  });

  it('leaves messages with good headers untouched', () => {
    const writer = new FrameWriter({ frameMax: 131072 });
    writer.writeContent(
      1,
      { name: 'basic.deliver', consumerTag: 't', deliveryTag: 1, exchange: '', routingKey: 'q' },
      { headers: { a: 1, b: [true, { c: 'd' }] } },
      Buffer.from('x'),
    );
    const [event] = decodeInChunks(writer.take()!, []);
    expect(event).toMatchObject({ properties: { headers: { a: 1, b: [true, { c: 'd' }] } } });
    expect((event as { headersError?: unknown }).headersError).toBeUndefined();
  });
});
