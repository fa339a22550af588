/**
 * The types fake channels are configured and observed with: their options, the reply scripts that
 * answer publishes, and the events they record.
 *
 * @module
 */
import type { Observable } from 'rxjs';
import type { Confirmation, PublishOutcome } from '../../client/types.js';
import type { PublishedMessage } from './message.js';
import type { Settlement } from './settlement.js';

/**
 * How the broker answers one publish: a marble read from the publish's write (or from its submission,
 * when it holds a `w`), whose first outcome letter is the answer: `a` acked, `n` nacked, `r` returned
 * (312 NO_ROUTE, as a `mandatory` message no queue took; a message published without `mandatory` is
 * not returned but acked, as RabbitMQ does), `s` sent (no confirm), `#` an error (the
 * channel's `error` option): `'--a'` acks two frames later, `'-'` never answers. A `w` holds the
 * message unwritten until that frame, as behind a full socket: `publishWith` returns a handle whose
 * `cancel()` drops it until then (`'--w-a'`: written 2 frames after the publish, acked 2 later). Or any
 * Observable of a `PublishOutcome` (its first value is the outcome), subscribed when the message is
 * written. Answers are reported in publish order, as on a real channel (see
 * {@link FakeChannelOptions.inOrder}): a publish answered before an earlier one waits for it.
 *
 * @example
 * ```ts
 * const slowNack: Reply = '---n';
 * const heldThenAcked: Reply = '--w-a';
 * const custom: Reply = of({ status: 'acked', seq: 99 } as const);
 * ```
 */
export type Reply = string | Observable<PublishOutcome>;

/**
 * Which publish a {@link ReplyScript} function is answering.
 *
 * @example
 * ```ts
 * const nackFirstTries: ReplyScript = (_, { attempt }: PublishInfo) => (attempt === 1 ? 'n' : 'a');
 * ```
 */
export interface PublishInfo {
  /** Which publish of the channel this is (1, 2, ...; the sequence number too when every publish is written, in order, in confirm mode). */
  readonly index: number;
  /** How many publishes of the same exchange, routing key and body came before it, plus one. */
  readonly attempt: number;
}

/**
 * The confirms of a fake channel: one {@link Reply} for every publish, or a function that gives each
 * publish its reply.
 *
 * @example
 * ```ts
 * // Nack the first attempt of 'b', ack everything else two frames after its publish:
 * const script: ReplyScript = (message, { attempt }) => (message.text === 'b' && attempt === 1 ? '-n' : '--a');
 * ```
 */
export type ReplyScript = Reply | ((message: PublishedMessage, publish: PublishInfo) => Reply);

/**
 * Options of a fake channel.
 *
 * @example
 * ```ts
 * kit.channel({ reply: (m) => (m.routingKey === 'lost' ? 'r' : '-a'), consumerTag: 'ctag-1' });
 * ```
 */
export interface FakeChannelOptions {
  /** The channel number. Default: the kit's next (1, 2, ...). */
  readonly id?: number;
  /** Confirm mode (`confirmMode`, outcomes from `reply`). Default true; false: every publish is `sent` when written. */
  readonly confirm?: boolean;
  /** How the broker answers each publish in confirm mode. Default: acked `confirmDelay` frames after the publish. */
  readonly reply?: ReplyScript;
  /** Frames between a publish and its default ack. Default 0 (the same frame, after the publish). */
  readonly confirmDelay?: number;
  /**
   * Report each publish's outcome (its `done`, `publish()`'s value, `confirms$`) in publish order, as
   * a `Channel` does (and a `Publisher` between reconnects): a publish answered before an earlier one
   * waits for it (the broker may confirm out of order; the client smooths that). Default true; false
   * reports each outcome as soon as its reply answers, as a `PublishTarget` that does not order its
   * confirms would (to test code that must cope with that). `returns$` is never held back.
   */
  readonly inOrder?: boolean;
  /** What `#` in a reply marble errors the publish with. Default: an `Error` naming the publish. */
  readonly error?: unknown;
  /** Start blocked: publishes wait, unwritten (and cancellable), until `unblock()`. Default false. */
  readonly blocked?: boolean;
  /** The `consumerTag` of the deliveries made with `delivery`, `cold` and `hot`. Default: none. */
  readonly consumerTag?: string;
}

/**
 * Everything that happened on a fake channel, in order, with its frame: a settlement received, a
 * message published (written), a publish dropped unwritten (`cancel()`), a confirm, the close.
 *
 * @example
 * ```ts
 * expect(channel.events.map((e) => [e.time, e.type])).toEqual([[2, 'published'], [4, 'settled']]);
 * ```
 */
export type ChannelEvent =
  | { readonly time: number; readonly type: 'settled'; readonly settlement: Settlement }
  | { readonly time: number; readonly type: 'published'; readonly message: PublishedMessage }
  | { readonly time: number; readonly type: 'cancelled'; readonly message: PublishedMessage }
  | { readonly time: number; readonly type: 'confirmed'; readonly confirmation: Confirmation }
  | { readonly time: number; readonly type: 'closed'; readonly error: Error | undefined };
