/**
 * `createPublisher`: publishing that outlives connections. A publisher follows a (recovering)
 * connection Observable, keeps one channel open on the current connection (in confirm mode by default),
 * holds messages in a bounded buffer while no connection is open, and optionally republishes the
 * messages whose confirms were lost with a connection once the next one opens.
 *
 * @module
 */
import { Observable, type Subscription } from 'rxjs';
import { ConfigurationError, causedByConnectionLoss, DrainingError, PublisherError } from '../errors.js';
import type { BasicProperties } from '../protocol/generated.js';
import { ambientContext } from '../telemetry/instrumentation.js';
import { MAX_TIMER_MS, type Timer, unrefTimer } from '../util/runtime.js';
import type { Channel } from './channel.js';
import type { Connection } from './connection.js';
import { drainTimeout, type PublisherDrainOptions, type PublisherDrainReport } from './drain.js';
import type { PublishCallback, PublishHandle, PublishTarget } from './interfaces.js';
import { publishObservable } from './publish.js';
import type { PublishOptions, PublishOutcome } from './types.js';

/** Options of {@link createPublisher}. */
export interface PublisherOptions {
  /** Put the publisher's channel in confirm mode, so every publish gets the broker's answer. Default true. */
  readonly confirm?: boolean;
  /**
   * What a publish does while no connection is open: `'buffer'` (default) holds it (at most
   * `maxBuffered` messages, each at most `bufferTimeout`), `'fail'` errors at once with a
   * `PublisherError` coded `DISCONNECTED`. Until the first connection opens, messages are held in
   * both modes.
   */
  readonly whileDisconnected?: 'buffer' | 'fail';
  /** Most messages held while disconnected; one more errors with `BUFFER_FULL`. Default 10000. */
  readonly maxBuffered?: number;
  /** Longest time, in milliseconds, a message is held while disconnected (`BUFFER_TIMEOUT`). Default 30000. */
  readonly bufferTimeout?: number;
  /**
   * When the connection is lost with publishes still awaiting their confirms: `false` (default) fails
   * them with the channel's `ChannelClosedError` (the broker may or may not have them); `true` publishes
   * them again on the next connection, so that each message is confirmed at least once. The broker
   * may then hold a message twice: consumers must tolerate duplicates.
   */
  readonly republish?: boolean;
}

/** One message the publisher has accepted and not yet reported. */
interface Item {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Uint8Array;
  readonly properties: BasicProperties | undefined;
  readonly mandatory: boolean;
  readonly context: unknown;
  readonly done: PublishCallback<unknown>;
  /** Held: the buffer timer. */
  timer: Timer | undefined;
  /** Handed to a channel: its handle (drops it if not yet written). */
  handle: { cancel(): boolean } | undefined;
  /** Times it was handed to a channel. */
  attempts: number;
  cancelled: boolean;
  /**
   * The trace context active when it was published (see `AmbientContext`), when a tracing
   * instrumentation is loaded: a message sent later (held while disconnected, republished after a
   * loss) is published in it, so its trace goes on across the reconnect.
   */
  readonly ambient: unknown;
}

/**
 * Publishes through whatever connection is open: see {@link createPublisher}. `publish()` works like
 * `Channel.publish()` (an Observable of the outcome), and a publisher can be given to the
 * `publishConfirmed` operator in place of a channel.
 */
export class Publisher implements PublishTarget {
  private readonly confirm: boolean;
  private readonly failFast: boolean;
  private readonly maxBuffered: number;
  private readonly bufferTimeout: number;
  private readonly republish: boolean;
  /** Messages waiting for a channel: republished ones first, then new ones, each in order. */
  private held: Item[] = [];
  private channel: Channel | undefined;
  private connection: Connection | undefined;
  private connectionSub: Subscription | undefined;
  private channelSub: Subscription | undefined;
  private everReady = false;
  private closed = false;
  /** Set by `drain()`: new publishes fail with a DrainingError. */
  private draining = false;
  private ended: Error | undefined;
  private inFlight = 0;
  /** Wait before opening another channel after one failed on a live connection (ms). */
  private reopenDelay = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private republished = 0;

  /** @internal */
  constructor(
    private readonly connection$: Observable<Connection>,
    options: PublisherOptions,
  ) {
    this.confirm = options.confirm ?? true;
    const mode = options.whileDisconnected ?? 'buffer';
    if (mode !== 'buffer' && mode !== 'fail') {
      throw new ConfigurationError(`whileDisconnected must be 'buffer' or 'fail', got ${String(mode)}`);
    }
    this.failFast = mode === 'fail';
    this.maxBuffered = positiveInteger('maxBuffered', options.maxBuffered ?? 10_000);
    this.bufferTimeout = positiveInteger('bufferTimeout', options.bufferTimeout ?? 30_000);
    if (this.bufferTimeout > MAX_TIMER_MS) {
      throw new ConfigurationError(
        `bufferTimeout must be at most ${MAX_TIMER_MS} ms, got ${this.bufferTimeout}`,
      );
    }
    this.republish = options.republish ?? false;
  }

  /** Messages held now, waiting for a connection. */
  get buffered(): number {
    return this.held.length;
  }

  /** Publishes handed to a channel and not yet answered. */
  get pending(): number {
    return this.inFlight;
  }

  /** How many messages were published again after a connection was lost (`republish: true`). */
  get republishedCount(): number {
    return this.republished;
  }

  /**
   * What `JSON.stringify` shows (a logger, say): its counters and state, never its connection.
   *
   * @example
   * ```ts
   * JSON.stringify(publisher); // {"ready":true,"confirmMode":true,"buffered":0,"pending":3,"republished":0,"closed":false}
   * ```
   */
  toJSON(): {
    ready: boolean;
    confirmMode: boolean;
    buffered: number;
    pending: number;
    republished: number;
    closed: boolean;
  } {
    return {
      ready: this.isReady,
      confirmMode: this.confirm,
      buffered: this.buffered,
      pending: this.pending,
      republished: this.republished,
      closed: this.closed,
    };
  }

  /** True while a channel is open to publish on. */
  get isReady(): boolean {
    return this.channel !== undefined;
  }

  /**
   * Publishes a message: emits its outcome (`acked`, `nacked`, `returned`; `sent` without confirm mode)
   * and completes, or errors with a `PublisherError` (not sent) or, without `republish`, the
   * `ChannelClosedError` of a connection lost before the broker answered.
   *
   * @example
   * ```ts
   * publisher.publish('orders', 'eu', JSON.stringify(order), { deliveryMode: 2 }).subscribe((o) => log(o.status));
   * ```
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    properties?: BasicProperties,
    options: PublishOptions = {},
  ): Observable<PublishOutcome> {
    return publishObservable(this, exchange, routingKey, body, properties, options);
  }

  /**
   * True when the publisher's channels are in confirm mode (`confirm`, true by default).
   *
   * @example
   * ```ts
   * createPublisher(connection$, { confirm: false }).confirmMode; // false: outcomes are 'sent'
   * ```
   */
  get confirmMode(): boolean {
    return this.confirm;
  }

  /**
   * The callback path under `publish()` and `publishConfirmed`, as {@link PublishTarget.publishWith}
   * describes it (and `Channel.publishWith`).
   *
   * @example
   * ```ts
   * publisher.publishWith('', 'jobs', new TextEncoder().encode('x'), undefined, false, 1, (id, outcome, error) =>
   *   console.log(id, outcome?.status ?? error?.message),
   * );
   * ```
   */
  publishWith<C>(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties | undefined,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ): PublishHandle | undefined {
    if (this.draining) {
      done(context, undefined, new DrainingError('publish while the publisher drains'));
      return undefined;
    }
    // Subscribing to the connection may end the publisher at once (a bad option): check after it.
    if (!this.closed) this.start();
    if (this.closed || this.ended !== undefined) {
      done(
        context,
        undefined,
        this.ended !== undefined
          ? new PublisherError(
              'CONNECTION_ENDED',
              `the publisher's connection ended: ${this.ended.message}`,
              this.ended,
            )
          : new PublisherError('PUBLISHER_CLOSED', 'the publisher is closed'),
      );
      return undefined;
    }
    const item: Item = {
      exchange,
      routingKey,
      body,
      properties,
      mandatory,
      context,
      done: done as PublishCallback<unknown>,
      timer: undefined,
      handle: undefined,
      attempts: 0,
      cancelled: false,
      ambient: ambientContext()?.capture(),
    };
    const cancel = {
      // True when the message was dropped before it went out (its `done` is then never called).
      cancel: (): boolean => {
        if (item.cancelled) return false;
        item.cancelled = true;
        const handle = item.handle;
        if (handle === undefined) {
          if (!this.unhold(item)) return false;
          this.idleIfEmpty();
          return true;
        }
        if (!handle.cancel()) return false;
        // The channel dropped it unwritten and will not report it: it is no longer in flight.
        item.handle = undefined;
        this.settled();
        return true;
      },
    };
    const channel = this.channel;
    // A channel closed under a lost connection is still set while its failures are reported.
    if (channel?.isOpen === true && this.held.length === 0) {
      this.send(channel, item);
      return item.handle === undefined ? undefined : cancel;
    }
    if (this.failFast && this.everReady && this.connection?.isOpen !== true) {
      done(
        context,
        undefined,
        new PublisherError('DISCONNECTED', "no connection is open and whileDisconnected is 'fail'"),
      );
      return undefined;
    }
    if (this.held.length >= this.maxBuffered) {
      done(
        context,
        undefined,
        new PublisherError(
          'BUFFER_FULL',
          `${this.maxBuffered} messages are already waiting for a connection (maxBuffered)`,
        ),
      );
      return undefined;
    }
    this.hold(item, false);
    return cancel;
  }

  /**
   * Stops the publisher: held messages fail with `PUBLISHER_CLOSED`, publishes awaiting confirms are
   * waited for, then the channel closes and the publisher lets go of the connection. Emits once done.
   *
   * @example
   * ```ts
   * await lastValueFrom(publisher.close());
   * ```
   */
  close(): Observable<void> {
    return new Observable<void>((subscriber) => {
      this.closed = true;
      for (const item of this.held.splice(0)) {
        this.clearTimer(item);
        item.done(
          item.context,
          undefined,
          new PublisherError('PUBLISHER_CLOSED', 'the publisher was closed before the message went out'),
        );
      }
      const finish = () => {
        this.channelSub?.unsubscribe();
        this.connectionSub?.unsubscribe();
        this.channel = undefined;
        subscriber.next();
        subscriber.complete();
      };
      if (this.inFlight === 0) finish();
      else this.idleWaiters.push(finish);
    });
  }

  /**
   * Drains the publisher for a graceful shutdown, when subscribed: new publishes fail at once with a
   * `DrainingError`; the messages held while disconnected are still sent when a connection opens, and
   * every publish handed to a channel is waited for (its confirm, in confirm mode); then the channel
   * closes and the publisher lets go of the connection, like `close()`. Past `timeout` (default 25 s)
   * it stops waiting: held messages fail with a `DrainingError` and publishes still unanswered fail
   * with the channel's error as it closes. Emits a {@link PublisherDrainReport}, then completes.
   * Unlike `close()`, which fails the held messages at once, nothing accepted before is dropped
   * while there is time. The drain ends as soon as nothing is held or in flight, however the last
   * message left (answered, failed with `BUFFER_TIMEOUT`, or cancelled by unsubscribing from its
   * `publish()`).
   *
   * Once started, the drain goes on to its end: unsubscribing only stops listening (the publisher
   * still refuses new publishes, sends what it holds and closes). While subscribed, the drain's
   * timeout keeps the process alive; after unsubscribing it no longer does, so a process with
   * nothing else to do may exit before the timeout.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', async () => {
   *   const { dropped } = await lastValueFrom(publisher.drain({ timeout: 10_000 }));
   *   if (dropped > 0) console.error(`${dropped} messages were not published`);
   * });
   * ```
   */
  drain(options: PublisherDrainOptions = {}): Observable<PublisherDrainReport> {
    const timeout = drainTimeout(options.timeout);
    return new Observable<PublisherDrainReport>((subscriber) => {
      const started = Date.now();
      this.draining = true;
      let over = false;
      const finish = (timedOut: boolean) => {
        if (over) return;
        over = true;
        clearTimeout(timer);
        this.closed = true;
        let dropped = this.inFlight;
        for (const item of this.held.splice(0)) {
          this.clearTimer(item);
          if (item.cancelled) continue;
          dropped++;
          item.done(
            item.context,
            undefined,
            new DrainingError('the publisher drained before the message went out (timeout)'),
          );
        }
        this.channelSub?.unsubscribe();
        this.connectionSub?.unsubscribe();
        this.channel = undefined;
        subscriber.next({ timedOut, dropped, elapsed: Date.now() - started });
        subscriber.complete();
      };
      const idle = () => {
        if (over) return;
        if (this.held.length === 0 && this.inFlight === 0) finish(false);
        else this.idleWaiters.push(idle);
      };
      const timer = setTimeout(() => finish(true), timeout);
      // A publisher that never connected holds nothing: idle at once.
      if (this.held.length === 0 && this.inFlight === 0) finish(false);
      else this.idleWaiters.push(idle);
      // Unsubscribing leaves the drain running; its timer then no longer keeps the process alive.
      return () => {
        if (!over) unrefTimer(timer);
      };
    });
  }

  private start(): void {
    if (this.connectionSub !== undefined) return;
    this.connectionSub = this.connection$.subscribe({
      next: (connection) => this.connected(connection),
      error: (error: unknown) => this.end(error instanceof Error ? error : new Error(String(error))),
      complete: () => this.end(new PublisherError('CONNECTION_ENDED', 'the connection was closed')),
    });
  }

  private connected(connection: Connection): void {
    this.connection = connection;
    this.openChannel(connection);
  }

  private openChannel(connection: Connection): void {
    this.channelSub?.unsubscribe();
    let channel: Channel | undefined;
    this.channelSub = connection.channel().subscribe({
      next: (ch) => {
        channel = ch;
        if (!this.confirm) {
          this.ready(ch);
          return;
        }
        ch.confirmSelect().subscribe({ complete: () => this.ready(ch), error: () => {} });
      },
      error: () => this.channelGone(connection, channel),
      complete: () => this.channelGone(connection, channel),
    });
  }

  private ready(channel: Channel): void {
    if (!channel.isOpen || this.closed) return;
    this.channel = channel;
    this.everReady = true;
    this.reopenDelay = 0;
    const items = this.held;
    this.held = [];
    for (const item of items) {
      this.clearTimer(item);
      if (item.cancelled) continue;
      if (this.channel !== channel || !channel.isOpen) {
        // The channel went away while sending: keep the rest, in order.
        this.hold(item, false);
        continue;
      }
      this.sendLater(channel, item);
    }
  }

  private channelGone(connection: Connection, channel: Channel | undefined): void {
    if (this.channel === channel) this.channel = undefined;
    if (this.closed || this.ended !== undefined) return;
    // A channel-level error on a live connection: open another channel there. A lost connection:
    // the next one from the connection Observable brings the next channel.
    if (connection === this.connection && connection.isOpen) {
      // Backing off while the channel keeps failing (a failing confirmSelect, say): 0, 50, 100... 5000 ms.
      const delay = this.reopenDelay;
      this.reopenDelay = Math.min(5000, Math.max(50, delay * 2));
      setTimeout(() => {
        if (
          !this.closed &&
          this.connection === connection &&
          connection.isOpen &&
          this.channel === undefined
        ) {
          this.openChannel(connection);
        }
      }, delay);
    }
  }

  /** Sends a message held until now, in the trace context it was published in. */
  private sendLater(channel: Channel, item: Item): void {
    const ambient = ambientContext();
    if (ambient === undefined || item.ambient === undefined) this.send(channel, item);
    else ambient.run(item.ambient, () => this.send(channel, item));
  }

  private send(channel: Channel, item: Item): void {
    item.attempts++;
    this.inFlight++;
    let settled = false;
    const handle = channel.publishWith(
      item.exchange,
      item.routingKey,
      item.body,
      item.properties,
      item.mandatory,
      item,
      (it, outcome, error) => {
        if (settled) return;
        settled = true;
        it.handle = undefined;
        if (
          outcome === undefined &&
          this.republish &&
          !this.closed &&
          !it.cancelled &&
          causedByConnectionLoss(error)
        ) {
          this.republished++;
          this.hold(it, true);
        } else {
          it.done(it.context, outcome, error);
        }
        this.settled();
      },
    );
    if (!settled) item.handle = handle;
  }

  /** A publish handed to a channel is over (answered, failed, or dropped unwritten). */
  private settled(): void {
    this.inFlight--;
    if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * A held message left without going out (its buffer timeout, or cancelled): with nothing else held
   * or in flight, a drain (or a close) waiting for the publisher to be idle is done.
   */
  private idleIfEmpty(): void {
    if (this.held.length === 0 && this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Keeps a message until a channel is ready; republished ones go before those never sent. */
  private hold(item: Item, again: boolean): void {
    if (item.cancelled && !again) return;
    if (again) {
      let i = 0;
      while (i < this.held.length && this.held[i]!.attempts > 0) i++;
      this.held.splice(i, 0, item);
    } else this.held.push(item);
    item.timer = setTimeout(() => {
      item.timer = undefined;
      if (!this.unhold(item)) return;
      item.done(
        item.context,
        undefined,
        new PublisherError(
          'BUFFER_TIMEOUT',
          `no connection opened within bufferTimeout (${this.bufferTimeout} ms)`,
        ),
      );
      this.idleIfEmpty();
    }, this.bufferTimeout);
    if (this.channel !== undefined) this.ready(this.channel);
  }

  private unhold(item: Item): boolean {
    const i = this.held.indexOf(item);
    if (i < 0) return false;
    this.held.splice(i, 1);
    this.clearTimer(item);
    return true;
  }

  private clearTimer(item: Item): void {
    if (item.timer !== undefined) {
      clearTimeout(item.timer);
      item.timer = undefined;
    }
  }

  private end(error: Error): void {
    this.ended = error;
    this.channel = undefined;
    const reason =
      error instanceof PublisherError
        ? error
        : new PublisherError('CONNECTION_ENDED', `the publisher's connection ended: ${error.message}`, error);
    for (const item of this.held.splice(0)) {
      this.clearTimer(item);
      item.done(item.context, undefined, reason);
    }
    // A drain waiting for the held messages has nothing left to wait for.
    if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigurationError(`${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/**
 * Creates a publisher over a connection Observable (typically `connect(url, { recovery: true })`):
 * it keeps a channel open on the current connection, in confirm mode by default, and carries on across
 * reconnects. While no connection is open it holds messages (bounded in number and time) or fails
 * them at once (`whileDisconnected: 'fail'`); with `republish: true`, publishes whose confirm was lost
 * with a connection are published again on the next one (at least once: duplicates are possible).
 * It subscribes to the connection Observable on the first publish and lets go on `close()`.
 *
 * @example
 * ```ts
 * const connection$ = connect(url, { recovery: true });
 * const publisher = createPublisher(connection$, { republish: true });
 * orders$.pipe(
 *   map((o) => ({ exchange: '', routingKey: 'orders', body: JSON.stringify(o), properties: { deliveryMode: 2 } })),
 *   publishConfirmed(publisher, { window: 100 }),
 * ).subscribe();
 * ```
 */
export function createPublisher(
  connection$: Observable<Connection>,
  options: PublisherOptions = {},
): Publisher {
  return new Publisher(connection$, options);
}
