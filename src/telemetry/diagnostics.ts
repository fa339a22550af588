/**
 * `diagnostics$`: the lifecycle events of every connection of the process (state changes, blocked
 * and unblocked, channels and consumers starting and ending), for those who want to log or count
 * them without OpenTelemetry. In Node the same events go to `node:diagnostics_channel` channels
 * (see `DIAGNOSTICS_CHANNELS`). Nothing is built while nobody listens.
 *
 * @module
 */
import { Observable, type Subscriber } from 'rxjs';
import type { ConnectionState } from '../core/connection-state.js';
import type { ChannelClosedError } from '../errors.js';

/** What every event says of the connection it is about. */
export interface DiagnosticSource {
  /**
   * Which connection: its `name` option when set, else `rxamqp-N` (N counting the connection
   * lifetimes of the process). The same across its reconnects.
   */
  readonly connection: string;
  /**
   * A number unique to the connection lifetime in the process (1, 2, ...): tells apart connections
   * that share a `name`. The same across its reconnects.
   */
  readonly lifetime: number;
  /** When, as `Date.now()`. */
  readonly time: number;
}

/**
 * One lifecycle event (see {@link diagnostics$}):
 * - `connection.state`: every change of state (the same as the connection Observable's `state$`);
 * - `connection.blocked` / `connection.unblocked`: the broker's resource alarms;
 * - `channel.open` / `channel.close` (with the error unless the client closed it);
 * - `consumer.start` / `consumer.end` (`byBroker` when the broker cancelled it).
 */
export type DiagnosticEvent =
  | (DiagnosticSource & { readonly type: 'connection.state'; readonly state: ConnectionState })
  | (DiagnosticSource & { readonly type: 'connection.blocked'; readonly reason: string })
  | (DiagnosticSource & { readonly type: 'connection.unblocked' })
  | (DiagnosticSource & { readonly type: 'channel.open'; readonly channel: number })
  | (DiagnosticSource & {
      readonly type: 'channel.close';
      readonly channel: number;
      readonly error: ChannelClosedError | undefined;
    })
  | (DiagnosticSource & {
      readonly type: 'consumer.start';
      readonly channel: number;
      readonly queue: string;
      readonly consumerTag: string;
    })
  | (DiagnosticSource & {
      readonly type: 'consumer.end';
      readonly channel: number;
      readonly queue: string;
      readonly consumerTag: string;
      readonly byBroker: boolean;
    });

/** The `type` of a {@link DiagnosticEvent}. */
export type DiagnosticType = DiagnosticEvent['type'];

const subscribers = new Set<Subscriber<DiagnosticEvent>>();

/** @internal Another listener (Node's diagnostics channels): `active()` says whether it listens now. */
export interface DiagnosticSink {
  active(): boolean;
  write(event: DiagnosticEvent): void;
}

let sink: DiagnosticSink | undefined;

/** @internal Set by the Node entry (see `node-diagnostics.ts`). */
export function setDiagnosticSink(value: DiagnosticSink | undefined): void {
  sink = value;
}

/**
 * The lifecycle events of every connection of the process, as they happen (hot: no replay). Each
 * names its connection (`connection`: the `name` option, or `rxamqp-N`). Subscribing costs nothing
 * to the client's hot paths: no event is about a message.
 *
 * @example
 * ```ts
 * diagnostics$.pipe(filter((e) => e.type === 'connection.blocked')).subscribe((e) => log.warn(e));
 * ```
 */
export const diagnostics$: Observable<DiagnosticEvent> = new Observable<DiagnosticEvent>((subscriber) => {
  subscribers.add(subscriber);
  return () => {
    subscribers.delete(subscriber);
  };
});

/** @internal True when someone listens to lifecycle events (`diagnostics$` or the Node channels). */
export function diagnosticsObserved(): boolean {
  return subscribers.size > 0 || sink?.active() === true;
}

/**
 * @internal Hands an event to `diagnostics$`'s subscribers and the Node channels. A subscriber's own
 * error is RxJS's to report (`config.onUnhandledError`), as for any subscription; the other
 * subscribers and the client carry on.
 */
export function emitDiagnostic(event: DiagnosticEvent): void {
  for (const s of [...subscribers]) s.next(event);
  if (sink?.active() === true) sink.write(event);
}

let lifetimes = 0;

/** @internal The `connection` and `lifetime` of a new connection lifetime's events. */
export function newLifetime(name: string | undefined): { connection: string; lifetime: number } {
  lifetimes++;
  return { connection: name ?? `rxamqp-${lifetimes}`, lifetime: lifetimes };
}
