/**
 * Watching a `connect()` Observable in a test: every connection it emits is kept, so a test can wait
 * for the n-th (a reconnect is the second), or for the error it ends with.
 */
import { firstValueFrom, lastValueFrom, type Observable, ReplaySubject, type Subscription, skip } from 'rxjs';
import type { Connection } from '../../src/node.js';

/** What {@link watchConnections} gives. */
export interface WatchedConnections {
  /** The n-th connection emitted (1 is the first). */
  nth(n: number): Promise<Connection>;
  /** The error the Observable ends with; rejects if it completes instead. */
  failure(): Promise<unknown>;
  /** The subscription (also pushed to the test's list, to be unsubscribed after the test). */
  readonly subscription: Subscription;
  /** Unsubscribes now. */
  stop(): void;
}

/** Subscribes to `source`, pushing the subscription to `subscriptions` (the test unsubscribes them after). */
export function watchConnections(
  source: Observable<Connection>,
  subscriptions: { unsubscribe(): void }[],
): WatchedConnections {
  const connections = new ReplaySubject<Connection>();
  const subscription = source.subscribe(connections);
  subscriptions.push(subscription);
  return {
    nth: (n) => firstValueFrom(connections.pipe(skip(n - 1))),
    failure: () =>
      lastValueFrom(connections).then(
        () => {
          throw new Error('expected the connection to fail');
        },
        (e: unknown) => e,
      ),
    subscription,
    stop: () => subscription.unsubscribe(),
  };
}
