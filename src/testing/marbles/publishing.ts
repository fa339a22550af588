/**
 * The publishing side of a fake channel: publishes wait while it is blocked (or until the `w` of their
 * reply marble), are written, and are answered by the channel's reply script; what was written,
 * dropped and answered is recorded.
 *
 * @module
 */
import { isObservable, type Observable, Observable as RxObservable, type Subscription } from 'rxjs';
import type { PublishCallback, PublishHandle } from '../../client/interfaces.js';
import type { Confirmation, PublishOutcome, ReturnedMessage } from '../../client/types.js';
import type { Clock } from './context.js';
import { type PublishedMessage, returnedOutcome } from './message.js';
import { Timeline } from './timeline.js';
import type { ChannelEvent, FakeChannelOptions, Reply } from './types.js';

/** A publish on its way. */
interface Publish {
  readonly message: PublishedMessage;
  readonly context: unknown;
  readonly done: PublishCallback<unknown>;
  readonly reply: Reply | undefined;
  state: 'waiting' | 'written' | 'settled' | 'cancelled';
  seq: number;
  /** Answered, and held until every earlier publish is answered too (confirm mode, `inOrder`). */
  answer: { readonly outcome: PublishOutcome | undefined; readonly error: Error | undefined } | undefined;
  /** The reply being listened to (from the write; from the submission for a reply marble with `w`). */
  subscription: Subscription | undefined;
}

const SENT: PublishOutcome = { status: 'sent' };
/** The letters of a reply marble, read as themselves. */
const LETTERS: Record<string, string> = { w: 'w', a: 'a', n: 'n', r: 'r', s: 's' };

/** @internal The publishes of one fake channel. */
export class Publishes {
  readonly published: Timeline<PublishedMessage>;
  readonly confirms: Timeline<Confirmation>;
  readonly returns: Timeline<ReturnedMessage>;
  blocked: boolean;
  confirming: boolean;
  /** Waiting for the channel to be unblocked, in order. */
  private queued: (Publish | undefined)[] = [];
  /** The queue is `queued` from `queuedHead` on; cancelled ones stay in it, skipped (no search per cancel). */
  private queuedHead = 0;
  /** How many of `queued` still wait. */
  private queuedWaiting = 0;
  /** Waiting for the `w` of their reply marble. */
  private readonly held = new Set<Publish>();
  private readonly inFlight = new Set<Publish>();
  /** Written in confirm mode and not yet reported, in sequence order, from `head` (see `finish`). */
  private order: (Publish | undefined)[] = [];
  private head = 0;
  private draining = false;
  /** Set when the channel closed while a report ran: see `end`. */
  private ending: { readonly error: Error | undefined } | undefined;
  private readonly inOrder: boolean;
  private readonly attempts = new Map<string, number>();
  private count = 0;
  private seq = 0;
  private maxInFlight = 0;
  private cancelledCount = 0;

  constructor(
    private readonly clock: Clock,
    private readonly options: FakeChannelOptions,
    private readonly log: (event: ChannelEvent) => void,
    private readonly route: (message: PublishedMessage) => void,
  ) {
    this.blocked = options.blocked ?? false;
    this.confirming = options.confirm ?? true;
    this.inOrder = options.inOrder ?? true;
    this.published = new Timeline(clock);
    this.confirms = new Timeline(clock);
    this.returns = new Timeline(clock);
  }

  get unconfirmed(): number {
    return this.inFlight.size;
  }

  get maxUnconfirmed(): number {
    return this.maxInFlight;
  }

  get unwritten(): number {
    return this.queuedWaiting + this.held.size;
  }

  get cancelled(): number {
    return this.cancelledCount;
  }

  /** Writes the message now, or holds it (blocked, behind others, or until its `w`) and returns its handle. */
  submit(
    message: PublishedMessage,
    context: unknown,
    done: PublishCallback<unknown>,
  ): PublishHandle | undefined {
    const index = ++this.count;
    const script = this.options.reply;
    let reply: Reply | undefined;
    if (typeof script === 'function') {
      // Counted only for a script that can read it: the key holds the whole body.
      const key = `${message.exchange}\u0000${message.routingKey}\u0000${message.text}`;
      const attempt = (this.attempts.get(key) ?? 0) + 1;
      this.attempts.set(key, attempt);
      reply = script(message, { index, attempt });
    } else reply = script;
    const publish: Publish = {
      message,
      context,
      done,
      reply,
      state: 'waiting',
      seq: 0,
      answer: undefined,
      subscription: undefined,
    };
    if (typeof reply === 'string' && reply.includes('w')) {
      this.held.add(publish);
      publish.subscription = this.listen(publish, reply);
    } else if (!this.blocked && this.queuedWaiting === 0) {
      this.write(publish);
      return undefined;
    } else {
      this.queued.push(publish);
      this.queuedWaiting++;
    }
    return {
      cancel: () => {
        if (publish.state !== 'waiting') return false;
        publish.state = 'cancelled';
        publish.subscription?.unsubscribe();
        if (!this.held.delete(publish)) this.queuedWaiting--;
        this.cancelledCount++;
        this.log({ time: this.clock.now(), type: 'cancelled', message });
        return true;
      },
    };
  }

  unblock(): void {
    this.blocked = false;
    // An index rather than shift(), which copies a large array each time: releasing a long queue was quadratic.
    while (!this.blocked && this.queuedHead < this.queued.length) {
      const publish = this.queued[this.queuedHead];
      this.queued[this.queuedHead++] = undefined;
      if (publish?.state !== 'waiting') continue;
      this.queuedWaiting--;
      this.write(publish);
    }
    if (this.queuedHead === this.queued.length) this.takeQueued();
  }

  /** Empties the queue, giving what still waits in it, in order. */
  private takeQueued(): Publish[] {
    const waiting = this.queued
      .slice(this.queuedHead)
      .filter((p): p is Publish => p !== undefined && p.state === 'waiting');
    this.queued = [];
    this.queuedHead = 0;
    this.queuedWaiting = 0;
    return waiting;
  }

  /** The channel closed: what waits or awaits its answer fails with `failure`. */
  fail(failure: Error): void {
    for (const publish of [...this.takeQueued(), ...this.held]) {
      publish.state = 'settled';
      publish.subscription?.unsubscribe();
      publish.done(publish.context, undefined, failure);
    }
    this.held.clear();
    for (const publish of [...this.inFlight]) this.finish(publish, undefined, failure);
  }

  private write(publish: Publish): void {
    publish.state = 'written';
    this.held.delete(publish);
    const { message } = publish;
    this.published.push(message);
    this.log({ time: this.clock.now(), type: 'published', message });
    this.route(message);
    if (!this.confirming) {
      publish.state = 'settled';
      publish.subscription?.unsubscribe();
      publish.done(publish.context, SENT);
      return;
    }
    publish.seq = ++this.seq;
    this.inFlight.add(publish);
    if (this.inOrder) this.order.push(publish);
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight.size);
    if (publish.subscription !== undefined) return; // a reply marble with `w` goes on answering
    const { reply } = publish;
    if (reply === undefined || isObservable(reply)) {
      const answer = reply ?? this.ackLater(publish, this.options.confirmDelay ?? 0);
      let answered = false;
      const subscription = answer.subscribe({
        next: (outcome) => {
          answered = true;
          this.finish(publish, outcome);
        },
        error: (error: unknown) => this.finish(publish, undefined, toError(error)),
        complete: () => {
          if (!answered)
            this.finish(
              publish,
              undefined,
              new Error(`the reply to publish ${publish.seq} ended without an outcome`),
            );
        },
      });
      if (publish.state === 'written') publish.subscription = subscription;
      else subscription.unsubscribe();
    } else {
      const subscription = this.listen(publish, reply);
      if (publish.state === 'written') publish.subscription = subscription;
      else subscription.unsubscribe();
    }
  }

  /** Follows a reply marble: `w` writes the message, the first outcome letter answers it. */
  private listen(publish: Publish, marbles: string): Subscription {
    const { message } = publish;
    const error =
      this.options.error ??
      new Error(`publish to '${message.exchange}'/'${message.routingKey}' failed (scripted)`);
    return this.clock.cold<string>(marbles, LETTERS, error).subscribe({
      next: (letter) => {
        if (publish.state === 'waiting') this.write(publish);
        if (letter === 'w' || publish.state !== 'written') return;
        if (letter === undefined) {
          this.finish(
            publish,
            undefined,
            new Error(`reply marble '${marbles}': only w, a, n, r, s and # are understood`),
          );
        } else this.finish(publish, this.outcomeOf(letter, publish));
      },
      error: (e: unknown) => {
        if (publish.state === 'waiting') {
          // Failed before it was written.
          publish.state = 'settled';
          this.held.delete(publish);
          publish.done(publish.context, undefined, toError(e));
        } else this.finish(publish, undefined, toError(e));
      },
      complete: () => {
        if (publish.state === 'written')
          this.finish(publish, undefined, new Error(`the reply '${marbles}' ended without an outcome`));
      },
    });
  }

  private outcomeOf(letter: string, publish: Publish): PublishOutcome {
    const { seq, message } = publish;
    if (letter === 'a' || letter === 'n') return { status: letter === 'a' ? 'acked' : 'nacked', seq };
    if (letter === 's') return SENT;
    // RabbitMQ returns only a mandatory message: an unroutable one without the flag is dropped, and acked.
    if (!message.mandatory) return { status: 'acked', seq };
    return returnedOutcome(seq, message);
  }

  /** The default reply, without a marble parser (so that it also works without a test scheduler). */
  private ackLater(publish: Publish, delay: number): Observable<PublishOutcome> {
    return new RxObservable<PublishOutcome>((subscriber) =>
      this.clock.later(() => {
        subscriber.next({ status: 'acked', seq: publish.seq });
        subscriber.complete();
      }, delay),
    );
  }

  /**
   * A publish has its answer. As on a real channel (whose confirms are smoothed into sequence order),
   * it is reported once every publish written before it has been: a publish answered early waits.
   * A return is seen on `returns$` when it comes, as a basic.return is.
   */
  private finish(publish: Publish, outcome: PublishOutcome | undefined, error?: Error): void {
    if (publish.state !== 'written') return;
    publish.state = 'settled';
    publish.subscription?.unsubscribe();
    publish.subscription = undefined;
    if (outcome?.status === 'returned') this.returns.push(outcome.returned);
    publish.answer = { outcome, error };
    if (!this.inOrder) {
      this.report(publish);
      return;
    }
    // Reported from here; a report that answers another publish (synchronously) adds to this loop.
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.head < this.order.length) {
        const next = this.order[this.head];
        if (next !== undefined && next.answer === undefined) break;
        this.order[this.head++] = undefined;
        if (next !== undefined) this.report(next);
      }
      if (this.head >= 1024 && this.head * 2 >= this.order.length) {
        this.order = this.order.slice(this.head);
        this.head = 0;
      }
    } finally {
      this.draining = false;
    }
    // The channel closed from inside a report: the streams end after the outcomes still to report.
    if (this.ending !== undefined) this.end(this.ending.error);
  }

  /**
   * The channel closed (after `fail`): `published$`, `confirms$` and `returns$` end, with `error`
   * if there is one; when a report is running (its `done` closed the channel), once it is over.
   */
  end(error: Error | undefined): void {
    if (this.draining) {
      this.ending = { error };
      return;
    }
    this.ending = undefined;
    for (const line of [this.published, this.confirms, this.returns]) {
      if (error === undefined) line.complete();
      else line.error(error);
    }
  }

  private report(publish: Publish): void {
    const { outcome, error } = publish.answer!;
    this.inFlight.delete(publish);
    const confirmation: Confirmation | undefined =
      outcome === undefined
        ? { status: 'failed', seq: publish.seq, error: error ?? new Error('publish failed') }
        : outcome.status === 'sent'
          ? undefined
          : outcome;
    if (confirmation !== undefined) {
      this.confirms.push(confirmation);
      this.log({ time: this.clock.now(), type: 'confirmed', confirmation });
    }
    publish.done(publish.context, outcome, error);
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
