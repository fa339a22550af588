/**
 * Publisher confirms waiting to be written: collected while the broker handles a batch of input, then
 * written together at the flush, in sequence order, a run of two or more with the same outcome as one
 * `multiple` ack or nack and a lone one with `multiple` false (what RabbitMQ 3.10 was seen to send).
 *
 * @module
 * @internal
 */
import type { MethodInit } from '../../protocol/generated.js';

/** @internal */
export class ConfirmBuffer {
  /** Sequence numbers, negative for nacks. */
  private pending: number[] = [];

  ack(seq: number): void {
    this.pending.push(seq);
  }

  nack(seq: number): void {
    this.pending.push(-seq);
  }

  clear(): void {
    this.pending = [];
  }

  /** Writes what is pending with `write` and forgets it. */
  flush(write: (method: MethodInit) => void): void {
    const c = this.pending;
    if (c.length === 0) return;
    this.pending = [];
    let i = 0;
    while (i < c.length) {
      const nack = c[i]! < 0;
      let j = i;
      while (j + 1 < c.length && c[j + 1]! < 0 === nack) j++;
      const tag = Math.abs(c[j]!);
      const multiple = j > i;
      if (nack) write({ name: 'basic.nack', deliveryTag: tag, multiple, requeue: false });
      else write({ name: 'basic.ack', deliveryTag: tag, multiple });
      i = j + 1;
    }
  }
}
