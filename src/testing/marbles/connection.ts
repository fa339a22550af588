/**
 * A fake connection Observable: it emits a fake connection on a marble, drops it (its channels and
 * consumers complete, as with a recovering connection, or error) and emits a fresh one, and reports
 * its state like `ConnectionObservable.state$`.
 *
 * @module
 */
import { BehaviorSubject, type Observable, Observable as RxObservable, Subject } from 'rxjs';
import type { ConnectionState } from '../../client/connect.js';
import type { BlockedEvent } from '../../client/types.js';
import {
  ChannelClosedError,
  ConfigurationError,
  ConnectionClosedError,
  isConsumerTimeout,
} from '../../errors.js';
import { type ChannelHost, FakeChannel } from './channel.js';
import type { FakeChannelOptions } from './types.js';

/**
 * Options of a fake connection Observable.
 *
 * @example
 * ```ts
 * kit.connection({ marbles: 'c---x-c', onLoss: 'error', channel: { confirmDelay: 2 } });
 * ```
 */
export interface FakeConnectionOptions {
  /**
   * The connection's life, from the subscription: `c` a connection opens (a fresh one is emitted),
   * `x` the open one is lost (recovery follows: the next `c`), `|` the client closes it (the Observable
   * completes), `#` it fails for good (the Observable errors with `error`). Default `'c'`.
   */
  readonly marbles?: string;
  /**
   * What the channels (and their consumers) of a lost connection do: `'complete'` (default), as with
   * a recovering connection, whose next `Connection` brings the next channel; or `'error'`, with a
   * `ChannelClosedError` (code `CONNECTION_CLOSED`) whose cause is the loss.
   */
  readonly onLoss?: 'complete' | 'error';
  /** Why a connection is lost (`x`). Default: a `ConnectionClosedError` coded `CONNECTION_LOST`. */
  readonly lossError?: Error;
  /** What `#` errors the Observable with. Default: a `ConnectionClosedError` coded `CONNECTION_LOST`. */
  readonly error?: Error;
  /** What `host` and the states report. Default `'fake:5672'`. */
  readonly host?: string;
  /** The options of every channel opened, or a function of the connection's and the channel's number. */
  readonly channel?: FakeChannelOptions | ((connection: number, channel: number) => FakeChannelOptions);
}

/**
 * The part of a `Connection` that pipelines use, faked: `channel()` (emits a fresh
 * {@link FakeChannel} per subscription, which closes on unsubscription, and a fresh one again after a
 * consumer timeout (`channel.timeOut()`) unless `onLoss: 'error'`; completes, or errors, when the
 * connection is lost; subscribed after a loss, completes as on a recovering connection),
 * `cachedChannel()`, `isOpen`, `error`, `host`, `blocked$` and `isBlocked` (never blocked; `blocked$`
 * completes with the connection) and `close()`. Not faked: `serverProperties`, `tune`, `counters`,
 * `url`, `openChannel`.
 *
 * @example
 * ```ts
 * connection$.pipe(switchMap((conn) => conn.channel()), switchMap((ch) => ch.consume('jobs'))).subscribe();
 * ```
 */
export class FakeConnection {
  private readonly opened: FakeChannel[] = [];
  private readonly blocked = new Subject<BlockedEvent>();
  private ended: { error: Error | undefined; recovering: boolean } | undefined;
  private cached: FakeChannel | undefined;

  /** @internal Made by a fake connection Observable. */
  constructor(
    /** Which connection of its Observable's subscription this is: 1, then 2 after the first loss, ... */
    readonly index: number,
    /** `host:port`, as the options say. */
    readonly host: string,
    private readonly channelHost: ChannelHost,
    private readonly channelOptions: FakeConnectionOptions['channel'],
    private readonly close$: () => void,
    /** Recovering (`onLoss: 'complete'`): a channel closed by a consumer timeout is replaced. */
    private readonly recovers = true,
  ) {}

  /** True until lost or closed. */
  get isOpen(): boolean {
    return this.ended === undefined;
  }

  /** Why it ended, when it was lost or failed. */
  get error(): Error | undefined {
    return this.ended?.error;
  }

  /** Never blocked (see `blocked$`). */
  get isBlocked(): boolean {
    return false;
  }

  /** Every channel opened on it, in order. */
  get channels(): readonly FakeChannel[] {
    return this.opened;
  }

  /**
   * Never blocked: completes when the connection ends.
   *
   * @example
   * ```ts
   * conn.blocked$.subscribe({ complete: () => console.log('connection over') });
   * ```
   */
  get blocked$(): Observable<BlockedEvent> {
    return new RxObservable<BlockedEvent>((subscriber) => {
      if (this.ended !== undefined) subscriber.complete();
      else return this.blocked.subscribe(subscriber);
      return undefined;
    });
  }

  /**
   * Opens a fresh fake channel per subscription and emits it; unsubscribing closes it. Completes when
   * the connection is lost (or errors, with `onLoss: 'error'`) or closed.
   *
   * @example
   * ```ts
   * conn.channel().pipe(switchMap((ch) => ch.consume('jobs'))).subscribe();
   * ```
   */
  channel(options?: FakeChannelOptions): Observable<FakeChannel> {
    return new RxObservable<FakeChannel>((subscriber) => {
      if (this.ended !== undefined) {
        // As on a lost recovering connection: nothing to open here, the next connection brings it.
        if (this.ended.recovering) subscriber.complete();
        else subscriber.error(this.closedError());
        return;
      }
      let current: FakeChannel;
      const open = (reopenedAfter: Error | undefined): void => {
        const channel = this.open(options, reopenedAfter);
        current = channel;
        // As a recovering `Connection.channel()`: a consumer timeout replaces the channel.
        if (this.recovers) channel.replaces = isConsumerTimeout;
        channel.onEnd((error) => {
          if (error === undefined) subscriber.complete();
          else if (channel.replaces?.(error) === true && this.ended === undefined) open(error);
          else subscriber.error(error);
        });
        subscriber.next(channel);
      };
      open(undefined);
      return () => current.end(undefined);
    });
  }

  /**
   * The connection's shared channel: emits it and completes (opened at the first call, again after it
   * closed).
   *
   * @example
   * ```ts
   * conn.cachedChannel().pipe(switchMap((ch) => ch.publish('', 'q', 'x'))).subscribe();
   * ```
   */
  cachedChannel(): Observable<FakeChannel> {
    return new RxObservable<FakeChannel>((subscriber) => {
      if (this.ended !== undefined) {
        if (this.ended.recovering) subscriber.complete();
        else subscriber.error(this.closedError());
        return;
      }
      if (this.cached === undefined || !this.cached.isOpen) this.cached = this.open(undefined);
      subscriber.next(this.cached);
      subscriber.complete();
    });
  }

  /**
   * Closes the connection when subscribed (its Observable completes), as `Connection.close()`.
   *
   * @example
   * ```ts
   * conn.close().subscribe();
   * ```
   */
  close(): Observable<void> {
    return new RxObservable<void>((subscriber) => {
      this.close$();
      subscriber.next();
      subscriber.complete();
    });
  }

  /** What opening a channel on the ended connection fails with. */
  private closedError(): Error {
    return (
      this.ended?.error ??
      new ConnectionClosedError('CLIENT_CLOSED', 'the fake connection is closed', { initiator: 'client' })
    );
  }

  private open(options: FakeChannelOptions | undefined, reopenedAfter?: Error): FakeChannel {
    const configured =
      typeof this.channelOptions === 'function'
        ? this.channelOptions(this.index, this.opened.length + 1)
        : (this.channelOptions ?? {});
    const channel = new FakeChannel(
      this.channelHost,
      { id: this.opened.length + 1, ...configured, ...options },
      reopenedAfter,
    );
    this.opened.push(channel);
    return channel;
  }

  /** @internal Ends the connection: `lost` says whether the channels complete (undefined) or error. */
  end(cause: Error | undefined, channelError: Error | undefined): void {
    if (this.ended !== undefined) return;
    this.ended = { error: cause, recovering: cause !== undefined && channelError === undefined };
    for (const channel of this.opened) {
      const failure = new ChannelClosedError(
        'CONNECTION_CLOSED',
        `fake channel ${channel.id} closed with its connection${cause === undefined ? '' : `: ${cause.message}`}`,
        {
          channel: channel.id,
          initiator: cause === undefined ? 'client' : 'network',
          ...(cause === undefined ? {} : { cause }),
        },
      );
      // As a real channel: `error` tells why it closed (unless the client closed it), even when its
      // streams complete because recovery replaces the connection.
      channel.end(
        channelError === undefined ? undefined : failure,
        failure,
        cause === undefined ? undefined : failure,
      );
    }
    this.blocked.complete();
  }
}

/**
 * What `kit.connection()` returns: an `Observable<FakeConnection>` that, like `connect()`'s
 * `ConnectionObservable`, reports its state on `state$`, and keeps every connection it made.
 *
 * @example
 * ```ts
 * const connection$ = kit.connection({ marbles: 'c--x-c' });
 * const states: string[] = [];
 * connection$.state$.subscribe((s) => states.push(s.status));
 * expectObservable(connection$.pipe(map((c) => c.index))).toBe('a----b', { a: 1, b: 2 });
 * // states: INITIAL, CONNECTING, CONNECTED (frame 0), RECONNECTING (3), CONNECTING, CONNECTED (5)
 * ```
 */
export class FakeConnectionObservable extends RxObservable<FakeConnection> {
  private readonly states = new BehaviorSubject<ConnectionState>({ status: 'INITIAL' });
  private readonly made: FakeConnection[] = [];

  /**
   * The state, as `ConnectionObservable.state$`: the current one at once, then every change
   * (`CONNECTING`, `CONNECTED`, `RECONNECTING` with the loss as `cause`, `CLOSING`, `CLOSED`). The
   * marble has no failed attempts, so `attempt` is always 1; `RECONNECTING` has no `delay` (the
   * marble's next `c` says when).
   */
  readonly state$: Observable<ConnectionState> = this.states.asObservable();

  /** @internal Made by `kit.connection()`. */
  constructor(host: ChannelHost, options: FakeConnectionOptions = {}) {
    super((subscriber) => {
      const label = options.host ?? 'fake:5672';
      const lost = (): Error =>
        options.lossError ??
        new ConnectionClosedError('CONNECTION_LOST', 'the fake connection was lost', {
          initiator: 'network',
        });
      const failed =
        options.error ??
        new ConnectionClosedError('CONNECTION_LOST', 'the fake connection failed', { initiator: 'network' });
      let current: FakeConnection | undefined;
      let count = 0;
      let over = false;
      const report = (state: ConnectionState): void => this.states.next(state);
      const close = (): void => {
        if (over) return;
        over = true;
        // As the supervisor: CLOSING when there is a connection to close (or the first one being
        // opened); not while waiting to reconnect after a loss.
        if (current !== undefined || count === 0) report({ status: 'CLOSING', host: label });
        current?.end(undefined, undefined);
        current = undefined;
        report({ status: 'CLOSED' });
        script.unsubscribe();
        subscriber.complete();
      };
      // The marble has no failed attempts: each connect is the first attempt since the last open
      // connection, and each loss the first retry (as `connect()` reports them with `recovery`).
      report({ status: 'CONNECTING', host: label, attempt: 1 });
      const script = host.clock.cold<string>(options.marbles ?? 'c', undefined, failed).subscribe({
        next: (event) => {
          if (event === 'c') {
            if (current !== undefined) return;
            if (count > 0) report({ status: 'CONNECTING', host: label, attempt: 1 });
            const connection = new FakeConnection(
              ++count,
              label,
              host,
              options.channel,
              close,
              options.onLoss !== 'error',
            );
            current = connection;
            this.made.push(connection);
            report({ status: 'CONNECTED', host: label });
            subscriber.next(connection);
          } else if (event !== 'x') {
            over = true;
            const error = new ConfigurationError(
              `fake connection marbles: '${String(event)}' is not c, x, | or #`,
            );
            current?.end(undefined, undefined);
            current = undefined;
            report({ status: 'CLOSED', cause: error });
            subscriber.error(error);
          } else if (current !== undefined) {
            const cause = lost();
            const connection = current;
            current = undefined;
            // As the supervisor: the channels hear of the loss before RECONNECTING is reported.
            connection.end(cause, options.onLoss === 'error' ? cause : undefined);
            report({ status: 'RECONNECTING', host: label, cause, attempt: 1 });
          }
        },
        error: (error: Error) => {
          over = true;
          current?.end(error, error);
          current = undefined;
          report({ status: 'CLOSED', cause: error });
          subscriber.error(error);
        },
        complete: () => close(),
      });
      return () => {
        close();
        script.unsubscribe(); // also after an error, which close() leaves alone
      };
    });
  }

  /** Every connection made so far (across subscriptions), in order. */
  get connections(): readonly FakeConnection[] {
    return this.made;
  }
}
