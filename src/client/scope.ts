/**
 * `withChannel`: resources scoped to a piece of work. It opens a connection's channel for an inner
 * Observable and closes both when that work completes or errors, so that `lastValueFrom` over it
 * returns (a pipeline built with `switchMap` over `connect()` never completes: the connection stays
 * open as long as it is subscribed).
 *
 * @module
 */
import { from, Observable, type ObservableInput, switchMap, tap } from 'rxjs';
import type { Channel } from './channel.js';
import type { Connection } from './connection.js';

/**
 * Runs `work` on a fresh channel of the first connection `connection$` emits, emits what the work
 * emits, and when the work completes (or errors, or the subscriber leaves) closes the channel and
 * the connection by unsubscribing from them: the returned Observable completes (or errors) with the
 * work. An error opening the connection or the channel errors it too.
 *
 * Give it a connection Observable of its own (`connect(url)`): a shared or recovering one stays open
 * while other subscribers hold it. With `recovery`, a lost connection ends the work's operations
 * without a value, and the scope completes with them.
 *
 * @example
 * ```ts
 * import { connect, withChannel } from 'rxamqp';
 * import { concat, lastValueFrom } from 'rxjs';
 *
 * await lastValueFrom(
 *   withChannel(connect('amqp://localhost'), (ch) =>
 *     concat(ch.queueDeclare('jobs', { durable: true }), ch.publish('', 'jobs', 'hello')),
 *   ),
 * ); // resolves once published; the channel and the connection are closed
 * ```
 */
export function withChannel<T>(
  connection$: Observable<Connection>,
  work: (channel: Channel, connection: Connection) => ObservableInput<T>,
): Observable<T> {
  return new Observable<T>((subscriber) =>
    connection$
      .pipe(
        switchMap((connection) =>
          connection.channel().pipe(
            switchMap((ch) =>
              // The work's end is the scope's end: completing the subscriber unsubscribes from the
              // connection and channel Observables, which closes them with their handshakes.
              from(work(ch, connection)).pipe(tap({ complete: () => subscriber.complete() })),
            ),
          ),
        ),
      )
      .subscribe(subscriber),
  );
}
