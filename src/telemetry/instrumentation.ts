/**
 * The seam between the client and whatever observes it (OpenTelemetry through `rxamqp/otel`, or your
 * own): an {@link Instrumentation} given as the `telemetry` connection option is told of every
 * publish, every delivery and its settlement, and every lifecycle event of the connection and its
 * channels. Without the option the client calls nothing and allocates nothing for it.
 *
 * @module
 */

import type { DeliveryFields } from '../client/interfaces.js';
import type { PublishOutcome } from '../client/types.js';
import type { BasicProperties } from '../protocol/generated.js';
import type { DiagnosticEvent } from './diagnostics.js';

/** The broker a publish or a delivery went through. */
export interface Peer {
  /** Host name or address, as connected to. */
  readonly address: string;
  readonly port: number;
}

/** What {@link Instrumentation.publish} is told of a publish, before it is written. */
export interface PublishStart {
  readonly exchange: string;
  readonly routingKey: string;
  /** The properties as given (never changed by the client: a probe returns new ones). */
  readonly properties: BasicProperties | undefined;
  /** Body size in bytes. */
  readonly bodySize: number;
  readonly mandatory: boolean;
  /** True on a confirm-mode channel: the outcome is the broker's confirm. */
  readonly confirmed: boolean;
  readonly peer: Peer;
}

/** What an instrumentation keeps for one publish: see {@link Instrumentation.publish}. */
export interface PublishProbe {
  /**
   * The properties to publish instead of the given ones (a copy with the trace context in the
   * headers, say); undefined publishes the given ones.
   */
  readonly properties?: BasicProperties | undefined;
  /**
   * The publish is over: `outcome` is what `publish()` emits (`sent`, `acked`, `nacked`, `returned`);
   * without one, `error` says why it failed (a closed channel, a lost connection, dropped before it
   * was written when unsubscribed). Called once.
   */
  end(outcome: PublishOutcome | undefined, error: Error | undefined): void;
}

/** What {@link Instrumentation.deliver} is told of a delivery, before anyone sees it. */
export interface DeliveryStart {
  /** The queue consumed (or fetched from with `get`). */
  readonly queue: string;
  readonly fields: DeliveryFields;
  readonly properties: BasicProperties;
  readonly bodySize: number;
  /** True when the broker considers it settled on delivery (`noAck`). */
  readonly noAck: boolean;
  /** True for `channel.get` (basic.get, pulled), false for a consumer's delivery (pushed). */
  readonly pulled: boolean;
  readonly peer: Peer;
}

/** How a delivery's life ended, for {@link DeliveryProbe.end}. */
export type DeliveryEnd =
  | 'ack'
  | 'nack'
  | 'reject'
  /** A `noAck` delivery, handed to the application. */
  | 'auto'
  /** Its channel ended before it was settled: the broker delivers it again. */
  | 'lost';

/** What an instrumentation keeps for one delivery: see {@link Instrumentation.deliver}. */
export interface DeliveryProbe {
  /**
   * Runs `fn` as part of this delivery's processing (in its trace context): the client hands the
   * delivery to its subscribers inside it, and `ackOnSuccess` and the NestJS handlers run the user's
   * handler inside it. Must call `fn` once, synchronously, and return what it returns.
   */
  run<T>(fn: () => T): T;
  /**
   * The delivery was settled (`requeue` for nack and reject), auto-acknowledged (`noAck`, once its
   * subscribers have had it), or lost with its channel (`error` then says why). Called once.
   */
  end(how: DeliveryEnd, requeue: boolean, error?: Error): void;
}

/**
 * What observes a connection: give one as the `telemetry` option of `connect()`. Every method is
 * optional. `rxamqp/otel`'s `openTelemetry()` is one (spans, context propagation and metrics);
 * write your own for another tracer or for metrics of your own.
 *
 * The methods run inside the client's frame handling: they must not throw (what they throw is
 * caught and reported once with `console.error`, and the instrumentation is not called again for
 * that message), and they should be quick.
 *
 * @example
 * ```ts
 * const counting: Instrumentation = {
 *   publish: (p) => ({ end: (outcome) => metrics.count(`published.${outcome?.status ?? 'failed'}`) }),
 *   deliver: (d) => ({ run: (fn) => fn(), end: (how) => metrics.count(`settled.${how}`) }),
 *   event: (e) => log.info(e.type),
 * };
 * connect(url, { telemetry: counting });
 * ```
 */
export interface Instrumentation {
  /** A publish is about to be written; return a probe to follow it, or undefined. */
  publish?(start: PublishStart): PublishProbe | undefined;
  /** A delivery arrived; return a probe to follow it, or undefined. */
  deliver?(start: DeliveryStart): DeliveryProbe | undefined;
  /** A lifecycle event of the connection or one of its channels (see `diagnostics$`). */
  event?(event: DiagnosticEvent): void;
}

/**
 * Where the client keeps a trace context across an asynchronous gap it makes itself (a
 * publisher holding a message while disconnected): set by the instrumentation that has contexts
 * (`rxamqp/otel` sets it when made), undefined otherwise, and then nothing is captured.
 */
export interface AmbientContext {
  /** The context active now (opaque to the client). */
  capture(): unknown;
  /** Runs `fn` with `captured` active. */
  run<T>(captured: unknown, fn: () => T): T;
  /**
   * Runs `fn` with no trace context active. The client opens its sockets inside it: their callbacks
   * (deliveries, confirms, and whatever your code starts from them) would otherwise run in the
   * context of whoever happened to open the connection, a request long over.
   */
  detached<T>(fn: () => T): T;
}

let ambient: AmbientContext | undefined;

/** @internal See {@link AmbientContext}. */
export function ambientContext(): AmbientContext | undefined {
  return ambient;
}

/**
 * Lets the client keep trace contexts across the gaps it makes (a publisher holding messages while
 * disconnected). `rxamqp/otel` calls it; another tracing instrumentation with an ambient context
 * would too.
 *
 * @example
 * ```ts
 * setAmbientContext({
 *   capture: () => context.active(),
 *   run: (ctx, fn) => context.with(ctx as Context, fn),
 *   detached: (fn) => context.with(ROOT_CONTEXT, fn),
 * });
 * ```
 */
export function setAmbientContext(value: AmbientContext | undefined): void {
  ambient = value;
}

/**
 * The probes of the deliveries followed, by delivery: kept beside them rather than on them, so that
 * `util.inspect` or a logger given a delivery never shows a span (nor its resource).
 */
const probes = new WeakMap<object, DeliveryProbe>();

/** @internal Gives a delivery its probe. */
export function attachProbe(message: object, probe: DeliveryProbe): void {
  probes.set(message, probe);
}

/**
 * The delivery's probe, if the connection has an instrumentation that follows deliveries (undefined
 * otherwise, and for messages the client did not deliver).
 *
 * @example
 * ```ts
 * if (probeOf(delivery) === undefined) handle(delivery); // nothing follows it: no context to enter
 * else withinDelivery(delivery, () => handle(delivery));
 * ```
 */
export function probeOf(message: object): DeliveryProbe | undefined {
  return probes.get(message);
}

/**
 * Runs `fn` as part of `message`'s processing: inside its trace context when the connection traces
 * deliveries (see {@link DeliveryProbe.run}), directly otherwise. `ackOnSuccess` and the NestJS
 * handlers use it; use it where you hand a delivery to work of your own outside the consume
 * pipeline's synchronous path (a queue, a worker pool).
 *
 * @example
 * ```ts
 * deliveries$.pipe(bufferTime(100), mergeMap((batch) => batch.map((d) => withinDelivery(d, () => save(d)))));
 * ```
 */
export function withinDelivery<T>(message: object, fn: () => T): T {
  const probe = probes.get(message);
  return probe === undefined ? fn() : runProbe(probe, fn);
}

/**
 * Runs `fn` in a probe's context. A probe that fails does not keep `fn` from running once: it is
 * reported, and `fn`'s own result or error stands.
 */
export function runProbe<T>(probe: DeliveryProbe, fn: () => T): T {
  /** 0: `fn` not called yet; 1: `fn` running (or threw); 2: `fn` returned `result`. */
  let stage = 0;
  let result: T | undefined;
  try {
    return probe.run(() => {
      stage = 1;
      result = fn();
      stage = 2;
      return result;
    });
  } catch (error) {
    if (stage === 1) throw error;
    reportOnce(probe.run, error);
    return stage === 2 ? (result as T) : fn();
  }
}

/** Ends a delivery's probe, keeping its failure from the client. */
export function endProbe(probe: DeliveryProbe, how: DeliveryEnd, requeue: boolean, error?: Error): void {
  try {
    probe.end(how, requeue, error);
  } catch (e) {
    reportOnce(probe.end, e);
  }
}

/** True for what can serve as a publish probe: an object whose `end` is a function. */
export function isPublishProbe(value: unknown): value is PublishProbe {
  return typeof value === 'object' && value !== null && typeof (value as PublishProbe).end === 'function';
}

/** True for what can serve as a delivery probe: an object whose `run` and `end` are functions. */
export function isDeliveryProbe(value: unknown): value is DeliveryProbe {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as DeliveryProbe).run === 'function' &&
    typeof (value as DeliveryProbe).end === 'function'
  );
}

/** Calls an instrumentation method, keeping its failure from the client (reported once per method). */
export function guarded<A, R>(
  owner: object,
  method: ((this: object, arg: A) => R) | undefined,
  arg: A,
): R | undefined {
  if (method === undefined) return undefined;
  try {
    return method.call(owner, arg);
  } catch (error) {
    reportOnce(method, error);
    return undefined;
  }
}

const reported = new WeakSet<object>();
/**
 * The source text of the functions reported: an instrumentation makes a probe per message, and its
 * `end` and `run` are usually fresh closures of the same code, which count as one function here.
 */
const reportedSources = new Set<string>();

/** Reports an instrumentation's failure once per function: it must not break the client, nor flood the log. */
export function reportOnce(fn: unknown, error: unknown): void {
  if ((typeof fn === 'object' && fn !== null) || typeof fn === 'function') {
    if (reported.has(fn)) return;
    reported.add(fn);
  }
  const source = typeof fn === 'function' ? Function.prototype.toString.call(fn) : undefined;
  // Native and bound functions all show the same text: those are told apart by identity only.
  if (source !== undefined && !source.includes('[native code]')) {
    if (reportedSources.has(source)) return;
    reportedSources.add(source);
  }
  console.error(
    `rxamqp: the telemetry instrumentation failed (reported once): ${error instanceof Error ? error.message : String(error)}`,
  );
}
