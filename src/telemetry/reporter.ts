/**
 * @internal What one connection lifetime tells its observers: the `telemetry` instrumentation given
 * to it, and `diagnostics$` (with Node's diagnostics channels). Made by the connection Observable for
 * each lifetime and reached by its connections and channels through their options.
 *
 * @module
 */
import {
  type DiagnosticEvent,
  type DiagnosticSource,
  diagnosticsObserved,
  emitDiagnostic,
} from './diagnostics.js';
import {
  type DeliveryProbe,
  type DeliveryStart,
  guarded,
  type Instrumentation,
  isDeliveryProbe,
  isPublishProbe,
  type PublishProbe,
  type PublishStart,
  reportOnce,
} from './instrumentation.js';

/** An event without what the reporter adds (`connection`, `time`). */
export type EventBody = DiagnosticEvent extends infer E
  ? E extends DiagnosticEvent
    ? Omit<E, keyof DiagnosticSource>
    : never
  : never;

/** @internal */
export class Reporter {
  /** True when publishes are followed: the publish path asks for a probe. */
  readonly publishes: boolean;
  /** True when deliveries are followed: consumers ask for a probe. */
  readonly deliveries: boolean;

  constructor(
    /** See `DiagnosticSource.connection`. */
    readonly connection: string,
    /** See `DiagnosticSource.lifetime`. */
    readonly lifetime: number,
    readonly instrumentation: Instrumentation | undefined,
  ) {
    this.publishes = instrumentation?.publish !== undefined;
    this.deliveries = instrumentation?.deliver !== undefined;
  }

  /** True when an event would reach someone: callers skip building it otherwise. */
  get listening(): boolean {
    return this.instrumentation?.event !== undefined || diagnosticsObserved();
  }

  /** Tells a lifecycle event to the instrumentation and to `diagnostics$`. */
  emit(body: EventBody): void {
    if (!this.listening) return;
    const event = {
      ...body,
      connection: this.connection,
      lifetime: this.lifetime,
      time: Date.now(),
    } as DiagnosticEvent;
    const instrumentation = this.instrumentation;
    if (instrumentation !== undefined) guarded(instrumentation, instrumentation.event, event);
    emitDiagnostic(event);
  }

  /** A probe for a publish, or undefined (not followed, the instrumentation failed, or gave no probe). */
  publish(start: PublishStart): PublishProbe | undefined {
    const instrumentation = this.instrumentation!;
    const probe = guarded(instrumentation, instrumentation.publish, start);
    if (probe === undefined || probe === null) return undefined;
    if (isPublishProbe(probe)) return probe;
    reportOnce(instrumentation.publish, new TypeError('publish() returned a probe without an end() method'));
    return undefined;
  }

  /** A probe for a delivery, or undefined. */
  deliver(start: DeliveryStart): DeliveryProbe | undefined {
    const instrumentation = this.instrumentation!;
    const probe = guarded(instrumentation, instrumentation.deliver, start);
    if (probe === undefined || probe === null) return undefined;
    if (isDeliveryProbe(probe)) return probe;
    reportOnce(
      instrumentation.deliver,
      new TypeError('deliver() returned a probe without run() and end() methods'),
    );
    return undefined;
  }
}

/** @internal The reporter of connections made without one (tests that build cores directly). */
export const SILENT = new Reporter('rxamqp', 0, undefined);
