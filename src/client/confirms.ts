/**
 * Publisher confirms and returns of one channel: numbers the publishes once `confirm.select` is on
 * its way, hands each publish the broker's answer in sequence order (smoothed from out-of-order and
 * `multiple` confirms), matches basic.return to the publish it answers, and feeds `confirms$` and
 * `returns$`.
 *
 * @module
 */
import type { Observable } from 'rxjs';
import { ConfirmSmoother, type ConfirmStatus } from '../core/confirm-smoother.js';
import { ConfirmTagError } from '../errors.js';
import type { MethodOf } from '../protocol/generated.js';
import type { PublishCallback } from './interfaces.js';
import { LazySubject } from './lazy-subject.js';
import type { Confirmation, PublishOutcome, ReturnedMessage } from './types.js';

/** A publish waiting for its confirm. */
interface AwaitingConfirm {
  readonly done: PublishCallback<unknown>;
  readonly context: unknown;
  readonly exchange: string;
  readonly routingKey: string;
  readonly mandatory: boolean;
  returned: ReturnedMessage | undefined;
}

/** @internal What the tracker needs of its channel. */
export interface ConfirmHost {
  /** The error for publishes that fail because the channel ended. */
  failure(): Error;
  /** The broker sent a confirm the protocol does not allow: the connection closes (503). */
  protocolError(message: string): void;
  readonly id: number;
}

/** @internal Where the publish path finds a channel's confirm tracker, if it has one yet. */
export interface ConfirmSource {
  readonly tracker: ConfirmTracker | undefined;
}

/** The empty array of a tracker not in confirm mode (never written: confirm mode makes its own). */
const NONE: never[] = [];

/** @internal */
export class ConfirmTracker {
  // The streams, made when first asked for (an idle channel keeps neither); `*Done` remembers that a
  // stream ended before anyone asked, so that it is made completed.
  private returnsSubject: LazySubject<ReturnedMessage> | undefined;
  private confirmsSubject: LazySubject<Confirmation> | undefined;
  private returnsDone = false;
  private confirmsDone = false;
  /** Set once confirm.select has been sent: numbers the publishes and orders the broker's answers. */
  private smoother: ConfirmSmoother | undefined;
  /** Publishes waiting for their confirm, in sequence order (settled in that order), from `head`. */
  private awaiting: (AwaitingConfirm | undefined)[] = NONE;
  private head = 0;
  /** Why the outstanding publishes failed (set when the channel ends). */
  private failure: Error | undefined;
  /** Returns received in confirm mode, waiting for the confirm of their publish. */
  private pendingReturns: ReturnedMessage[] = NONE;

  get confirms$(): Observable<Confirmation> {
    if (this.confirmsSubject === undefined) {
      this.confirmsSubject = new LazySubject();
      if (this.confirmsDone) this.confirmsSubject.complete();
    }
    return this.confirmsSubject.asObservable();
  }

  get returns$(): Observable<ReturnedMessage> {
    if (this.returnsSubject === undefined) {
      this.returnsSubject = new LazySubject();
      if (this.returnsDone) this.returnsSubject.complete();
    }
    return this.returnsSubject.asObservable();
  }

  constructor(private readonly host: ConfirmHost) {}

  /** Publishes written and not yet answered by the broker (a drain waits for them). */
  get unconfirmed(): number {
    return this.smoother?.outstanding ?? 0;
  }

  /** True once confirm.select has been sent on the channel. */
  get confirmMode(): boolean {
    return this.smoother !== undefined;
  }

  /** confirm.select is on its way: the publishes written from now on are numbered. */
  start(): void {
    if (this.smoother !== undefined) return;
    this.awaiting = [];
    this.pendingReturns = [];
    this.smoother = new ConfirmSmoother((seq, status) => this.settled(seq, status));
  }

  /**
   * A publish was just written. In confirm mode it waits for the broker's answer, which goes to
   * `done`, and true is returned; otherwise false (the caller reports `sent` after the flush).
   */
  track<C>(
    exchange: string,
    routingKey: string,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ): boolean {
    const smoother = this.smoother;
    if (smoother === undefined) return false;
    this.awaiting.push({
      done: done as PublishCallback<unknown>,
      context,
      exchange,
      routingKey,
      mandatory,
      returned: undefined,
    });
    smoother.publish();
    return true;
  }

  /** A basic.return from the broker. */
  returned(message: ReturnedMessage): void {
    // In confirm mode RabbitMQ sends the return just before the confirm of the same publish: it is
    // matched when that confirm arrives (see confirmed).
    if (this.smoother !== undefined) this.pendingReturns.push(message);
    this.returnsSubject?.next(message);
  }

  /** A basic.ack or basic.nack from the broker (a publisher confirm). */
  confirmed(method: MethodOf<'basic.ack'> | MethodOf<'basic.nack'>): void {
    const smoother = this.smoother;
    try {
      if (smoother === undefined) {
        this.host.protocolError(
          `${method.name} for delivery tag ${method.deliveryTag} on channel ${this.host.id}, which is not in confirm mode`,
        );
        return;
      }
      if (this.pendingReturns.length > 0 && method.deliveryTag <= smoother.lastPublished) {
        this.matchReturns(smoother, method.deliveryTag, method.multiple);
      }
      if (method.name === 'basic.ack') smoother.ack(method.deliveryTag, method.multiple);
      else smoother.nack(method.deliveryTag, method.multiple);
    } catch (e) {
      if (!(e instanceof ConfirmTagError)) throw e;
      this.host.protocolError(e.message);
    }
  }

  /** The channel ended: every publish still waiting fails, in order; the streams complete. */
  end(error: Error | undefined): void {
    if (this.smoother !== undefined) {
      // When this runs from inside a confirm being reported (a subscriber closing the connection),
      // the smoother reports the failures once that one returns: confirms$ completes after the last.
      this.failure = error ?? this.host.failure();
      this.smoother.fail();
    }
    if (this.smoother === undefined || this.smoother.outstanding === 0) this.completeConfirms();
    this.returnsDone = true;
    this.returnsSubject?.complete();
  }

  /**
   * Attaches the returns received since the last confirm to the publishes this confirm answers: for
   * each, the oldest publish the confirm covers that was mandatory, went to the return's exchange and
   * routing key, and has no return yet. A routed publish still waiting for its confirm is never taken.
   */
  private matchReturns(smoother: ConfirmSmoother, deliveryTag: number, multiple: boolean): void {
    const returns = this.pendingReturns;
    this.pendingReturns = [];
    const first = smoother.firstOutstanding;
    const from = multiple ? first : deliveryTag;
    for (const message of returns) {
      for (let seq = from; seq <= deliveryTag; seq++) {
        const entry = this.awaiting[this.head + seq - first];
        if (
          entry?.mandatory === true &&
          entry.returned === undefined &&
          entry.exchange === message.exchange &&
          entry.routingKey === message.routingKey &&
          smoother.isUnconfirmed(seq)
        ) {
          entry.returned = message;
          break;
        }
      }
    }
  }

  /** The smoother settles publishes in sequence order: the oldest awaiting one is this one. */
  private completeConfirms(): void {
    this.confirmsDone = true;
    this.confirmsSubject?.complete();
  }

  private settled(seq: number, status: ConfirmStatus): void {
    const entry = this.awaiting[this.head];
    this.awaiting[this.head] = undefined;
    this.head++;
    if (this.head >= 1024 && this.head * 2 >= this.awaiting.length) {
      this.awaiting = this.awaiting.slice(this.head);
      this.head = 0;
    }
    if (status === 'fail') {
      const error = this.failure ?? this.host.failure();
      entry?.done(entry.context, undefined, error);
      this.confirmsSubject?.next({ status: 'failed', seq, error });
      if (this.smoother?.outstanding === 0) this.completeConfirms();
      return;
    }
    const returned = entry?.returned;
    const outcome: Exclude<PublishOutcome, { readonly status: 'sent' }> =
      returned !== undefined
        ? { status: 'returned', seq, returned }
        : { status: status === 'ack' ? 'acked' : 'nacked', seq };
    entry?.done(entry.context, outcome);
    if (this.confirmsSubject?.observed === true) this.confirmsSubject.next(outcome);
  }
}
