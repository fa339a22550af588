/**
 * What the marble kit needs from a test: a virtual-time scheduler and the marble parsers of the test
 * framework in use. Both RxJS's `TestScheduler` and rxjs-marbles' context provide them; the kit never
 * imports either, it is handed one.
 *
 * @module
 */
import { asyncScheduler, type Observable, type SchedulerLike } from 'rxjs';
import type { TestScheduler } from 'rxjs/testing';
import { ConfigurationError } from '../../errors.js';

/**
 * Builds an Observable from a marble diagram: RxJS's `cold`/`hot` helpers and rxjs-marbles' `m.cold`/`m.hot`.
 *
 * @example
 * ```ts
 * const cold: MarbleFactory = helpers.cold;
 * ```
 */
export type MarbleFactory = <T>(
  marbles: string,
  values?: { [marble: string]: T },
  error?: unknown,
) => Observable<T>;

/**
 * What `expectSubscriptions` takes: the `subscriptions` of a cold or hot test Observable.
 *
 * @example
 * ```ts
 * const logs: SubscriptionLogs = channel.cold('-a|', { a: 'x' }).subscriptions;
 * expectSubscriptions(logs).toBe('^-!');
 * ```
 */
export type SubscriptionLogs = ReturnType<TestScheduler['createColdObservable']>['subscriptions'];

/**
 * A test's scheduler and marble helpers, in any of the shapes the kit accepts:
 *
 * - an rxjs-marbles context (`m` in `marbles((m) => ...)`), which has `scheduler`, `cold` and `hot`;
 * - RxJS's run helpers with the scheduler added (`{ ...helpers, scheduler }` inside `scheduler.run`);
 * - a `TestScheduler` itself (its `createColdObservable` and `createHotObservable` are used).
 *
 * Use the kit inside `TestScheduler.run` (rxjs-marbles runs every test in it): one frame is one
 * virtual millisecond there, and the kit's delays are counted in frames. Without a context
 * (`marbleKit()`), the kit runs on `asyncScheduler` in real milliseconds for async tests: fake
 * deliveries, settlements and default acks work, marbles do not.
 *
 * @example
 * ```ts
 * const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
 * scheduler.run((helpers) => {
 *   const kit = marbleKit({ ...helpers, scheduler }); // or marbleKit(scheduler)
 * });
 * it('...', marbles((m) => { const kit = marbleKit(m); }));
 * ```
 */
export type MarbleContext =
  | { readonly scheduler: SchedulerLike; readonly cold: MarbleFactory; readonly hot: MarbleFactory }
  | (SchedulerLike & {
      createColdObservable: MarbleFactory;
      createHotObservable: MarbleFactory;
    });

/** @internal The context in one shape. */
export interface Clock {
  readonly scheduler: SchedulerLike;
  readonly cold: MarbleFactory;
  readonly hot: MarbleFactory;
  /** The current frame (virtual milliseconds). */
  now(): number;
  /** Runs `work` `delay` frames from now; the returned function cancels it. */
  later(work: () => void, delay: number): () => void;
}

/** @internal */
export function clockOf(context: MarbleContext | undefined): Clock {
  const { scheduler, cold, hot }: { scheduler: SchedulerLike; cold: MarbleFactory; hot: MarbleFactory } =
    context === undefined
      ? { scheduler: asyncScheduler, cold: noMarbles, hot: noMarbles }
      : 'createColdObservable' in context
        ? {
            scheduler: context,
            cold: context.createColdObservable.bind(context),
            hot: context.createHotObservable.bind(context),
          }
        : // rxjs-marbles' context methods need their `this`.
          { scheduler: context.scheduler, cold: context.cold.bind(context), hot: context.hot.bind(context) };
  return {
    scheduler,
    cold,
    hot,
    now: () => scheduler.now(),
    later: (work, delay) => {
      const subscription = scheduler.schedule(work, delay);
      return () => subscription.unsubscribe();
    },
  };
}

/** Without a test scheduler there is no marble parser. */
const noMarbles: MarbleFactory = (marbles) => {
  throw new ConfigurationError(
    `the marble kit needs a TestScheduler or rxjs-marbles context to read the marble '${marbles}': pass one to marbleKit()`,
  );
};
