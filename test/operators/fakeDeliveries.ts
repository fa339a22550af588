import { map, type Observable } from 'rxjs';
import type { Settler } from '../../src/client/delivery.js';
import { type BasicProperties, Delivery, type PublishOutcome } from '../../src/node.js';

/** One settle call a delivery made: kind, tag, multiple, requeue. */
export type SettleCall = [kind: 'ack' | 'nack' | 'reject', tag: number, multiple: boolean, requeue: boolean];

/**
 * Deliveries of a fake channel that records what they send. `sent` is what the channel returns from
 * settle (false: the channel has closed).
 */
export function fakeChannel(options: { consumerTag?: string; sent?: boolean } = {}) {
  const calls: SettleCall[] = [];
  const settler = {
    settle: (kind: 'ack' | 'nack' | 'reject', tag: number, multiple: boolean, requeue: boolean) => {
      calls.push([kind, tag, multiple, requeue]);
      return options.sent ?? true;
    },
  };
  const delivery = (tag: number, body = `m${tag}`, redelivered = false): Delivery =>
    new Delivery(
      Buffer.from(body),
      {},
      {
        deliveryTag: tag,
        redelivered,
        exchange: '',
        routingKey: 'q',
        ...(options.consumerTag === undefined ? {} : { consumerTag: options.consumerTag }),
      },
      settler,
    );
  return { calls, delivery };
}

/** One publish a fake channel recorded: exchange, routing key, body as text, properties. */
export type PublishCall = [
  exchange: string,
  routingKey: string,
  body: string,
  properties: BasicProperties | undefined,
];

/**
 * A fake channel for the operators that publish: `publish` records its calls and returns `reply()`;
 * `settler` records the settle calls of the deliveries built with it.
 */
export function fakePublisher(reply: () => Observable<unknown>) {
  const published: PublishCall[] = [];
  const settled: SettleCall[] = [];
  const channel = {
    publish: (
      exchange: string,
      routingKey: string,
      body: Uint8Array | string,
      properties?: BasicProperties,
    ) => {
      published.push([exchange, routingKey, Buffer.from(body).toString('utf8'), properties]);
      return reply().pipe(map((): PublishOutcome => ({ status: 'sent' })));
    },
  };
  const settler: Settler = {
    settle: (kind, tag, multiple, requeue) => {
      settled.push([kind, tag, multiple, requeue]);
      return true;
    },
  };
  return { channel, published, settled, settler };
}
