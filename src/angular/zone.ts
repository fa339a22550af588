/**
 * The two zone crossings of `rxamqp/angular`. With zone.js, every callback registered inside Angular's
 * zone (a socket listener, a `setTimeout`) triggers change detection when it runs: a heartbeat every
 * few seconds, a read of each WebSocket message and each ack timer would re-render the application.
 * So the socket, the timers and the protocol work are started outside the zone (`outsideNgZone`), and
 * only what the application receives comes back in (`insideNgZone`), one change detection per
 * notification. In a zoneless application Angular's `NgZone` is a no-op and both cost nothing.
 *
 * @module
 */
import { type MonoTypeOperatorFunction, Observable } from 'rxjs';

/**
 * What the crossings need of Angular's `NgZone` (which has both methods, zoneless or not).
 *
 * @example
 * ```ts
 * const zone: ZoneRunner = inject(NgZone);
 * ```
 */
export interface ZoneRunner {
  run<T>(fn: () => T): T;
  runOutsideAngular<T>(fn: () => T): T;
}

/**
 * Subscribes to the source (and unsubscribes from it) outside Angular's zone, so that the sockets,
 * timers and listeners it sets up never trigger change detection. Its notifications arrive in
 * whatever zone their source runs in: follow it with {@link insideNgZone} to hand them to the
 * application.
 *
 * @example
 * ```ts
 * const zone = inject(NgZone);
 * connect('wss://app.example.com/amqp', { recovery: true }).pipe(
 *   switchMap((conn) => conn.channel()),
 *   switchMap((ch) => ch.consume('events', { noAck: true })),
 *   outsideNgZone(zone), // the socket and its heartbeats live outside the zone
 *   insideNgZone(zone), // each delivery comes back in: one change detection each
 * ).subscribe((d) => this.events.update((list) => [...list, d.text()]));
 * ```
 */
export function outsideNgZone<T>(zone: ZoneRunner): MonoTypeOperatorFunction<T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      const subscription = zone.runOutsideAngular(() => source.subscribe(subscriber));
      return () => zone.runOutsideAngular(() => subscription.unsubscribe());
    });
}

/**
 * Emits the source's notifications (values, error, completion) inside Angular's zone, so that
 * templates reading what they change are checked. Subscribing is left where it happens.
 *
 * @example
 * ```ts
 * amqpPipeline$.pipe(outsideNgZone(zone), insideNgZone(zone)).subscribe((d) => this.last = d.text());
 * ```
 */
export function insideNgZone<T>(zone: ZoneRunner): MonoTypeOperatorFunction<T> {
  return (source) =>
    new Observable<T>((subscriber) =>
      source.subscribe({
        next: (value) => zone.run(() => subscriber.next(value)),
        error: (error: unknown) => zone.run(() => subscriber.error(error)),
        complete: () => zone.run(() => subscriber.complete()),
      }),
    );
}

/** @internal The zone of an application without `NgZone` (a bare injector in a test): runs everything as is. */
export const NO_ZONE: ZoneRunner = Object.freeze({
  run: <T>(fn: () => T): T => fn(),
  runOutsideAngular: <T>(fn: () => T): T => fn(),
});
