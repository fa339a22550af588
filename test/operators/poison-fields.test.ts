/** Typed access to the poison-message headers (`x-delivery-count`, `x-death`) and `isConsumerTimeout`. */
import {
  ChannelClosedError,
  ConnectionClosedError,
  ConsumerCancelledError,
  deathsOf,
  deliveryCountOf,
  field,
  isConsumerTimeout,
} from '../../src/node.js';
import { marbleKit } from '../../src/testing/index.js';

const timeoutClose = ChannelClosedError.fromServer(3, {
  replyCode: 406,
  replyText:
    'PRECONDITION_FAILED - delivery acknowledgement on channel 3 timed out. Timeout value used: 5000 ms. This timeout value can be configured, see consumers doc guide to learn more',
  classId: 0,
  methodId: 0,
});

describe('deliveryCountOf / Delivery.deliveryCount', () => {
  it('reads x-delivery-count as a number (number, bigint or typed field), undefined without it', () => {
    expect(deliveryCountOf({ headers: { 'x-delivery-count': 2 } })).toBe(2);
    expect(deliveryCountOf({ headers: { 'x-delivery-count': 7n } })).toBe(7);
    expect(deliveryCountOf({ headers: { 'x-delivery-count': field.int64(3) } })).toBe(3);
    expect(deliveryCountOf({ headers: {} })).toBeUndefined();
    expect(deliveryCountOf({})).toBeUndefined();
    expect(deliveryCountOf({ headers: { 'x-delivery-count': 'two' } })).toBeUndefined();
    expect(deliveryCountOf({ headers: { 'x-delivery-count': -1 } })).toBeUndefined();
    const d = marbleKit()
      .channel()
      .delivery({ properties: { headers: { 'x-delivery-count': 4 } } });
    expect(d.deliveryCount).toBe(4);
    expect(marbleKit().channel().delivery('x').deliveryCount).toBeUndefined();
  });
});

describe('deathsOf / Delivery.deaths', () => {
  it('parses x-death entries into typed records, most recent first', () => {
    const time = new Date('2026-01-01T12:00:00Z');
    const deaths = deathsOf({
      headers: {
        'x-death': [
          {
            count: 2n,
            reason: 'expired',
            queue: 'wait',
            time,
            exchange: 'retry',
            'routing-keys': ['jobs', 'cc-key'],
            'original-expiration': '1000',
          },
          { count: 1, reason: 'delivery_limit', queue: 'jobs', exchange: '', 'routing-keys': ['jobs'] },
          'not a table',
        ],
      },
    });
    expect(deaths).toEqual([
      {
        queue: 'wait',
        reason: 'expired',
        count: 2,
        exchange: 'retry',
        routingKeys: ['jobs', 'cc-key'],
        time,
        originalExpiration: '1000',
      },
      {
        queue: 'jobs',
        reason: 'delivery_limit',
        count: 1,
        exchange: '',
        routingKeys: ['jobs'],
        time: undefined,
        originalExpiration: undefined,
      },
    ]);
  });

  it('is empty for a message never dead-lettered, or an x-death that is not an array', () => {
    expect(deathsOf({})).toEqual([]);
    expect(deathsOf({ headers: { 'x-death': 'x' } })).toEqual([]);
    expect(marbleKit().channel().delivery('x').deaths).toEqual([]);
  });
});

describe('isConsumerTimeout', () => {
  it("recognises RabbitMQ 3.x's 406 close, also through a later-use copy's cause", () => {
    expect(isConsumerTimeout(timeoutClose)).toBe(true);
    expect(isConsumerTimeout(timeoutClose.forLaterUse('basic.ack'))).toBe(true);
  });

  it("recognises 4.3's basic.cancel when deliveries were held, and nothing else", () => {
    expect(isConsumerTimeout(new ConsumerCancelledError('t', 'q', true))).toBe(true);
    expect(isConsumerTimeout(new ConsumerCancelledError('t', 'q'))).toBe(false);
    const otherPrecondition = ChannelClosedError.fromServer(1, {
      replyCode: 406,
      replyText: 'PRECONDITION_FAILED - unknown delivery tag 7',
      classId: 60,
      methodId: 80,
    });
    expect(isConsumerTimeout(otherPrecondition)).toBe(false);
    expect(
      isConsumerTimeout(
        ConnectionClosedError.fromServer({
          replyCode: 320,
          replyText: 'CONNECTION_FORCED',
          classId: 0,
          methodId: 0,
        }),
      ),
    ).toBe(false);
    expect(isConsumerTimeout(new Error('delivery acknowledgement on channel 1 timed out'))).toBe(false);
    expect(isConsumerTimeout(undefined)).toBe(false);
  });

  it('names the held deliveries in the message of such a cancel', () => {
    expect(new ConsumerCancelledError('t', 'q', true).message).toMatch(/held unacknowledged deliveries/);
    expect(new ConsumerCancelledError('t', 'q').message).toBe(
      'the broker cancelled consumer t of queue q (was the queue deleted?)',
    );
  });
});
