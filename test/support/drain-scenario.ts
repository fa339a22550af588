/**
 * The drain scenarios, written once and run against the embedded broker (test/client/drain.test.ts)
 * and RabbitMQ (test/integration/drain.test.ts): a consumer with handlers in flight, drained.
 */
import { lastValueFrom, merge, type Observable, Subject, toArray } from 'rxjs';
import { ackOnSuccess } from '../../operators/index.js';
import type { Channel, Connection, Delivery, DrainOptions, DrainProgress } from '../../src/index.js';

export interface DrainFigures {
  /** Messages published to the queue before the run. */
  readonly published: number;
  /** Handlers started. */
  readonly started: number;
  /** Handlers that finished (each resolved). */
  readonly finished: number;
  /** `ack()` calls that sent an ack, by message id. */
  readonly acked: Map<number, number>;
  /** Message ids an ack was asked for more than once. */
  readonly doubleAcks: number;
  /** Messages left in the queue once drained (read back with a fresh consumer). */
  readonly leftInQueue: number[];
  /** Ids both acked and still in the queue (must be none). */
  readonly ackedAndLeft: number[];
  /** Ids neither acked nor in the queue (lost: must be none). */
  readonly lost: number[];
  readonly progress: DrainProgress[];
  /** How the consumer stream (after ackOnSuccess) ended. */
  readonly consumerEnd: 'complete' | Error | undefined;
  /** Results published by the handlers while the drain waited for them (all confirmed). */
  readonly resultsConfirmed: number;
}

export interface ScenarioOptions {
  readonly messages: number;
  readonly prefetch: number;
  readonly concurrency: number;
  /** How long each handler takes once released (ms), by index. */
  readonly handlerMs: (i: number) => number;
  /** When to start draining: once this many handlers have started. */
  readonly drainAfterStarted: number;
  /** Handlers never finish (to test the timeout). */
  readonly hang?: boolean;
  readonly drain: DrainOptions;
}

async function publishAll(ch: Channel, queue: string, n: number): Promise<void> {
  await lastValueFrom(ch.confirmSelect());
  const all: Observable<unknown>[] = [];
  for (let i = 0; i < n; i++) all.push(ch.publish('', queue, String(i)));
  await lastValueFrom(merge(...all), { defaultValue: undefined });
}

/** Reads every message of `queue` back (acking them), on a connection of its own. */
async function readBack(conn: Connection, queue: string): Promise<number[]> {
  const ch = await conn.openChannel();
  const ids: number[] = [];
  for (;;) {
    const got = await lastValueFrom(ch.get(queue), { defaultValue: undefined });
    if (got === undefined) break;
    ids.push(Number(got.text()));
    got.ack();
  }
  await lastValueFrom(ch.close());
  return ids;
}

/**
 * Publishes `messages` to a fresh queue, consumes them through `ackOnSuccess`, and drains the
 * connection once `drainAfterStarted` handlers have started; each handler publishes a result (with
 * confirms) before it finishes. Returns what happened to every message.
 */
export async function drainUnderLoad(
  open: () => Promise<Connection>,
  queue: string,
  o: ScenarioOptions,
): Promise<DrainFigures> {
  const admin = await open();
  const adminCh = await admin.openChannel();
  await lastValueFrom(adminCh.queueDelete(queue));
  await lastValueFrom(adminCh.queueDelete(`${queue}.results`));
  await lastValueFrom(adminCh.queueDeclare(queue));
  await lastValueFrom(adminCh.queueDeclare(`${queue}.results`));
  await publishAll(adminCh, queue, o.messages);

  const conn = await open();
  const ch = await conn.openChannel();
  const resultsCh = await conn.openChannel();
  await lastValueFrom(resultsCh.confirmSelect());

  let started = 0;
  let finished = 0;
  let resultsConfirmed = 0;
  const acked = new Map<number, number>();
  let doubleAcks = 0;
  const startedEnough = new Subject<void>();
  let consumerEnd: 'complete' | Error | undefined;
  const consumerDone = new Promise<void>((resolve) => {
    ch.consume(queue, { prefetch: o.prefetch })
      .pipe(
        ackOnSuccess(
          async (d: Delivery) => {
            const id = Number(d.text());
            const i = started++;
            if (started === o.drainAfterStarted) startedEnough.next();
            if (o.hang === true) await new Promise(() => {});
            await new Promise((r) => setTimeout(r, o.handlerMs(i)));
            // A handler finishing during the drain still publishes its result.
            const outcome = await lastValueFrom(resultsCh.publish('', `${queue}.results`, String(id)));
            if (outcome.status === 'acked') resultsConfirmed++;
            // Count the acks this delivery gets: ackOnSuccess acks once the handler returns.
            const ack = d.ack.bind(d);
            d.ack = (options) => {
              const sent = ack(options);
              const n = (acked.get(id) ?? 0) + 1;
              acked.set(id, n);
              if (n > 1) doubleAcks++;
              return sent;
            };
            finished++;
            return id;
          },
          { concurrency: o.concurrency },
        ),
      )
      .subscribe({
        error: (e: Error) => {
          consumerEnd = e;
          resolve();
        },
        complete: () => {
          consumerEnd = 'complete';
          resolve();
        },
      });
  });

  await new Promise<void>((resolve) => startedEnough.subscribe(() => resolve()));
  const progress = await lastValueFrom(conn.drain(o.drain).pipe(toArray()));
  // Hung handlers never end, and neither does the ackOnSuccess that runs them.
  if (o.hang !== true) await consumerDone;

  const leftInQueue = await readBack(admin, queue);
  const results = await readBack(admin, `${queue}.results`);
  const left = new Set(leftInQueue);
  const ackedAndLeft = [...acked.keys()].filter((id) => left.has(id));
  const lost: number[] = [];
  for (let id = 0; id < o.messages; id++) if (!acked.has(id) && !left.has(id)) lost.push(id);
  await lastValueFrom(adminCh.queueDelete(queue));
  await lastValueFrom(adminCh.queueDelete(`${queue}.results`));
  await lastValueFrom(admin.close());
  return {
    published: o.messages,
    started,
    finished,
    acked,
    doubleAcks,
    leftInQueue,
    ackedAndLeft,
    lost,
    progress,
    consumerEnd,
    resultsConfirmed: Math.min(resultsConfirmed, results.length),
  };
}
