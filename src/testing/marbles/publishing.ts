/**
 * The publishing side of a fake channel: publishes wait while it is blocked, are written in order,
 * and are answered by the channel's reply script; what was written and answered is recorded.
 *
 * @module
 */
import { isObservable, type Observable, Observable as RxObservable, type Subscription } from 'rxjs';
import type { PublishCallback, PublishHandle } from '../../client/interfaces.js';
import type { Confirmation, PublishOutcome, ReturnedMessage } from '../../client/types.js';
import type { Clock } from './context.js';
import type { PublishedMessage } from './message.js';
import { Timeline } from './timeline.js';
import type { ChannelEvent, FakeChannelOptions } from './types.js';

/** A publish on its way. */
interface Publish {
  readonly message: PublishedMessage;
  readonly context: unknown;
  readonly done: PublishCallback<unknown>;
  state: 'waiting' | 'written' | 'settled' | 'cancelled';
  seq: number;
  subscription: Subscription | undefined;
}

const SENT: PublishOutcome = { status: 'sent' };

/** @internal The publishes of one fake channel. */
export class Publishes {
  readonly published: Timeline<PublishedMessage>;
  readonly confirms: Timeline<Confirmation>;
  readonly returns: Timeline<ReturnedMessage>;
  blocked: boolean;
  confirming: boolean;
  private readonly waiting: Publish[] = [];
  private readonly inFlight = new Set<Publish>();
  private readonly attempts = new Map<string, number>();
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
    return this.waiting.length;
  }

  get cancelled(): number {
    return this.cancelledCount;
  }

  /** Writes the message now, or holds it (while blocked, or behind others) and returns its handle. */
  submit(
    message: PublishedMessage,
    context: unknown,
    done: PublishCallback<unknown>,
  ): PublishHandle | undefined {
    const publish: Publish = { message, context, done, state: 'waiting', seq: 0, subscription: undefined };
    if (!this.blocked && this.waiting.length === 0) {
      this.write(publish);
      return undefined;
    }
    this.waiting.push(publish);
    return {
      cancel: () => {
        if (publish.state !== 'waiting') return false;
        publish.state = 'cancelled';
        this.waiting.splice(this.waiting.indexOf(publish), 1);
        this.cancelledCount++;
        return true;
      },
    };
  }

  unblock(): void {
    this.blocked = false;
    while (!this.blocked && this.waiting.length > 0) this.write(this.waiting.shift()!);
  }

  /** The channel closed: what waits or awaits its answer fails with `failure`. */
  fail(failure: Error): void {
    for (const publish of this.waiting.splice(0)) {
      publish.state = 'settled';
      publish.done(publish.context, undefined, failure);
    }
    for (const publish of [...this.inFlight]) this.finish(publish, undefined, failure);
  }

  private write(publish: Publish): void {
    publish.state = 'written';
    const { message } = publish;
    this.published.push(message);
    this.log({ time: this.clock.now(), type: 'published', message });
    this.route(message);
    if (!this.confirming) {
      publish.state = 'settled';
      publish.done(publish.context, SENT);
      return;
    }
    const seq = ++this.seq;
    publish.seq = seq;
    const key = `${message.exchange}\u0000${message.routingKey}\u0000${message.text}`;
    const attempt = (this.attempts.get(key) ?? 0) + 1;
    this.attempts.set(key, attempt);
    this.inFlight.add(publish);
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight.size);
    const script = this.options.reply;
    const reply = typeof script === 'function' ? script(message, { seq, attempt }) : script;
    const answer =
      reply === undefined
        ? this.ackLater(seq, this.options.confirmDelay ?? 0)
        : isObservable(reply)
          ? reply
          : this.replyMarble(reply, publish);
    let answered = false;
    const subscription = answer.subscribe({
      next: (outcome) => {
        answered = true;
        this.finish(publish, outcome);
      },
      error: (error: unknown) => this.finish(publish, undefined, toError(error)),
      complete: () => {
        if (!answered)
          this.finish(publish, undefined, new Error(`the reply to publish ${seq} ended without an outcome`));
      },
    });
    if (publish.state === 'written') publish.subscription = subscription;
    else subscription.unsubscribe();
  }

  /** The default reply, without a marble parser (so that it also works without a test scheduler). */
  private ackLater(seq: number, delay: number): Observable<PublishOutcome> {
    return new RxObservable<PublishOutcome>((subscriber) =>
      this.clock.later(() => {
        subscriber.next({ status: 'acked', seq });
        subscriber.complete();
      }, delay),
    );
  }

  private replyMarble(marbles: string, publish: Publish): Observable<PublishOutcome> {
    const { seq, message } = publish;
    const returned: ReturnedMessage = {
      replyCode: 312,
      replyText: 'NO_ROUTE',
      exchange: message.exchange,
      routingKey: message.routingKey,
      properties: message.properties ?? {},
      body: message.body,
    };
    const values: Record<string, PublishOutcome> = {
      a: { status: 'acked', seq },
      n: { status: 'nacked', seq },
      r: { status: 'returned', seq, returned },
      s: SENT,
    };
    const error =
      this.options.error ??
      new Error(`publish ${seq} to '${message.exchange}'/'${message.routingKey}' failed (scripted)`);
    return this.clock.cold(marbles, values, error);
  }

  private finish(publish: Publish, outcome: PublishOutcome | undefined, error?: Error): void {
    if (publish.state !== 'written') return;
    publish.state = 'settled';
    this.inFlight.delete(publish);
    publish.subscription?.unsubscribe();
    publish.subscription = undefined;
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
    if (outcome?.status === 'returned') this.returns.push(outcome.returned);
    publish.done(publish.context, outcome, error);
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
