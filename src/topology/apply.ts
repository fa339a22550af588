/**
 * Applying a topology to a broker: `applyTopology` declares a {@link Topology} on a channel of its own
 * and emits what was declared; `consumeSpec` starts a consumer described by a {@link ConsumerSpec}.
 *
 * @module
 */

import {
  catchError,
  concat,
  concatMap,
  defer,
  from,
  ignoreElements,
  type Observable,
  of,
  switchMap,
  tap,
  throwError,
} from 'rxjs';
import type { Channel } from '../client/channel.js';
import type { Connection } from '../client/connection.js';
import type { Delivery } from '../client/delivery.js';
import { ChannelClosedError, ConfigurationError } from '../errors.js';
import { INSPECT } from '../util/runtime.js';
import {
  type ConsumerSpec,
  describeStep,
  exchangeRefName,
  planTopology,
  type QueueRef,
  type QueueSpec,
  type Topology,
  type TopologyStep,
  toConsumeOptions,
  toExchangeDeclare,
  toQueueDeclare,
  validateConsumer,
  validateTopology,
} from './specs.js';

/**
 * Options of {@link applyTopology}.
 *
 * @example
 * ```ts
 * const check: ApplyTopologyOptions = { passive: true };
 * ```
 */
export interface ApplyTopologyOptions {
  /**
   * Only check that the topology's exchanges and named queues exist (passive declares), changing
   * nothing: a missing one errors with a `ChannelClosedError` whose `replyCode` is 404. Bindings are
   * not checked (AMQP cannot check a binding without making it) and server-named queues are skipped.
   * Default false.
   */
  passive?: boolean;
  /**
   * When an exchange or queue exists with other properties or arguments (the broker answers its
   * declare with 406 PRECONDITION_FAILED), delete it and declare it again as specified, on a fresh
   * channel, then go on. **Deleting a queue drops the messages it holds** and cancels its consumers;
   * deleting an exchange removes its bindings, including those from outside this topology. Each
   * entity is re-declared at most once per apply. Default false.
   */
  force?: boolean;
}

/**
 * A queue as the broker declared it.
 *
 * @example
 * ```ts
 * const { name, messageCount } = applied.queue(jobs)!;
 * ```
 */
export interface DeclaredQueue {
  /** The spec it was declared from. */
  readonly spec: QueueSpec;
  /** Its actual name: the spec's, or the one the broker generated for a server-named queue. */
  readonly name: string;
  /** Ready messages it held, from queue.declare-ok. */
  readonly messageCount: number;
  /** Consumers it had, from queue.declare-ok. */
  readonly consumerCount: number;
}

/**
 * What {@link applyTopology} did: the queues with their actual names and counts, and what `force`
 * re-declared.
 *
 * @example
 * ```ts
 * applyTopology(conn, t).subscribe((applied) => {
 *   console.log(applied.queueName(inbox), applied.queue(jobs)?.messageCount);
 * });
 * ```
 */
export interface AppliedTopology {
  /** The topology that was applied. */
  readonly topology: Topology;
  /** Whether it was only checked (`passive`). */
  readonly passive: boolean;
  /** Every queue declared (or checked), in the topology's order. */
  readonly queues: readonly DeclaredQueue[];
  /** What `force` deleted and declared again, in that order. */
  readonly redeclared: readonly { readonly kind: 'exchange' | 'queue'; readonly name: string }[];
  /**
   * The declared queue of a spec (the same object as in the topology), or of an actual name; undefined
   * when the topology did not declare it.
   */
  queue(ref: QueueRef): DeclaredQueue | undefined;
  /**
   * The actual name of a queue: for a spec of the topology, the name it was declared with (the
   * generated one for a server-named queue); a name is returned as it is.
   *
   * @throws ConfigurationError for a spec this topology did not declare.
   */
  queueName(ref: QueueRef): string;
}

class Applied implements AppliedTopology {
  constructor(
    readonly topology: Topology,
    readonly passive: boolean,
    readonly queues: readonly DeclaredQueue[],
    readonly redeclared: readonly { readonly kind: 'exchange' | 'queue'; readonly name: string }[],
  ) {}

  queue(ref: QueueRef): DeclaredQueue | undefined {
    return typeof ref === 'string'
      ? this.queues.find((q) => q.name === ref)
      : this.queues.find((q) => q.spec === ref);
  }

  queueName(ref: QueueRef): string {
    if (typeof ref === 'string') return ref;
    const declared = this.queue(ref);
    if (declared === undefined) {
      throw new ConfigurationError(
        `${ref.name === '' ? 'this server-named queue' : `queue '${ref.name}'`} was not declared by this topology${this.passive && ref.name === '' ? ' (a passive check skips server-named queues)' : ''}`,
      );
    }
    return declared.name;
  }

  [INSPECT](): string {
    return `AppliedTopology { queues: [${this.queues.map((q) => `'${q.name}'`).join(', ')}]${this.passive ? ', passive' : ''} }`;
  }
}

/** What a run collects as it goes. */
interface Progress {
  /** The next step to run. */
  index: number;
  readonly queues: Map<QueueSpec, DeclaredQueue>;
  readonly forced: Set<number>;
  readonly redeclared: { readonly kind: 'exchange' | 'queue'; readonly name: string }[];
}

/** The broker refused a declaration because the entity exists with other properties or arguments. */
function isMismatch(error: unknown): error is ChannelClosedError {
  return error instanceof ChannelClosedError && error.initiator === 'server' && error.replyCode === 406;
}

/**
 * Declares a topology: when subscribed, opens a channel of its own on `connection`, declares the
 * exchanges, then the queues, then the exchange-to-exchange bindings, then the queue bindings (see
 * `planTopology` for the exact order), closes the channel, emits one {@link AppliedTopology} and
 * completes. Cold: every subscription applies it again. Applying is idempotent: declaring what exists
 * with the same properties changes nothing (a server-named queue is a new queue each time, with a new
 * name). After a reconnect, apply it again on the new connection, inside the `switchMap`.
 *
 * Errors: a `ConfigurationError` for an invalid topology (before anything is sent); otherwise the
 * broker's typed error: a `ChannelClosedError` (404 NOT_FOUND for a passive check of something
 * missing, 406 PRECONDITION_FAILED for an entity that exists with other arguments, unless `force`,
 * 403 ACCESS_REFUSED, ...), or, for what the broker treats as a connection error (503 COMMAND_INVALID
 * for an unknown exchange type, such as `x-delayed-message` without its plugin), a `ChannelClosedError`
 * coded `CONNECTION_CLOSED` whose `cause` is the connection's `ConnectionClosedError`. The channel is
 * closed in every case, and when unsubscribed early.
 *
 * @example
 * ```ts
 * const orders = exchange({ name: 'orders', type: 'topic', durable: true });
 * const audit = queue({ name: '', exclusive: true });
 * const t = defineTopology({
 *   exchanges: [orders],
 *   queues: [audit],
 *   bindings: [binding({ exchange: orders, queue: audit, routingKey: 'order.#' })],
 * });
 *
 * connect(url).pipe(
 *   switchMap((conn) =>
 *     applyTopology(conn, t).pipe(
 *       switchMap((applied) => conn.channel().pipe(switchMap((ch) => consumeSpec(ch, { queue: audit, noAck: true }, applied)))),
 *     ),
 *   ),
 * ).subscribe((delivery) => console.log(delivery.fields.routingKey));
 * ```
 */
export function applyTopology(
  connection: Connection,
  topology: Topology,
  options: ApplyTopologyOptions = {},
): Observable<AppliedTopology> {
  return defer(() => {
    validateTopology(topology);
    const passive = options.passive ?? false;
    const force = options.force ?? false;
    if (passive && force) {
      throw new ConfigurationError('invalid topology options: passive and force exclude each other');
    }
    const steps = planTopology(topology);
    const progress: Progress = { index: 0, queues: new Map(), forced: new Set(), redeclared: [] };

    let lastChannel: Channel | undefined;
    /** Runs the steps from `progress.index` on a fresh channel, after `first` (a deletion by force). */
    const run = (first?: (ch: Channel) => Observable<unknown>): Observable<never> =>
      connection.channel().pipe(
        switchMap((ch) => {
          lastChannel = ch;
          return concat(
            first === undefined ? [] : first(ch),
            defer(() => from(steps.slice(progress.index))).pipe(
              concatMap((step) =>
                runStep(ch, step, passive, progress).pipe(tap({ complete: () => progress.index++ })),
              ),
            ),
            // Closing the channel completes `connection.channel()`, and with it this run.
            ch.close(),
          );
        }),
        ignoreElements(),
        catchError((error: unknown) => {
          const step = steps[progress.index];
          if (
            !force ||
            !isMismatch(error) ||
            step === undefined ||
            (step.kind !== 'exchange' && step.kind !== 'queue') ||
            progress.forced.has(progress.index)
          ) {
            return throwError(() => error);
          }
          progress.forced.add(progress.index);
          const name = step.spec.name;
          return run((ch) => {
            const deletion: Observable<unknown> =
              step.kind === 'exchange' ? ch.exchangeDelete(name) : ch.queueDelete(name);
            return deletion.pipe(
              tap({ complete: () => progress.redeclared.push({ kind: step.kind, name }) }),
            );
          });
        }),
      );

    return concat(
      run(),
      defer(() => {
        if (progress.index < steps.length) {
          // The channel ended without an error before every step was done (a recovering connection
          // completes its channels when it is lost): this topology was not applied.
          const error = lastChannel?.error;
          throw error instanceof ChannelClosedError
            ? error
            : new ChannelClosedError(
                'CHANNEL_CLOSED',
                `the channel closed before the topology was applied (at the ${describeStep(steps[progress.index]!)})`,
                { channel: lastChannel?.id ?? 0, initiator: 'client' },
              );
        }
        const queues = (topology.queues ?? []).flatMap((spec) => {
          const declared = progress.queues.get(spec);
          return declared === undefined ? [] : [declared];
        });
        return of<AppliedTopology>(
          new Applied(topology, passive, [...new Set(queues)], Object.freeze([...progress.redeclared])),
        );
      }),
    );
  });
}

/** One declaration or binding; records what it learns in `progress`. */
function runStep(ch: Channel, step: TopologyStep, passive: boolean, progress: Progress): Observable<unknown> {
  switch (step.kind) {
    case 'exchange': {
      const { exchange, type, options } = toExchangeDeclare(step.spec);
      return ch.exchangeDeclare(exchange, type, passive ? { passive: true } : options);
    }
    case 'queue': {
      const spec = step.spec;
      if (passive && spec.name === '') return of(undefined); // nothing to check: it would be a new queue
      const { queue, options } = toQueueDeclare(spec);
      return ch.queueDeclare(queue, passive ? { passive: true } : options).pipe(
        tap((ok) =>
          progress.queues.set(spec, {
            spec,
            name: ok.queue,
            messageCount: ok.messageCount,
            consumerCount: ok.consumerCount,
          }),
        ),
      );
    }
    case 'exchange-binding': {
      if (passive) return of(undefined);
      const { source, destination, routingKey, arguments: args } = step.spec;
      return ch.exchangeBind(
        exchangeRefName(destination),
        exchangeRefName(source),
        routingKey ?? '',
        args === undefined ? {} : { arguments: args },
      );
    }
    case 'queue-binding': {
      if (passive) return of(undefined);
      const { exchange, queue, routingKey, arguments: args } = step.spec;
      let queueName: string;
      if (typeof queue === 'string') queueName = queue;
      else {
        const declared = progress.queues.get(queue);
        if (declared === undefined) {
          // validateTopology guarantees the spec was declared before; this is a safety net.
          return throwError(
            () => new ConfigurationError(`${describeStep(step)}: its queue was not declared`),
          );
        }
        queueName = declared.name;
      }
      return ch.queueBind(
        queueName,
        exchangeRefName(exchange),
        routingKey ?? '',
        args === undefined ? {} : { arguments: args },
      );
    }
  }
}

/**
 * Starts the consumer a spec describes on `channel`: `basic.qos` with its `prefetch` (per consumer),
 * then `basic.consume` with its options, on the queue's actual name (from `applied` for a spec of an
 * applied topology, which a server-named queue needs). Returns the hot, shared delivery stream of
 * `channel.consume` (see its documentation for how it starts, ends and is settled). An invalid spec,
 * or a server-named queue without the `applied` that declared it, errors with a `ConfigurationError`.
 *
 * @example
 * ```ts
 * const worker = consumer({ queue: jobs, prefetch: 10 });
 * applyTopology(conn, t).pipe(
 *   switchMap((applied) => conn.channel().pipe(switchMap((ch) => consumeSpec(ch, worker, applied)))),
 *   ackOnSuccess((delivery) => handle(delivery.json())),
 * ).subscribe();
 * ```
 */
export function consumeSpec(
  channel: Channel,
  spec: ConsumerSpec,
  applied?: AppliedTopology,
): Observable<Delivery> {
  let queueName: string;
  try {
    validateConsumer(spec);
    queueName = resolveQueueName(spec.queue, applied);
  } catch (error) {
    return throwError(() => error);
  }
  return channel.consume(queueName, toConsumeOptions(spec));
}

function resolveQueueName(ref: QueueRef, applied: AppliedTopology | undefined): string {
  if (typeof ref === 'string') return ref;
  const declared = applied?.queue(ref);
  if (declared !== undefined) return declared.name;
  if (ref.name !== '') return ref.name;
  throw new ConfigurationError(
    applied === undefined
      ? 'a consumer of a server-named queue needs the AppliedTopology that declared it: consumeSpec(channel, spec, applied)'
      : 'the consumer refers to a server-named queue that this AppliedTopology did not declare',
  );
}
