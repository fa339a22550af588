/**
 * @internal The deliveries of one channel that an instrumentation follows: each gets its probe when
 * it arrives, and the probe hears of its settlement (one by one, or by a `multiple` settlement of the
 * channel), of its auto-acknowledgement (`noAck`), or of its loss with the channel. Made only when the
 * connection's `telemetry` follows deliveries.
 *
 * @module
 */
import type { DeliveryEnd, DeliveryProbe, Peer } from '../telemetry/instrumentation.js';
import { reportOnce } from '../telemetry/instrumentation.js';
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
    delivery.probe = probe;
    if (!noAck) this.open.set(delivery.fields.deliveryTag, probe);
    runProbe(probe, () => hand(delivery));
    if (noAck) endProbe(probe, 'auto', false);
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

  /** The channel ended: every delivery still unsettled is lost (the broker delivers it again). */
  lost(error: Error): void {
    const probes = [...this.open.values()];
    this.open.clear();
    for (const probe of probes) endProbe(probe, 'lost', false, error);
  }
}

/** Runs `fn` in a probe's context; a probe that fails without calling it does not keep `fn` from running. */
export function runProbe<T>(probe: DeliveryProbe, fn: () => T): T {
  /** 0: `fn` not called yet; 1: `fn` running (or threw); 2: `fn` returned `result`. */
  let stage = 0;
  let result: T | undefined;
  try {
    return probe.run(() => {
      stage = 1;
      result = fn();
      stage = 2;
      return result;
    });
  } catch (error) {
    if (stage === 1) throw error;
    reportOnce(probe.run, error);
    return stage === 2 ? (result as T) : fn();
  }
}

/** Ends a probe, keeping its failure from the client. */
export function endProbe(probe: DeliveryProbe, how: DeliveryEnd, requeue: boolean, error?: Error): void {
  try {
    probe.end(how, requeue, error);
  } catch (e) {
    reportOnce(probe.end, e);
  }
}
