/**
 * @internal The deliveries of one channel that an instrumentation follows: each gets its probe when
 * it arrives, and the probe hears of its settlement (one by one, or by a `multiple` settlement of the
 * channel), of its auto-acknowledgement (`noAck`), or of its loss (the channel ended, the broker took
 * it back). Made only when the connection's `telemetry` follows deliveries.
 *
 * @module
 */
import {
  attachProbe,
  type DeliveryProbe,
  endProbe,
  type Peer,
  runProbe,
} from '../telemetry/instrumentation.js';
import type { Reporter } from '../telemetry/reporter.js';
import type { Delivery } from './delivery.js';

/** @internal */
export class DeliveryTraces {
  /** Probes of unsettled deliveries by delivery tag, in tag order (tags only grow on a channel). */
  private readonly open = new Map<number, DeliveryProbe>();

  constructor(
    private readonly reporter: Reporter,
    private readonly peer: Peer,
  ) {}

  /**
   * Gives a delivery its probe (if the instrumentation returns one) and hands it over with `hand`,
   * inside the probe's context; a `noAck` delivery's probe ends once it has been handed over.
   */
  deliver(
    delivery: Delivery,
    queue: string,
    noAck: boolean,
    pulled: boolean,
    hand: (d: Delivery) => void,
  ): void {
    const probe = this.reporter.deliver({
      queue,
      fields: delivery.fields,
      properties: delivery.properties,
      bodySize: delivery.body.length,
      noAck,
      pulled,
      peer: this.peer,
    });
    if (probe === undefined) {
      hand(delivery);
      return;
    }
    attachProbe(delivery, probe);
    if (!noAck) {
      this.open.set(delivery.fields.deliveryTag, probe);
      runProbe(probe, () => hand(delivery));
      return;
    }
    try {
      runProbe(probe, () => hand(delivery));
    } finally {
      endProbe(probe, 'auto', false);
    }
  }

  /** A settlement made on the channel (see `ChannelCore.settle`). */
  settled(kind: 'ack' | 'nack' | 'reject', deliveryTag: number, multiple: boolean, requeue: boolean): void {
    const open = this.open;
    if (!multiple) {
      const probe = open.get(deliveryTag);
      if (probe === undefined) return;
      open.delete(deliveryTag);
      endProbe(probe, kind, requeue);
      return;
    }
    for (const [tag, probe] of open) {
      if (tag > deliveryTag) break;
      open.delete(tag);
      endProbe(probe, kind, requeue);
    }
  }

  /**
   * The broker took deliveries back while the channel stays open (a consumer timeout from
   * `fromTag` on, or all of them with basic.recover): they are lost, and come again.
   */
  forget(fromTag: number, error: Error): void {
    for (const [tag, probe] of [...this.open]) {
      if (tag < fromTag) continue;
      this.open.delete(tag);
      endProbe(probe, 'lost', false, error);
    }
  }

  /** The channel ended: every delivery still unsettled is lost (the broker delivers it again). */
  lost(error: Error): void {
    this.forget(0, error);
  }
}
