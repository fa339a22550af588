import fc from 'fast-check';
import {
  BASIC_PROPERTY_NAMES,
  type BasicProperties,
  FrameWriter,
  isContentMethod,
  isHardError,
  METHOD_ARGUMENTS,
  METHOD_INFO,
  type MethodInit,
  type MethodName,
  methodName,
  ReplyCode,
} from '../../src/protocol/index.js';
import { arbMethodPair, arbPropertiesPair, collectingDecoder, decodeInChunks } from './support.js';

const names = Object.keys(METHOD_INFO) as MethodName[];
const contentNames = names.filter((n) => METHOD_INFO[n].content);
const plainNames = names.filter((n) => !METHOD_INFO[n].content);

function encodeOne(
  channel: number,
  method: MethodInit,
  properties: BasicProperties = {},
  body = Buffer.alloc(0),
): Buffer {
  const writer = new FrameWriter({ frameMax: 131072 });
  if (METHOD_INFO[method.name].content) writer.writeContent(channel, method, properties, body);
  else writer.writeMethod(channel, method);
  return Buffer.from(writer.take()!);
}

describe('methods', () => {
  it('covers every class the issue names, with the spec ids', () => {
    const classes = new Set(names.map((n) => n.split('.')[0]));
    for (const c of ['connection', 'channel', 'exchange', 'queue', 'basic', 'tx', 'confirm'])
      expect(classes).toContain(c);
    expect(METHOD_INFO['basic.deliver']).toMatchObject({
      classId: 60,
      methodId: 60,
      content: true,
      synchronous: false,
    });
    expect(METHOD_INFO['queue.declare']).toMatchObject({
      classId: 50,
      methodId: 10,
      synchronous: true,
      replies: ['queue.declare-ok'],
    });
    expect(METHOD_INFO['basic.get'].replies).toEqual(['basic.get-ok', 'basic.get-empty']);
    expect(METHOD_INFO['confirm.select']).toMatchObject({ classId: 85, methodId: 10 });
    expect(contentNames.sort()).toEqual(['basic.deliver', 'basic.get-ok', 'basic.publish', 'basic.return']);
    for (const n of names) {
      const { classId, methodId } = METHOD_INFO[n];
      expect(methodName(classId, methodId)).toBe(n);
      expect(isContentMethod(classId, methodId)).toBe(METHOD_INFO[n].content);
    }
    expect(methodName(60, 999)).toBeUndefined();
  });

  it('marks reply codes soft or hard as the spec classes them', () => {
    expect(isHardError(ReplyCode.NOT_FOUND)).toBe(false);
    expect(isHardError(ReplyCode.PRECONDITION_FAILED)).toBe(false);
    expect(isHardError(ReplyCode.ACCESS_REFUSED)).toBe(false);
    expect(isHardError(ReplyCode.CONNECTION_FORCED)).toBe(true);
    expect(isHardError(ReplyCode.FRAME_ERROR)).toBe(true);
    expect(isHardError(ReplyCode.REPLY_SUCCESS)).toBe(false);
    expect(isHardError(999)).toBe(true);
  });

  it.each(plainNames)('round-trips %s with random arguments on a random channel', (name) => {
    fc.assert(
      fc.property(arbMethodPair(name), fc.integer({ min: 0, max: 65535 }), ([input, expected], channel) => {
        const bytes = encodeOne(channel, input as unknown as MethodInit);
        const { decoder, events } = collectingDecoder({ frameMax: 131072 });
        decoder.push(bytes);
        expect(events).toEqual([{ kind: 'method', channel, method: expected }]);
      }),
      { numRuns: 60 },
    );
  });

  it.each(contentNames)('round-trips %s with random arguments, properties and body', (name) => {
    fc.assert(
      fc.property(
        arbMethodPair(name),
        arbPropertiesPair,
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 1, max: 65535 }),
        ([input, expected], [props, expectedProps], body, channel) => {
          const bytes = encodeOne(channel, input as unknown as MethodInit, props, Buffer.from(body));
          const { decoder, events } = collectingDecoder({ frameMax: 131072 });
          decoder.push(bytes);
          expect(events).toEqual([
            {
              kind: 'content',
              channel,
              method: expected,
              properties: expectedProps,
              body: Buffer.from(body),
            },
          ]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('fills left-out arguments with the spec defaults', () => {
    const { decoder, events } = collectingDecoder();
    decoder.push(encodeOne(1, { name: 'queue.declare' }));
    decoder.push(encodeOne(1, { name: 'basic.nack', deliveryTag: 5 }));
    decoder.push(encodeOne(1, { name: 'exchange.declare', exchange: 'x' }));
    expect(events.map((e) => (e.kind === 'method' ? e.method : e))).toEqual([
      {
        name: 'queue.declare',
        ticket: 0,
        queue: '',
        passive: false,
        durable: false,
        exclusive: false,
        autoDelete: false,
        nowait: false,
        arguments: {},
      },
      { name: 'basic.nack', deliveryTag: 5, multiple: false, requeue: true },
      {
        name: 'exchange.declare',
        ticket: 0,
        exchange: 'x',
        type: 'direct',
        passive: false,
        durable: false,
        autoDelete: false,
        internal: false,
        nowait: false,
        arguments: {},
      },
    ]);
  });

  it('packs consecutive bits into shared octets in argument order', () => {
    const bytes = encodeOne(0, { name: 'queue.declare', queue: 'q', durable: true, autoDelete: true });
    // frame header 7, class+method 4, ticket 2, shortstr 2 ("\x01q"), then the bits octet
    expect(bytes[15]).toBe(0b0000_1010);
    expect(METHOD_ARGUMENTS['queue.declare'].filter((a) => a.type === 'bit').map((a) => a.name)).toEqual([
      'passive',
      'durable',
      'exclusive',
      'autoDelete',
      'nowait',
    ]);
  });

  it('encodes basic.ack to the exact bytes of the spec layout', () => {
    const bytes = encodeOne(7, { name: 'basic.ack', deliveryTag: 2 ** 40 + 3, multiple: true });
    expect(bytes.toString('hex')).toBe('010007' + '0000000d' + '003c0050' + '0000010000000003' + '01' + 'ce');
  });
});

describe('content header properties', () => {
  it('has the 14 basic properties in wire order', () => {
    expect(BASIC_PROPERTY_NAMES).toEqual([
      'contentType',
      'contentEncoding',
      'headers',
      'deliveryMode',
      'priority',
      'correlationId',
      'replyTo',
      'expiration',
      'messageId',
      'timestamp',
      'type',
      'userId',
      'appId',
      'clusterId',
    ]);
  });

  it('sets one flag bit per present property, bit 15 first', () => {
    BASIC_PROPERTY_NAMES.forEach((prop, i) => {
      const value =
        prop === 'headers'
          ? {}
          : prop === 'timestamp'
            ? new Date(0)
            : prop === 'deliveryMode' || prop === 'priority'
              ? 1
              : 'v';
      const writer = new FrameWriter();
      writer.writePublish(1, '', 'q', Buffer.alloc(0), { [prop]: value } as BasicProperties);
      const bytes = writer.take()! as Buffer;
      const headerStart = bytes.indexOf(0xce) + 1; // after the method frame
      // header frame: 7-byte frame header, class 2, weight 2, body size 8, then the flags word
      expect([prop, bytes.readUInt16BE(headerStart + 7 + 12)]).toEqual([prop, 1 << (15 - i)]);
    });
  });

  it('round-trips all 14 properties together and treats undefined as absent', () => {
    const properties: BasicProperties = {
      contentType: 'application/json',
      contentEncoding: 'gzip',
      headers: { a: 1 },
      deliveryMode: 2,
      priority: 9,
      correlationId: 'c-1',
      replyTo: 'amq.rabbitmq.reply-to',
      expiration: '60000',
      messageId: 'm-1',
      timestamp: new Date(1_700_000_000_000),
      type: 'order.created',
      userId: 'guest',
      appId: 'shop',
      clusterId: 'c',
    };
    const writer = new FrameWriter();
    writer.writePublish(1, 'x', 'rk', Buffer.from('{}'), { ...properties, priority: undefined });
    const events = decodeInChunks(writer.take()!, [1]);
    const { priority: _omit, ...rest } = properties;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'content', properties: rest });
    expect(Object.hasOwn((events[0] as { properties: object }).properties, 'priority')).toBe(false);
  });
});
