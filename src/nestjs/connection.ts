/**
 * One connection of the NestJS module: rxamqp's recovering `connect()` Observable, the module's
 * topology applied on each connection it emits, a confirming publisher buffered across reconnects,
 * and the shutdown sequence (drain the connection, then the publisher).
 *
 * @module
 */
import { Logger } from '@nestjs/common';
import {
  catchError,
  defer,
  EMPTY,
  firstValueFrom,
  lastValueFrom,
  map,
  type Observable,
  ReplaySubject,
  retry,
  type Subscription,
  startWith,
  switchMap,
  timer,
} from 'rxjs';
import type { ConnectionObservable, ConnectionState } from '../client/connect.js';
import type { Connection } from '../client/connection.js';
import { createPublisher, type Publisher } from '../client/publisher.js';
import type { BlockedEvent } from '../client/types.js';
import { redactUrl } from '../config/url.js';
import { connect } from '../node.js';
import { type AppliedTopology, applyTopology } from '../topology/apply.js';
import type { Topology } from '../topology/specs.js';
import { INSPECT } from '../util/runtime.js';
import type { ResolvedModuleOptions } from './options.js';

/** A connection and the module topology as applied on it. */
export interface ReadyConnection {
  readonly connection: Connection;
  readonly applied: AppliedTopology;
}

const NO_TOPOLOGY: Topology = {};

/**
 * A connection of `RxAmqpModule`, injectable with `@InjectRxAmqp(name?)`: the `connect()` Observable
 * (a fresh `Connection` after each reconnect), the module's topology applied on each, the connection's
 * `Publisher`, and its state and blocked streams.
 *
 * @example
 * ```ts
 * @Injectable()
 * class Orders {
 *   constructor(@InjectRxAmqp() private readonly amqp: RxAmqpConnection) {}
 *   place(order: Order) {
 *     return this.amqp.publisher.publish('orders', 'order.placed', JSON.stringify(order), { deliveryMode: 2 });
 *   }
 * }
 * ```
 */
export class RxAmqpConnection {
  /** `connect()`'s Observable: emits a fresh `Connection` on each (re)connection. */
  readonly connection$: ConnectionObservable;
  /** Publishes through whatever connection is open: confirms on, held while disconnected. */
  readonly publisher: Publisher;
  /** The connection state (`state$` of `connect()`): `CONNECTING`, `CONNECTED`, `RECONNECTING`, `CLOSED`, ... */
  readonly state$: Observable<ConnectionState>;
  /** The broker's connection.blocked / unblocked notifications, `{ blocked: false }` first on each connection. */
  readonly blocked$: Observable<BlockedEvent>;
  /** Each connection once the module's topology is declared on it; the latest replayed. */
  readonly ready$: Observable<ReadyConnection>;

  private readonly logger: Logger;
  private readonly readySubject = new ReplaySubject<ReadyConnection>(1);
  private keep: Subscription | undefined;
  private shuttingDown: Promise<void> | undefined;
  private firstError: unknown;
  private lastState: ConnectionState = { status: 'INITIAL' };
  private isBlocked = false;
  private watching: Subscription | undefined;

  /** @internal Made by the module from its options. */
  constructor(readonly options: ResolvedModuleOptions) {
    this.logger = new Logger(`RxAmqp:${options.name}`);
    const connectOptions = { recovery: true, ...options.connection, shared: true };
    this.connection$ =
      options.url === undefined ? connect(connectOptions) : connect(options.url, connectOptions);
    this.state$ = this.connection$.state$;
    // Each connection starts unblocked: a new one after a loss forgets the old one's alarm.
    this.blocked$ = this.connection$.pipe(
      switchMap((connection) => connection.blocked$.pipe(startWith<BlockedEvent>({ blocked: false }))),
    );
    this.publisher = createPublisher(this.connection$, {
      confirm: true,
      republish: true,
      whileDisconnected: 'buffer',
      ...options.publisher,
    });
    this.ready$ = this.readySubject.asObservable();
  }

  /** The name given to `forRoot` (`'default'` when none). */
  get name(): string {
    return this.options.name;
  }

  /** What `JSON.stringify` shows: the name, the URL without its password, the state. Never a secret. */
  toJSON(): { name: string; url: string | undefined; status: string; blocked: boolean } {
    const url = this.options.url;
    return {
      name: this.name,
      url: url === undefined ? undefined : redactUrl(url),
      status: this.lastState.status,
      blocked: this.isBlocked,
    };
  }

  [INSPECT](): string {
    const { name, url, status } = this.toJSON();
    return `RxAmqpConnection { name: '${name}', url: '${url ?? '(connection options)'}', status: ${status} }`;
  }

  /**
   * @internal Opens the connection (kept open until shutdown) and declares the topology on each
   * connection; resolves once the first is ready. With `wait` (the default), a first topology the
   * broker refuses rejects it (the bootstrap fails); otherwise, and after a reconnect, a refused
   * topology is logged and tried again on the same connection after a pause (1 s doubling, at most 30 s).
   */
  start(wait = true): Promise<void> {
    if (this.watching === undefined) {
      this.watching = this.state$.subscribe((state) => {
        this.lastState = state;
      });
      this.watching.add(
        this.blocked$.subscribe({ next: (e) => (this.isBlocked = e.blocked), error: () => undefined }),
      );
    }
    if (this.keep === undefined) {
      const topology = this.options.topology ?? NO_TOPOLOGY;
      let first = true;
      this.keep = this.connection$
        .pipe(
          switchMap((connection) =>
            defer(() => applyTopology(connection, topology)).pipe(
              retry({
                delay: (error: unknown, attempt: number) => {
                  this.logger.error(`the topology could not be declared: ${describe(error)}`);
                  if (first && wait) {
                    this.firstError = error;
                    this.readySubject.error(error);
                    throw error;
                  }
                  return timer(Math.min(1000 * 2 ** (attempt - 1), 30_000));
                },
              }),
              map((applied) => ({ connection, applied })),
              catchError(() => EMPTY),
            ),
          ),
        )
        .subscribe({
          next: (ready) => {
            first = false;
            this.readySubject.next(ready);
          },
          error: (error: unknown) => {
            this.logger.error(`the connection ended: ${describe(error)}`);
            this.readySubject.error(error);
          },
          complete: () => this.readySubject.complete(),
        });
    }
    if (this.firstError !== undefined) return Promise.reject(this.firstError);
    return firstValueFrom(this.ready$).then(() => undefined);
  }

  /**
   * @internal The shutdown: the connection drains (consumers cancelled, running handlers finish and
   * settle, acks and confirms flushed, then it closes), then the publisher (what it still holds is
   * sent if it can be). Bounded by `shutdown.timeout`. Idempotent.
   */
  shutdown(): Promise<void> {
    this.shuttingDown ??= this.drain().finally(() => {
      this.keep?.unsubscribe();
      this.keep = undefined;
      this.watching?.unsubscribe();
      this.watching = undefined;
    });
    return this.shuttingDown;
  }

  private async drain(): Promise<void> {
    if (this.keep === undefined) {
      await lastValueFrom(this.publisher.close(), { defaultValue: undefined }).catch(() => undefined);
      return;
    }
    const drainTimeout = this.options.shutdown?.timeout ?? 25_000;
    try {
      const last = await lastValueFrom(
        this.connection$.drain({
          timeout: drainTimeout,
          ...(this.options.shutdown?.prefetched === undefined
            ? {}
            : { prefetched: this.options.shutdown.prefetched }),
        }),
        { defaultValue: undefined },
      );
      if (last?.timedOut === true) {
        this.logger.warn(
          `shutdown: the drain timed out after ${drainTimeout} ms; ${last.unsettled} deliveries went back to their queues`,
        );
      }
    } catch (error) {
      this.logger.warn(`shutdown: the drain ended early: ${describe(error)}`);
    }
    await lastValueFrom(this.publisher.drain({ timeout: Math.min(drainTimeout, 5_000) }), {
      defaultValue: undefined,
    }).catch((error: unknown) =>
      this.logger.warn(`shutdown: the publisher drain failed: ${describe(error)}`),
    );
  }

  /**
   * @internal The current state for a health check: whether the connection is open now, and whether
   * the broker blocks its publishes (a resource alarm).
   */
  health(): { status: ConnectionState['status']; blocked: boolean } {
    return { status: this.lastState.status, blocked: this.isBlocked };
  }
}

/** An error's message (never a URL with a password: rxamqp's errors carry redacted URLs). */
export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
