/**
 * `connect()` and `openConnection()`: an AMQP connection as an Observable, and the supervisor group
 * behind each connection lifetime. The entry points bind them to a {@link Platform}: the Node entry
 * to the TCP and TLS transports, the universal entry to none (a `transport` option is then needed).
 *
 * @module
 */
import { BehaviorSubject, defer, merge, Observable, of, type Subscriber } from 'rxjs';
import type { ConnectOptions, ResolvedOptions } from '../config/options.js';
import type { Platform } from '../config/platform.js';
import { resolveOptions } from '../config/resolve-options.js';
import type { ConnectionCore } from '../core/connection-core.js';
import { type ConnectionState, Supervisor } from '../core/supervisor.js';
import { ConfigurationError } from '../errors.js';
import { newLifetime } from '../telemetry/diagnostics.js';
import { Reporter } from '../telemetry/reporter.js';
import { debugLine } from '../util/runtime.js';
import { Connection, keepFirst } from './connection.js';
import { checkDrainOptions, type DrainOptions, type DrainProgress } from './drain.js';

export type { ConnectionState, ConnectionStatus } from '../core/supervisor.js';

/** @internal `connect()` bound to a platform by an entry point (see `src/node.ts`, `src/index.ts`). */
export function connectWith(
  platform: Platform,
  url?: string | ConnectOptions,
  options?: ConnectOptions,
): ConnectionObservable {
  return new ConnectionObservable(url, options, platform);
}

/**
 * What {@link connect} returns: an `Observable<Connection>` that also reports its state.
 *
 * @example
 * ```ts
 * const connection$ = connect(url, { recovery: true });
 * connection$.state$.pipe(filter((s) => s.status === 'RECONNECTING')).subscribe((s) => log.warn(s.cause));
 * ```
 */
export class ConnectionObservable extends Observable<Connection> {
  private readonly states = new BehaviorSubject<ConnectionState>({ status: 'INITIAL' });
  /** The connection lifetimes under way (one when shared, one per subscription otherwise). */
  private readonly groups = new Set<ConnectionGroup>();

  /**
   * The state of this Observable's connection: the current state at once, then every change
   * (`CONNECTING`, `CONNECTED`, `RECONNECTING`, `CLOSING`, `CLOSED`, with the host and the cause). It
   * never completes: subscribing again to the connection Observable starts again. Without `shared`,
   * each subscription has its own connection and all of them report here.
   */
  readonly state$: Observable<ConnectionState> = this.states.asObservable();

  /**
   * What `JSON.stringify` shows (a logger, say): the current state and host, and the cause's code and
   * message when there is one (never a password: errors do not carry any).
   *
   * @example
   * ```ts
   * JSON.stringify(connection$); // {"status":"CONNECTED","host":"localhost:5672"}
   * ```
   */
  toJSON(): {
    status: string;
    host?: string;
    node?: string;
    cause?: { name: string; code?: string; message: string };
  } {
    const state = this.states.value;
    const cause = state.cause;
    const code: unknown = (cause as { code?: unknown } | undefined)?.code;
    return {
      status: state.status,
      ...(state.host === undefined ? {} : { host: state.host }),
      ...(state.node === undefined ? {} : { node: state.node }),
      ...(cause === undefined
        ? {}
        : {
            cause: {
              name: cause.name,
              ...(typeof code === 'string' ? { code } : {}),
              message: cause.message,
            },
          }),
    };
  }

  /**
   * Drains the connection this Observable holds open now (each of them, without `shared`), as
   * `Connection.drain` does, and ends its lifetime: a connection lost during the drain is not
   * recovered (the drain then errors with why it was lost), and while reconnecting nothing is
   * reopened (the drain emits `closed` at once). The subscribers of this Observable complete once the
   * connection is closed. Use it on SIGTERM when the pipeline runs on a recovering `connect()` and
   * you do not hold the `Connection`.
   *
   * @example
   * ```ts
   * const connection$ = connect(url, { recovery: true });
   * connection$.pipe(switchMap((c) => c.channel()), switchMap((ch) => ch.consume('jobs')), ackOnSuccess(handle)).subscribe();
   * process.once('SIGTERM', () => connection$.drain({ timeout: 20_000 }).subscribe({ complete: () => process.exit(0) }));
   * ```
   */
  drain(options: DrainOptions = {}): Observable<DrainProgress> {
    checkDrainOptions(options);
    return defer(() => {
      const groups = [...this.groups].filter((g) => !g.isOver);
      if (groups.length === 0) return of(CLOSED);
      return merge(...groups.map((g) => g.drain(options)));
    });
  }

  /** @internal */
  constructor(
    url: string | ConnectOptions | undefined,
    options: ConnectOptions | undefined,
    platform: Platform,
  ) {
    let group: ConnectionGroup | undefined;
    super((subscriber) => {
      let resolved: ResolvedOptions;
      try {
        resolved = resolveOptions(url ?? {}, options, platform);
      } catch (e) {
        this.states.next({ status: 'CLOSED', cause: e as Error });
        subscriber.error(e);
        return;
      }
      const debug = resolved.debug;
      const report = (state: ConnectionState) => {
        if (debug !== undefined) debugLine(debug, describeState(state));
        this.states.next(state);
      };
      for (const g of this.groups) if (g.isOver) this.groups.delete(g);
      if (!resolved.shared) {
        const own = new ConnectionGroup(resolved, report);
        this.groups.add(own);
        return own.add(subscriber);
      }
      if (group === undefined || group.isOver) {
        // A group still closing when the next one starts no longer speaks for this Observable.
        const next: ConnectionGroup = new ConnectionGroup(resolved, (state) => {
          if (group === next) report(state);
        });
        group = next;
        this.groups.add(next);
      }
      return group.add(subscriber);
    });
  }
}

/** The subscribers of one connection lifetime, and the supervisor that opens their connections. */
class ConnectionGroup {
  private readonly subscribers: Subscriber<Connection>[] = [];
  private current: Connection | undefined;
  private supervisor: Supervisor | undefined;
  private readonly connections = new WeakMap<ConnectionCore, Connection>();
  isOver = false;
  /** Set by a drain: a loss ends the lifetime instead of reconnecting. */
  private draining = false;
  private drained: Observable<DrainProgress> | undefined;

  /** See `ConnectionObservable.drain`. */
  drain(options: DrainOptions): Observable<DrainProgress> {
    this.draining = true;
    const connection = this.current;
    if (connection === undefined) {
      // Reconnecting (or not yet connected): nothing to drain; no further attempt.
      this.supervisor?.stop();
      return of(CLOSED);
    }
    this.drained ??= connection.drain(options);
    return this.drained;
  }

  private readonly options: ResolvedOptions;
  private readonly report: (state: ConnectionState) => void;

  constructor(options: ResolvedOptions, report: (state: ConnectionState) => void) {
    // Every lifetime has its own reporter: its name in events, and its instrumentation.
    const { connection, lifetime } = newLifetime(options.name);
    const reporter = new Reporter(connection, lifetime, options.telemetry);
    this.options = Object.freeze({ ...options, reporter });
    this.report = (state) => {
      report(state);
      reporter.emit({ type: 'connection.state', state });
    };
  }

  add(subscriber: Subscriber<Connection>): () => void {
    this.subscribers.push(subscriber);
    if (this.current !== undefined) subscriber.next(this.current);
    if (this.supervisor === undefined && !this.isOver) {
      this.supervisor = new Supervisor(
        this.options,
        {
          opened: (core) => {
            const connection = new Connection(core);
            this.connections.set(core, connection);
            this.current = connection;
            for (const s of this.subscribers.slice()) s.next(connection);
          },
          lost: (core) => {
            const connection = this.connections.get(core);
            if (this.current === connection) this.current = undefined;
            connection?.ended();
            // A shutdown under way: no reconnect.
            if (this.draining) this.supervisor?.stop();
          },
          ended: (error) => {
            this.isOver = true;
            const connection = this.current;
            this.current = undefined;
            connection?.ended();
            this.supervisor = undefined;
            const subscribers = this.subscribers.splice(0);
            for (const s of subscribers) {
              if (error === undefined) s.complete();
              else s.error(error);
            }
          },
          blocked: (core, reason) => {
            this.options.reporter.emit(
              reason === undefined
                ? { type: 'connection.unblocked' }
                : { type: 'connection.blocked', reason },
            );
            this.connections.get(core)?.dispatchBlocked(reason);
          },
        },
        this.report,
      );
      this.supervisor.start();
    }
    return () => {
      const i = this.subscribers.indexOf(subscriber);
      if (i >= 0) this.subscribers.splice(i, 1);
      if (this.subscribers.length === 0) {
        this.isOver = true;
        this.supervisor?.stop();
      }
    };
  }
}

/** @internal `openConnection()` bound to a platform by an entry point. */
export function openConnectionWith(
  platform: Platform,
  url?: string | ConnectOptions,
  options?: ConnectOptions,
): Promise<Connection> {
  const recovery = options?.recovery ?? (typeof url === 'object' ? url.recovery : undefined);
  if (recovery !== undefined && recovery !== false) {
    // The promise can hold one Connection only: the ones recovery opens later would be out of reach.
    return Promise.reject(
      new ConfigurationError(
        'openConnection() does not recover: use connect(url, { recovery }) and switchMap, or createPublisher, to carry on across reconnects',
      ),
    );
  }
  return keepFirst(connectWith(platform, url, options));
}

/** One line for the `debug` option: `rxamqp: RECONNECTING host:port (retry 2 in 200 ms): cause`. */
function describeState(state: ConnectionState): string {
  const where =
    (state.host === undefined ? '' : ` ${state.host}`) + (state.node === undefined ? '' : ` (${state.node})`);
  const when =
    state.status === 'RECONNECTING'
      ? ` (retry ${state.attempt ?? '?'} in ${state.delay ?? 0} ms)`
      : state.status === 'CONNECTING' && state.attempt !== undefined
        ? ` (attempt ${state.attempt})`
        : '';
  const cause = state.cause === undefined ? '' : `: ${state.cause.message}`;
  return `rxamqp: ${state.status}${where}${when}${cause}`;
}

/** What a drain reports when there is no open connection to drain. */
const CLOSED: DrainProgress = Object.freeze({
  phase: 'closed',
  consumers: 0,
  unsettled: 0,
  unconfirmed: 0,
  elapsed: 0,
  timedOut: false,
});
