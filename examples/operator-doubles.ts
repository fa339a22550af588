/**
 * The operators work on interfaces, not on rxamqp's classes: `ackOnSuccess` and friends take any
 * `SettleableMessage`, `publishConfirmed` any `PublishTarget`. This runs a pipeline with no broker at
 * all: hand-made messages that record how they were settled, and a publish target that nacks every
 * third message. The same shapes let a test double, an in-memory broker or another backend's messages
 * flow through rxamqp's operators.
 *
 * Run: npx tsx examples/operator-doubles.ts   (no broker needed)
 */

import type { PublishOutcome, PublishTarget, SettleableMessage } from 'rxamqp';
import { ackOnSuccess, publishConfirmed } from 'rxamqp/operators';
import { from, lastValueFrom, map, type Observable, of, toArray } from 'rxjs';

const utf8 = new TextEncoder();
const settledAs = new Map<number, string>();

/** A message that remembers how it was settled. */
function message(tag: number, text: string): SettleableMessage {
  let settled = false;
  const settle = (how: string) => () => {
    if (settled) return false;
    settled = true;
    settledAs.set(tag, how);
    return true;
  };
  return {
    body: utf8.encode(text),
    properties: { contentType: 'text/plain' },
    fields: { deliveryTag: tag, redelivered: false, exchange: '', routingKey: 'jobs' },
    get settled() {
      return settled;
    },
    ack: settle('ack'),
    nack: settle('nack'),
    reject: settle('reject'),
    markSettled: settle('covered'),
  };
}

/** A publish target that acks every message but every third, which it nacks. */
let seq = 0;
const target: PublishTarget = {
  publish: (): Observable<PublishOutcome> => {
    seq++;
    return of({ status: seq % 3 === 0 ? 'nacked' : 'acked', seq });
  },
};

async function main(): Promise<void> {
  // Consuming: the handler fails on 'bad', so that message is rejected; the others are acked.
  const handled = await lastValueFrom(
    from([message(1, 'one'), message(2, 'bad'), message(3, 'three')]).pipe(
      ackOnSuccess((m) => {
        const text = new TextDecoder().decode(m.body);
        if (text === 'bad') throw new Error('cannot handle it');
        return text.toUpperCase();
      }),
      toArray(),
    ),
  );
  console.log('handled:', handled.join(', '));
  console.log('settled:', [...settledAs].map(([tag, how]) => `${tag}=${how}`).join(' '));

  // Publishing: outcomes in source order, nacks emitted rather than raised.
  const outcomes = await lastValueFrom(
    from(['a', 'b', 'c', 'd']).pipe(
      map((body) => ({ exchange: '', routingKey: 'jobs', body })),
      publishConfirmed(target, { onNack: 'emit' }),
      map((r) => `${String(r.message.body)}:${r.outcome.status}`),
      toArray(),
    ),
  );
  console.log('published:', outcomes.join(' '));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
