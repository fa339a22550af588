/**
 * `messagesSignal`: the last messages of a stream as a signal, for templates. Angular's `toSignal`
 * keeps only the latest value; a live view of a queue wants the last few, bounded so that a long
 * session does not grow without end.
 *
 * @module
 */
import {
  assertInInjectionContext,
  DestroyRef,
  ErrorHandler,
  type Injector,
  inject,
  type Signal,
  signal,
} from '@angular/core';
import type { Observable } from 'rxjs';
import { ConfigurationError } from '../index.js';

/**
 * Options of {@link messagesSignal}.
 *
 * @example
 * ```ts
 * const options: MessagesSignalOptions = { keep: 50, injector: this.injector };
 * ```
 */
export interface MessagesSignalOptions {
  /** How many of the latest messages the signal holds (older ones drop off). Default 100. */
  readonly keep?: number;
  /**
   * The injector whose `DestroyRef` ends the subscription. Default: the current injection context's
   * (a component's field initializer or constructor), as `toSignal`.
   */
  readonly injector?: Injector;
}

/**
 * Subscribes to `source` and holds its last `keep` values, oldest first, in a read-only signal that
 * templates can read (zoneless applications included). The subscription ends with the injection
 * context (the component, the service) or the given injector; an error of the source goes to
 * Angular's `ErrorHandler` and the signal keeps what it had. Settle deliveries in the source (the
 * `autoAck` of `consume`, which `watch` has on, or an operator of `rxamqp/operators`).
 *
 * @example
 * ```ts
 * @Component({
 *   selector: 'app-feed',
 *   template: `@for (m of feed(); track $index) { <li>{{ m.text }}</li> }`,
 * })
 * export class FeedComponent {
 *   readonly feed = messagesSignal(
 *     inject(RxAmqp).watch('feed', '#').pipe(map((d) => ({ text: d.text(), key: d.fields.routingKey }))),
 *     { keep: 20 },
 *   );
 * }
 * ```
 */
export function messagesSignal<T>(
  source: Observable<T>,
  options: MessagesSignalOptions = {},
): Signal<readonly T[]> {
  const keep = options.keep ?? 100;
  if (!(Number.isInteger(keep) && keep >= 1) && keep !== Number.POSITIVE_INFINITY) {
    throw new ConfigurationError(
      `messagesSignal: keep must be a positive integer or Infinity, got ${String(keep)}`,
    );
  }
  if (options.injector === undefined) assertInInjectionContext(messagesSignal);
  const injector = options.injector;
  const destroyRef = injector === undefined ? inject(DestroyRef) : injector.get(DestroyRef);
  const errorHandler =
    injector === undefined ? inject(ErrorHandler, { optional: true }) : injector.get(ErrorHandler, null);
  const messages = signal<readonly T[]>([]);
  const subscription = source.subscribe({
    next: (value) =>
      messages.update((list) =>
        list.length < keep ? [...list, value] : [...list.slice(list.length - keep + 1), value],
      ),
    error: (error: unknown) => {
      if (errorHandler === null) console.error(error);
      else errorHandler.handleError(error);
    },
  });
  destroyRef.onDestroy(() => subscription.unsubscribe());
  return messages.asReadonly();
}
