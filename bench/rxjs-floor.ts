/**
 * `rxjs-floor`: what RxJS itself costs per message in the pipelines of the `natural-*` scenarios, with
 * no client and no socket: the floor under any AMQP client driven by the same operators. Each inner
 * Observable stands for one publish (or one handler), and completes the way a publish would:
 *
 * - `mergeMap 1000, completes at the end of the turn`: `range(0, n).pipe(mergeMap(inner, 1000))`
 *   where every inner completes, in order, at the end of the turn it was subscribed in, as confirms
 *   answer a confirm channel's publishes (the shape of `natural-confirm`'s `mergeMap`);
 * - `mergeMap 1000, completes at once`: the inner completes inside `subscribe`, as a publish without
 *   confirms does on a writable connection (`natural-publish`'s `mergeMap`);
 * - `concatMap, completes at once`: the same through `concatMap`;
 * - `mergeMap(async, 10)`: `mergeMap(async (x) => { await Promise.resolve(); return x; }, 10)` over a
 *   synchronous source, the shape of `natural-consume` without the deliveries.
 *
 * Measured in the runner's process like `codec`; 50,000 messages per round, as `natural-*` on the null broker.
 *
 * @module
 */
import { concatMap, ignoreElements, lastValueFrom, mergeMap, Observable, range, type Subscriber } from 'rxjs';
import type { Scenario, Workload } from './lib/types.js';

/** Inners waiting for the end of the turn, in subscription order. */
let waiting: Subscriber<number>[] = [];
let scheduled = false;

function completeWaiting(): void {
  scheduled = false;
  const subscribers = waiting;
  waiting = [];
  for (const s of subscribers) {
    s.next(1);
    s.complete();
  }
}

const atEndOfTurn = new Observable<number>((subscriber) => {
  waiting.push(subscriber);
  if (!scheduled) {
    scheduled = true;
    setImmediate(completeWaiting);
  }
});

const atOnce = new Observable<number>((subscriber) => {
  subscriber.next(1);
  subscriber.complete();
});

async function handler(x: number): Promise<number> {
  await Promise.resolve();
  return x;
}

function workload(name: string, run: (n: number) => Promise<unknown>): Workload {
  return {
    name,
    unit: 'message',
    params: { pipeline: name },
    // The size of a natural-* round on the null broker: mergeMap's buffer holds the rest of a
    // synchronous source, so the cost per message grows with n.
    opsPerRound: 50_000,
    async run(n) {
      await run(n);
      return undefined;
    },
  };
}

const rxjsFloor: Scenario = {
  name: 'rxjs-floor',
  description: "RxJS alone: the natural pipelines' operators with inner Observables that cost nothing",
  workloads: () => [
    workload('mergeMap 1000, completes at the end of the turn', (n) =>
      lastValueFrom(
        range(0, n).pipe(
          mergeMap(() => atEndOfTurn, 1000),
          ignoreElements(),
        ),
        {
          defaultValue: undefined,
        },
      ),
    ),
    workload('mergeMap 1000, completes at once', (n) =>
      lastValueFrom(
        range(0, n).pipe(
          mergeMap(() => atOnce, 1000),
          ignoreElements(),
        ),
        {
          defaultValue: undefined,
        },
      ),
    ),
    workload('concatMap, completes at once', (n) =>
      lastValueFrom(
        range(0, n).pipe(
          concatMap(() => atOnce),
          ignoreElements(),
        ),
        { defaultValue: undefined },
      ),
    ),
    workload('mergeMap(async, 10)', (n) =>
      lastValueFrom(range(0, n).pipe(mergeMap(handler, 10), ignoreElements()), { defaultValue: undefined }),
    ),
  ],
};

export default rxjsFloor;
