import { Delivery } from '../../src/index.js';

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
