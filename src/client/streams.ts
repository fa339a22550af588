/**
 * Consuming RabbitMQ stream queues over AMQP 0-9-1: where to start (`x-stream-offset`), the prefetch
 * a stream consumer must have, acknowledgements as the credit they are, the offset of each delivery,
 * and filter values (RabbitMQ 3.13+) with the client-side post-filter they need.
 *
 * @module
 */
import { Observable } from 'rxjs';
import { ConfigurationError } from '../errors.js';
import { type FieldTable, field, type TypedField } from '../protocol/field-table.js';
import type { BasicProperties } from '../protocol/generated.js';
import type { Channel } from './channel.js';
import { Delivery, type Settler } from './delivery.js';
import type { SettlementWatcher } from './interfaces.js';

/**
 * An interval back from now, as RabbitMQ reads it in `x-stream-offset` (and `x-max-age`): a whole
 * number and a unit, `Y` (years), `M` (months), `D` (days), `h`, `m` or `s`.
 *
 * @example
 * ```ts
 * const lastHour: StreamInterval = '1h';
 * ```
 */
export type StreamInterval = `${number}${'Y' | 'M' | 'D' | 'h' | 'm' | 's'}`;

/**
 * Where a stream consumer starts reading (`x-stream-offset`):
 *
 * - `'first'`: the oldest message the stream still has;
 * - `'last'`: the start of the last chunk written (a few of the latest messages, perhaps just one);
 * - `'next'`: only messages published from now on (the broker's default);
 * - a number or bigint: that offset (sent as a 64-bit integer); to resume, the last offset your
 *   application processed plus one;
 * - a `Date`: messages from that point in time (sent as an AMQP timestamp, whole seconds);
 * - a {@link StreamInterval} such as `'30m'`: messages from that long ago.
 *
 * Times select chunks, not messages: a consumer starting at a time may also receive a few messages
 * published shortly before it.
 *
 * @example
 * ```ts
 * const resume: StreamOffset = storedOffset + 1;
 * const today: StreamOffset = new Date(new Date().setUTCHours(0, 0, 0, 0));
 * const recent: StreamOffset = '15m';
 * ```
 */
export type StreamOffset = 'first' | 'last' | 'next' | number | bigint | Date | StreamInterval;

const INTERVAL = /^\d+[YMDhms]$/;

/**
 * @internal Checks a stream offset; returns what is wrong (`must be ...`, `is ...`), or undefined. RabbitMQ closes the
 * whole connection (541 INTERNAL_ERROR, seen on 3.10) for an offset string it cannot parse, so
 * offsets are checked before they are sent.
 *
 * @example
 * ```ts
 * streamOffsetProblem('1 hour'); // "must be 'first', 'last', 'next' or an interval ..."
 * ```
 */
export function streamOffsetProblem(offset: unknown): string | undefined {
  if (offset === 'first' || offset === 'last' || offset === 'next') return undefined;
  if (typeof offset === 'string') {
    return INTERVAL.test(offset)
      ? undefined
      : `must be 'first', 'last', 'next' or an interval such as '30m' (a whole number and Y, M, D, h, m or s), not '${offset}'`;
  }
  if (typeof offset === 'number') {
    return Number.isSafeInteger(offset) && offset >= 0
      ? undefined
      : `must be an integer ≥ 0, not ${String(offset)}`;
  }
  if (typeof offset === 'bigint') {
    return offset >= 0n && offset < 2n ** 63n ? undefined : `must be from 0 to 2^63 - 1, not ${offset}`;
  }
  if (offset instanceof Date) {
    return Number.isNaN(offset.getTime()) ? 'is an invalid Date' : undefined;
  }
  return `must be 'first', 'last', 'next', a number, a bigint, a Date or an interval such as '30m', not ${String(offset)}`;
}

/**
 * The `x-stream-offset` consumer argument for an offset, with the wire type RabbitMQ reads: a long
 * string for `first` / `last` / `next` and intervals, a 64-bit integer (`l`) for an offset, a
 * timestamp (`T`) for a `Date`.
 *
 * @throws ConfigurationError for an invalid offset (a negative or fractional number, an invalid Date,
 * a string that is none of the names and no interval).
 *
 * @example
 * ```ts
 * encodeStreamOffset(42); // field.int64(42)
 * encodeStreamOffset(new Date()); // field.timestamp(...)
 * encodeStreamOffset('1h'); // '1h'
 * ```
 */
export function encodeStreamOffset(offset: StreamOffset): string | TypedField {
  const problem = streamOffsetProblem(offset);
  if (problem !== undefined) throw new ConfigurationError(`invalid stream offset: it ${problem}`);
  if (typeof offset === 'number' || typeof offset === 'bigint') return field.int64(offset);
  if (offset instanceof Date) return field.timestamp(offset);
  return offset;
}

/** The header a publisher sets to a message's filter value (RabbitMQ 3.13+). */
export const STREAM_FILTER_VALUE_HEADER = 'x-stream-filter-value';

/** The header in which each stream delivery carries its offset. */
export const STREAM_OFFSET_HEADER = 'x-stream-offset';

/**
 * Message properties with a stream filter value: `properties` with the `x-stream-filter-value`
 * header added (the rest kept). Brokers before 3.13 store the header like any other.
 *
 * @throws ConfigurationError when the value is not a non-empty string.
 *
 * @example
 * ```ts
 * ch.publish('', 'events', body, withStreamFilterValue('emea', { contentType: 'application/json' }));
 * ```
 */
export function withStreamFilterValue(value: string, properties: BasicProperties = {}): BasicProperties {
  if (typeof value !== 'string' || value === '') {
    throw new ConfigurationError('a stream filter value must be a non-empty string');
  }
  return { ...properties, headers: { ...properties.headers, [STREAM_FILTER_VALUE_HEADER]: value } };
}

/**
 * Filtering a stream consumer's messages. The broker (RabbitMQ 3.13+) skips chunks that hold none of
 * `values`, but a chunk it sends may hold other messages too, and brokers before 3.13 ignore the
 * filter: `consumeStream` therefore checks every delivery again (the post-filter RabbitMQ requires)
 * and grants credit for those it drops.
 *
 * @example
 * ```ts
 * const filter: StreamFilter = { values: ['emea'], matchUnfiltered: true };
 * ```
 */
export interface StreamFilter {
  /** The filter values wanted (`x-stream-filter`): at least one. */
  readonly values: readonly string[];
  /**
   * Also receive messages published without a filter value (`x-stream-match-unfiltered`). Default
   * false.
   */
  readonly matchUnfiltered?: boolean;
  /**
   * The client-side post-filter: whether to emit a delivery. Default: its `x-stream-filter-value`
   * is one of `values`, or it has none and `matchUnfiltered` is true. Give your own when the filter
   * value stands for something finer in the message (a predicate on a header, say). A predicate that
   * throws errors the stream.
   */
  readonly postFilter?: (delivery: StreamDelivery) => boolean;
}

/**
 * Options of {@link consumeStream}.
 *
 * @example
 * ```ts
 * const options: StreamConsumeOptions = { offset: 'first', prefetch: 100 };
 * ```
 */
export interface StreamConsumeOptions {
  /** Where to start. Default `'next'`: only messages published from now on. */
  readonly offset?: StreamOffset;
  /**
   * How many deliveries the broker may send before credit comes back (basic.qos per consumer; a
   * stream consumer must have one): 1 to 65535.
   */
  readonly prefetch: number;
  /**
   * When credit goes back to the broker (with a basic.ack: a stream never requeues):
   *
   * - `'auto'` (default): once each delivery has been emitted, that is, after the subscribers'
   *   `next` returned; no `ack()` needed (calling it is harmless and returns false);
   * - `'manual'`: when the application settles the delivery; `ack()`, `nack()` and `reject()` all
   *   grant credit, so operators such as `ackOnSuccess` work, and `prefetch` bounds the messages in
   *   processing. A delivery never settled holds its credit until the consumer ends.
   */
  readonly credit?: 'auto' | 'manual';
  /** Filter values (RabbitMQ 3.13+ filters on the broker; the client post-filters on every version). */
  readonly filter?: StreamFilter;
  /** A consumer tag of your choice; default: one the broker generates. */
  readonly consumerTag?: string;
  /** Be the stream's only consumer. Default false. */
  readonly exclusive?: boolean;
  /** Other consumer arguments (`x-priority`, ...); the offset and filter keys are set from the options above. */
  readonly arguments?: FieldTable;
}

/**
 * A message from a stream, with its offset. Settling it (any of `ack`, `nack`, `reject`) only grants
 * the broker credit: a stream keeps every message, so nothing is requeued or dead-lettered (and
 * RabbitMQ would close the connection for a real nack or reject on a stream).
 *
 * @example
 * ```ts
 * consumeStream(ch, 'events', { offset: stored + 1, prefetch: 100 }).subscribe((d) => {
 *   handle(d.json());
 *   store(d.streamOffset); // resume later from d.streamOffset + 1
 * });
 * ```
 */
export class StreamDelivery extends Delivery {
  /** @internal Stream deliveries come from `consumeStream`. */
  constructor(
    private readonly inner: Delivery,
    /**
     * The message's offset in the stream (its `x-stream-offset` header). Offsets rise but may skip
     * numbers (the stream also records entries that are not messages): resume from the last
     * processed one plus one, never from a count of messages.
     */
    readonly streamOffset: number,
  ) {
    super(inner.body, inner.properties, inner.fields, new CreditSettler(inner), inner.headersError);
  }

  /**
   * While its connection drains with `prefetched: 'return'`: grants its credit without processing it
   * and returns true (a stream keeps every message: the application reads it again from its stored
   * offset); otherwise false. See `Delivery.returnForDrain`.
   */
  override returnForDrain(): boolean {
    if (this.settled || !this.inner.returnForDrain()) return false;
    this.markSettled();
    return true;
  }

  /** What `JSON.stringify` shows: as for any delivery, plus the stream offset. */
  override toJSON(): ReturnType<Delivery['toJSON']> & { streamOffset: number } {
    return { ...super.toJSON(), streamOffset: this.streamOffset };
  }

  /** The message's filter value (`x-stream-filter-value`), if its publisher gave one. */
  get filterValue(): string | undefined {
    const value = this.properties.headers?.[STREAM_FILTER_VALUE_HEADER];
    return typeof value === 'string' ? value : undefined;
  }
}

/** Turns every settlement of a stream delivery into an ack of the delivery underneath: credit. */
class CreditSettler implements Settler {
  constructor(private readonly delivery: Delivery) {}

  settle(_kind: 'ack' | 'nack' | 'reject', _deliveryTag: number, multiple: boolean): boolean {
    return this.delivery.ack({ multiple });
  }

  watch(watcher: SettlementWatcher): boolean {
    return this.delivery.watchSettlement(watcher);
  }

  unwatch(watcher: SettlementWatcher): void {
    this.delivery.unwatchSettlement(watcher);
  }
}

/**
 * @internal The consumer arguments for a stream consumer.
 *
 * @throws ConfigurationError for invalid options.
 *
 * @example
 * ```ts
 * streamConsumeArguments({ offset: 42, prefetch: 10 }); // { 'x-stream-offset': field.int64(42) }
 * ```
 */
export function streamConsumeArguments(options: StreamConsumeOptions): FieldTable {
  const args: FieldTable = { ...options.arguments };
  args['x-stream-offset'] = encodeStreamOffset(options.offset ?? 'next');
  const filter = options.filter;
  if (filter !== undefined) {
    args['x-stream-filter'] = [...filter.values];
    if (filter.matchUnfiltered !== undefined) args['x-stream-match-unfiltered'] = filter.matchUnfiltered;
  }
  return args;
}

function checkOptions(options: StreamConsumeOptions): void {
  const fail = (problem: string): never => {
    throw new ConfigurationError(`invalid stream consumer: ${problem}`);
  };
  if (typeof options !== 'object' || options === null) fail('options must be an object');
  const { prefetch, credit, filter } = options;
  if (typeof prefetch !== 'number' || !Number.isInteger(prefetch) || prefetch < 1 || prefetch > 0xffff) {
    fail(
      `prefetch must be an integer from 1 to 65535 (a stream consumer needs one), not ${String(prefetch)}`,
    );
  }
  if (credit !== undefined && credit !== 'auto' && credit !== 'manual') {
    fail(`credit must be 'auto' or 'manual', not '${String(credit)}'`);
  }
  if (filter !== undefined) {
    if (
      !Array.isArray(filter.values) ||
      filter.values.length === 0 ||
      !filter.values.every((v) => typeof v === 'string' && v !== '')
    ) {
      fail('filter.values must be a non-empty array of non-empty strings');
    }
    if (filter.matchUnfiltered !== undefined && typeof filter.matchUnfiltered !== 'boolean') {
      fail('filter.matchUnfiltered must be a boolean');
    }
    if (filter.postFilter !== undefined && typeof filter.postFilter !== 'function') {
      fail('filter.postFilter must be a function');
    }
  }
}

/** The default post-filter: the message's filter value is wanted, or it has none and that is wanted. */
function defaultPostFilter(filter: StreamFilter): (delivery: StreamDelivery) => boolean {
  const wanted = new Set(filter.values);
  const unfiltered = filter.matchUnfiltered ?? false;
  return (delivery) => {
    const value = delivery.filterValue;
    return value === undefined ? unfiltered : wanted.has(value);
  };
}

/**
 * Consumes a stream queue from `offset`: each subscription starts its own consumer (basic.qos with
 * `prefetch`, then basic.consume with `x-stream-offset` and any filter), and emits
 * {@link StreamDelivery}s carrying their offsets. Credit goes back to the broker automatically
 * (`credit: 'auto'`) or when you settle each delivery (`'manual'`); no settlement ever requeues.
 * Messages that the filter's post-filter refuses, and any below a numeric `offset`, are not emitted
 * (their credit is granted at once). Unsubscribing cancels the consumer; deliveries crossing the
 * cancel only grant credit. It ends as `channel.consume` does (completes when the client closes the
 * channel; errors with `ConsumerCancelledError` when the stream is deleted, with the channel's error
 * when it fails).
 *
 * It errors with a `ConfigurationError` for invalid options (before anything is sent), or if a
 * delivery comes without an `x-stream-offset` header: the queue is not a stream (RabbitMQ refuses
 * stream arguments on other queues with 406, so only a broker that ignores them gets there). That
 * delivery is left unsettled, to go back to the queue when the channel closes, and the ones crossing
 * the cancel are requeued.
 *
 * To resume after a restart or a reconnect, store the offset of the last delivery processed and
 * start again from the one after it: `offset: stored + 1` gives exactly the messages after it.
 *
 * @example
 * ```ts
 * let last: number | undefined = await loadOffset();
 * connect(url).pipe(
 *   switchMap((conn) => conn.channel()),
 *   // evaluated on every (re)connection: starts after the last offset processed
 *   switchMap((ch) => consumeStream(ch, 'events', { offset: last === undefined ? 'first' : last + 1, prefetch: 200 })),
 * ).subscribe((d) => {
 *   handle(d.json());
 *   last = d.streamOffset;
 * });
 * ```
 */
export function consumeStream(
  channel: Channel,
  queue: string,
  options: StreamConsumeOptions,
): Observable<StreamDelivery> {
  return new Observable<StreamDelivery>((subscriber) => {
    let args: FieldTable;
    try {
      checkOptions(options);
      args = streamConsumeArguments(options);
    } catch (error) {
      subscriber.error(error);
      return undefined;
    }
    const auto = (options.credit ?? 'auto') === 'auto';
    const filter = options.filter;
    const accept = filter === undefined ? undefined : (filter.postFilter ?? defaultPostFilter(filter));
    // RabbitMQ 3.10 starts at the offset asked for, but a chunk can begin before it: skip those.
    const from =
      typeof options.offset === 'number' || typeof options.offset === 'bigint' ? Number(options.offset) : 0;
    return channel
      .consume(queue, {
        prefetch: options.prefetch,
        arguments: args,
        ...(options.consumerTag === undefined ? {} : { consumerTag: options.consumerTag }),
        ...(options.exclusive === undefined ? {} : { exclusive: options.exclusive }),
      })
      .subscribe({
        next: (inner) => {
          const header = inner.properties.headers?.[STREAM_OFFSET_HEADER];
          if (typeof header !== 'number' && typeof header !== 'bigint') {
            // Not a stream: left unsettled (an ack would drop it), it goes back when the channel closes.
            subscriber.error(
              new ConfigurationError(
                `a delivery from '${queue}' has no ${STREAM_OFFSET_HEADER} header: consumeStream needs a stream queue`,
              ),
            );
            return;
          }
          // Past 2^53 the offset loses precision: 2^53 messages take 285 years at a million a second.
          const delivery = new StreamDelivery(inner, Number(header));
          if (delivery.streamOffset < from) {
            delivery.ack();
            return;
          }
          if (accept !== undefined) {
            let wanted: boolean;
            try {
              wanted = accept(delivery);
            } catch (error) {
              delivery.ack();
              subscriber.error(error);
              return;
            }
            if (!wanted) {
              delivery.ack();
              return;
            }
          }
          subscriber.next(delivery);
          if (auto) delivery.ack();
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      });
  });
}
