/**
 * The publish path of a channel: `publishWith`, the callback path under `publish()` and the
 * windowed operators, and `publishObservable`, the Observable over any publish target. A publish is
 * written at once when nothing stands in the way (the fast path), or waits for the socket to drain,
 * for the broker to unblock the connection and for the operations queued before it on the channel.
 *
 * @module
 */
import { Observable, type Subscriber } from 'rxjs';
import type { ChannelCore } from '../core/channel-core.js';
import { DrainingError, PublishBlockedError } from '../errors.js';
import { utf8Encode } from '../protocol/bytes.js';
import type { BasicProperties } from '../protocol/generated.js';
import { ambientContext, type Peer, reportOnce } from '../telemetry/instrumentation.js';
import type { Reporter } from '../telemetry/reporter.js';
import { microtask } from '../util/runtime.js';
import type { ConfirmSource } from './confirms.js';
import type { PublishCallback, PublishHandle, PublishTarget } from './interfaces.js';
import type { PublishOptions, PublishOutcome } from './types.js';

const SENT: PublishOutcome = Object.freeze({ status: 'sent' });

/** @internal The publishes of one channel. */
export class PublishPath {
  constructor(
    private readonly core: ChannelCore,
    private readonly confirms: ConfirmSource,
    /** The connection's reporter when its telemetry follows publishes, else undefined. */
    private readonly reporter: Reporter | undefined,
    private readonly peer: Peer,
  ) {}

  /** See `Channel.publishWith`. */
  publishWith<C>(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties | undefined,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ): PublishHandle | undefined {
    if (this.reporter !== undefined) {
      return this.publishTraced(
        this.reporter,
        exchange,
        routingKey,
        body,
        properties,
        mandatory,
        context,
        done,
      );
    }
    return this.publishNow(exchange, routingKey, body, properties, mandatory, context, done);
  }

  /** A publish the connection's telemetry follows: its probe may change the properties, and hears the end. */
  private publishTraced<C>(
    reporter: Reporter,
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties | undefined,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ): PublishHandle | undefined {
    const probe = reporter.publish({
      exchange,
      routingKey,
      properties,
      bodySize: body.length,
      mandatory,
      confirmed: this.confirms.tracker?.confirmMode === true,
      peer: this.peer,
    });
    if (probe === undefined) {
      return this.publishNow(exchange, routingKey, body, properties, mandatory, context, done);
    }
    const ambient = ambientContext();
    const caller = ambient?.capture();
    let ended = false;
    const end = (outcome: PublishOutcome | undefined, error: Error | undefined): void => {
      if (ended) return;
      ended = true;
      try {
        probe.end(outcome, error);
      } catch (e) {
        reportOnce(probe.end, e);
      }
    };
    const handle = this.publishNow(
      exchange,
      routingKey,
      body,
      probe.properties ?? properties,
      mandatory,
      context,
      ambient === undefined
        ? (c: C, outcome, error) => {
            end(outcome, error);
            done(c, outcome, error);
          }
        : (c: C, outcome, error) => {
            end(outcome, error);
            // The outcome comes from a socket callback: what it starts (the next publish of a
            // concatMap, say) goes on in the context the publish was made in.
            ambient.run(caller, () => done(c, outcome, error));
          },
    );
    if (handle === undefined) return undefined;
    return {
      cancel: () => {
        const dropped = handle.cancel();
        if (dropped)
          end(undefined, new Error('the publish was dropped before it was written (unsubscribed)'));
        return dropped;
      },
    };
  }

  /** A publish: written now when nothing stands in the way, else when it can be. */
  private publishNow<C>(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties | undefined,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ): PublishHandle | undefined {
    const core = this.core;
    if (core.canPublishNow) {
      // The fast path: nothing to wait for.
      this.write(exchange, routingKey, body, properties, mandatory, context, done);
      return undefined;
    }
    if (core.publishesRefused) {
      // Off the fast path: `canPublishNow` is false while a drain refuses publishes.
      done(context, undefined, new DrainingError('publish while the connection drains'));
      return undefined;
    }
    let cancelled = false;
    /** Written, or `done` called: past the point where cancelling drops the message. */
    let gone = false;
    /** Counted in the channel's `publishesWaiting` (until released or cancelled). */
    let waiting = true;
    core.publishesWaiting++;
    let handle: { cancel(): void } | undefined;
    const dropWait = core.whenPublishable((error) => {
      if (waiting) {
        waiting = false;
        core.publishesWaiting--;
      }
      if (cancelled) return;
      if (error instanceof PublishBlockedError) {
        gone = true;
        done(context, undefined, error);
        return;
      }
      if (error !== undefined || core.isClosed) {
        gone = true;
        done(context, undefined, core.laterUseError('publish'));
        return;
      }
      // Kept behind synchronous methods subscribed earlier on this channel, so that a publish never
      // overtakes the declaration it depends on.
      handle = core.ordered(
        () => {
          gone = true;
          this.write(exchange, routingKey, body, properties, mandatory, context, done);
        },
        (e) => {
          gone = true;
          done(context, undefined, e);
        },
      );
    });
    return {
      // True when the message was dropped unwritten (then `done` is never called).
      cancel: () => {
        if (cancelled) return false;
        cancelled = true;
        if (waiting) {
          waiting = false;
          core.publishesWaiting--;
        }
        dropWait?.();
        handle?.cancel();
        return !gone;
      },
    };
  }

  /** Writes a publish now; the outcome goes to `done`. */
  private write<C>(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties | undefined,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ): void {
    try {
      this.core.publish(exchange, routingKey, body, properties, mandatory);
    } catch (e) {
      done(context, undefined, e as Error);
      return;
    }
    // Confirm mode: the outcome comes with the broker's answer for this sequence number.
    if (this.confirms.tracker?.track(exchange, routingKey, mandatory, context, done) === true) return;
    // Without confirms the message is sent once the connection has taken its frames, in order: they
    // go to the socket at the end of this turn, or now if a burst has filled a write. Completing here
    // rather than after the socket write lets a pipeline of publishes run without a callback, a
    // subscription or a socket write per message (a mergeMap's inner publish completes at once).
    done(context, SENT);
  }
}

/**
 * @internal `publish()` over any `publishWith` (a channel's, a publisher's): an Observable of the
 * outcome, whose unsubscribe drops the message if it has not been written yet.
 */
export function publishObservable(
  target: Required<Pick<PublishTarget, 'publishWith'>>,
  exchange: string,
  routingKey: string,
  body: Uint8Array | string,
  properties: BasicProperties | undefined,
  options: PublishOptions,
): Observable<PublishOutcome> {
  return new Observable<PublishOutcome>((subscriber) => {
    // A publish without confirms completes inside this function when it is written at once. An
    // operator that subscribes the next publish from the completion of the previous one (mergeMap or
    // concatMap draining its buffer after the socket was full) would then nest one call per message:
    // past MAX_NESTED publishes deep, the outcome is handed over in a microtask instead, which
    // unwinds the stack.
    const settle = nested < MAX_NESTED ? settlePublish : settlePublishLater;
    nested++;
    let handle: PublishHandle | undefined;
    try {
      handle = target.publishWith(
        exchange,
        routingKey,
        typeof body === 'string' ? utf8Encode(body) : body,
        properties,
        options.mandatory ?? false,
        subscriber,
        settle,
      );
    } finally {
      nested--;
    }
    return handle === undefined ? undefined : () => handle.cancel();
  });
}

/** Publishes being subscribed, one inside the completion of another (see `publishObservable`). */
let nested = 0;
const MAX_NESTED = 32;

/** `settlePublish` one microtask later. */
function settlePublishLater(
  subscriber: Subscriber<PublishOutcome>,
  outcome: PublishOutcome | undefined,
  error?: Error,
): void {
  microtask(() => settlePublish(subscriber, outcome, error));
}

/** How `publish()` hands a publish's end to its subscriber. */
function settlePublish(
  subscriber: Subscriber<PublishOutcome>,
  outcome: PublishOutcome | undefined,
  error?: Error,
): void {
  if (outcome === undefined) subscriber.error(error);
  else {
    subscriber.next(outcome);
    subscriber.complete();
  }
}
