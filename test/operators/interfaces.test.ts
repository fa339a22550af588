/**
 * The operators depend on the public interfaces only: plain objects implementing SettleableMessage
 * and PublishTarget (no Delivery, no Channel) go through them.
 */
import { from, lastValueFrom, map, of, toArray } from 'rxjs';
import {
  ackAll,
  ackOnSuccess,
  batchAck,
  nackAll,
  publishConfirmed,
  rejectAll,
} from '../../operators/index.js';
import type { PublishTarget, SettleableMessage } from '../../src/index.js';

/** A message object that records its settlements as `tag:how`. */
function plain(tag: number, log: string[], consumerTag = 'c'): SettleableMessage & { tag: number } {
  let settled = false;
  const settle = (how: string) => (options?: { multiple?: boolean; requeue?: boolean }) => {
    if (settled) return false;
    settled = true;
    log.push(`${tag}:${how}${options?.multiple ? '+' : ''}${options?.requeue === false ? '!' : ''}`);
    return true;
  };
  return {
    tag,
    body: new TextEncoder().encode(String(tag)),
    properties: {},
    fields: { deliveryTag: tag, redelivered: false, exchange: '', routingKey: 'q', consumerTag },
    get settled() {
      return settled;
    },
    ack: settle('ack'),
    nack: settle('nack'),
    reject: settle('reject'),
    markSettled: settle('covered'),
  };
}

describe('operators over the public interfaces', () => {
  it('settle plain SettleableMessage objects and keep their type', async () => {
    const log: string[] = [];
    const tags = await lastValueFrom(
      from([plain(1, log), plain(2, log)]).pipe(
        ackAll(),
        map((m) => m.tag), // the element type is the caller's own, not Delivery
        toArray(),
      ),
    );
    expect(tags).toEqual([1, 2]);
    await lastValueFrom(from([plain(3, log)]).pipe(nackAll({ requeue: false })));
    await lastValueFrom(from([plain(4, log)]).pipe(rejectAll()));
    await lastValueFrom(
      from([plain(1, log, 'b'), plain(2, log, 'b'), plain(3, log, 'b')]).pipe(batchAck({ count: 3 })),
    );
    const results = await lastValueFrom(
      from([plain(8, log), plain(9, log)]).pipe(
        ackOnSuccess((m) => {
          if (m.tag === 9) throw new Error('no');
          return m.tag * 10;
        }),
        toArray(),
      ),
    );
    expect(results).toEqual([80]);
    expect(log).toEqual([
      '1:ack',
      '2:ack',
      '3:nack!',
      '4:reject',
      '3:ack+',
      '1:covered',
      '2:covered',
      '8:ack',
      '9:reject',
    ]);
  });

  it('publishConfirmed drives a PublishTarget that has only publish()', async () => {
    let seq = 0;
    const target: PublishTarget = { publish: () => of({ status: 'acked', seq: ++seq } as const) };
    const out = await lastValueFrom(
      from(['a', 'b']).pipe(
        map((body) => ({ exchange: '', routingKey: 'q', body })),
        publishConfirmed(target),
        map((r) => `${String(r.message.body)}:${r.outcome.status}`),
        toArray(),
      ),
    );
    expect(out).toEqual(['a:acked', 'b:acked']);
  });
});
