/**
 * `publishConfirmed`: publishes a stream of messages on a confirm-mode channel with a bounded number
 * awaiting the broker's confirms, emitting each message's outcome in source order.
 *
 * @module
 */
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import {
  type BasicProperties,
  ConfigurationError,
  PublishNackedError,
  type PublishOutcome,
  type PublishTarget,
} from '../src/index.js';

const utf8 = new TextEncoder();

/** A message to publish. */
export interface OutgoingMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Uint8Array | string;
  readonly properties?: BasicProperties;
  /** Return it (outcome `returned`) when no queue is bound to receive it. */
  readonly mandatory?: boolean;
}

/** What `publishConfirmed` emits for each message, in source order. */
export interface PublishResult<M extends OutgoingMessage = OutgoingMessage> {
  readonly message: M;
  /** The broker's answer to the last attempt (`sent` only from a target that does not say whether it confirms). */
  readonly outcome: PublishOutcome;
  /** How many times it was published (more than 1 after nacks under a retry policy). */
  readonly attempts: number;
}

/** What a nack does. */
export type NackPolicy =
  /** Error the stream with a `PublishNackedError` (the default). */
  | 'error'
  /** Emit the `nacked` outcome and go on. */
  | 'emit'
  /** Publish it again, up to `retry` more times; then do `exhausted` (default `'error'`). */
  | { readonly retry: number; readonly exhausted?: 'error' | 'emit' };

/** Options of {@link publishConfirmed}. */
export interface PublishConfirmedOptions {
  /** Most publishes awaiting their confirm at once. Default 1000. */
  readonly window?: number;
  /** What a nack does. Default `'error'`. */
  readonly onNack?: NackPolicy;
  /**
   * Publish on a target that is not in confirm mode: every outcome is then `sent` (the frames are on
   * the socket), and the window bounds the publishes waiting for the socket. Default false: such a
   * target is refused with a `ConfigurationError`, since nothing would be confirmed.
   */
  readonly allowUnconfirmed?: boolean;
}

/**
 * Publishes each message of the source on `channel` (put it in confirm mode first with
 * `confirmSelect()`), with at most `window` publishes awaiting the broker's confirms at once: the
 * next message goes out as a confirm comes back. Emits `{ message, outcome, attempts }` for every
 * message **in source order**, whatever order the broker answers in; `returned` outcomes (mandatory
 * messages no queue received) are emitted, not retried. Nacks follow `onNack`. The stream errors
 * with the channel's error if the channel or connection goes away (every publish in flight settles
 * then), and completes once the source has completed and every message has its outcome.
 *
 * RxJS cannot slow down a push source: messages beyond the window wait in the operator (and `from()`
 * runs a whole generator at once). When the stream would not fit in memory, produce it in pages, one
 * page per `concatMap` step, each page through `publishConfirmed`.
 *
 * @example
 * ```ts
 * ch.confirmSelect().pipe(
 *   switchMap(() => from(orders)),
 *   map((order) => ({ exchange: 'orders', routingKey: order.region, body: JSON.stringify(order) })),
 *   publishConfirmed(ch, { window: 500, onNack: { retry: 2 } }),
 * ).subscribe(({ message, outcome }) => console.log(message.routingKey, outcome.status));
 * ```
 */
export function publishConfirmed<M extends OutgoingMessage>(
  channel: PublishTarget,
  options: PublishConfirmedOptions = {},
): OperatorFunction<M, PublishResult<M>> {
  const window = options.window ?? 1000;
  if (!Number.isInteger(window) || window < 1) {
    throw new ConfigurationError(
      `publishConfirmed: window must be a positive integer, got ${String(window)}`,
    );
  }
  const policy = options.onNack ?? 'error';
  const retries = typeof policy === 'object' ? policy.retry : 0;
  const exhausted = typeof policy === 'object' ? (policy.exhausted ?? 'error') : policy;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new ConfigurationError(
      `publishConfirmed: onNack.retry must be a non-negative integer, got ${String(retries)}`,
    );
  }

  // A hand-written operator rather than mergeMap over publish(): no Observable, subscriber or closure
  // per message, which is most of the cost of a confirmed publish.
  return (source) =>
    new Observable<PublishResult<M>>((subscriber) => {
      /** Messages published and not yet emitted, in source order, from `head`. */
      let slots: (Slot<M> | undefined)[] = [];
      let head = 0;
      /** Messages waiting for room in the window, from `next`. */
      let waiting: (M | undefined)[] = [];
      let next = 0;
      let inFlight = 0;
      let sourceDone = false;
      let stopped = false;

      const stop = (error: unknown): void => {
        if (stopped) return;
        stopped = true;
        subscriber.error(error);
      };

      const settle = (slot: Slot<M>, outcome: PublishOutcome | undefined, error?: Error): void => {
        if (stopped) return;
        inFlight--;
        slot.subscription = undefined;
        slot.waiting = undefined;
        if (outcome === undefined) {
          stop(error);
          return;
        }
        if (outcome.status === 'nacked') {
          if (slot.attempts <= retries) {
            slot.attempts++;
            send(slot);
            return;
          }
          if (exhausted === 'error') {
            const { exchange, routingKey } = slot.message;
            stop(new PublishNackedError(exchange, routingKey, outcome.seq, slot.attempts));
            return;
          }
        }
        slot.result = { message: slot.message, outcome, attempts: slot.attempts };
        // Emit what is ready, in source order.
        while (head < slots.length) {
          const ready = slots[head]?.result;
          if (ready === undefined) break;
          slots[head++] = undefined;
          subscriber.next(ready);
          if (stopped) return;
        }
        if (head >= 1024 && head * 2 >= slots.length) {
          slots = slots.slice(head);
          head = 0;
        }
        fill();
        if (sourceDone && inFlight === 0 && next === waiting.length) subscriber.complete();
      };

      const send = (slot: Slot<M>): void => {
        inFlight++;
        const m = slot.message;
        if (channel.publishWith !== undefined) {
          slot.waiting = channel.publishWith(
            m.exchange,
            m.routingKey,
            slot.body,
            m.properties,
            m.mandatory ?? false,
            slot,
            settle,
          );
          return;
        }
        let outcome: PublishOutcome | undefined;
        const subscription = channel
          .publish(m.exchange, m.routingKey, slot.body, m.properties, { mandatory: m.mandatory ?? false })
          .subscribe({
            next: (o) => {
              outcome = o;
            },
            error: (e: Error) => settle(slot, undefined, e),
            complete: () => settle(slot, outcome ?? SENT),
          });
        if (!subscription.closed) slot.subscription = subscription;
      };

      const start = (message: M): void => {
        const body = typeof message.body === 'string' ? utf8.encode(message.body) : message.body;
        const slot: Slot<M> = {
          message,
          body,
          attempts: 1,
          result: undefined,
          subscription: undefined,
          waiting: undefined,
        };
        slots.push(slot);
        send(slot);
      };

      /** True while `fill` runs: a publish that settles at once (no confirms) must not recurse into it. */
      let filling = false;
      /** Starts waiting messages while the window has room. */
      const fill = (): void => {
        if (filling) return;
        filling = true;
        while (inFlight < window && next < waiting.length && !stopped) {
          const message = waiting[next]!;
          waiting[next++] = undefined;
          start(message);
        }
        filling = false;
        if (next === waiting.length && next > 0) {
          waiting = [];
          next = 0;
        }
      };

      /** Checked at the first message (confirmSelect() usually completes just before it). */
      let confirmChecked = false;
      const upstream = source.subscribe({
        next: (message) => {
          if (stopped || subscriber.closed) return; // a synchronous source still emitting after the end
          if (!confirmChecked) {
            confirmChecked = true;
            if (channel.confirmMode === false && options.allowUnconfirmed !== true) {
              // Without confirm mode every outcome would be a silent 'sent': nothing would be confirmed.
              stop(
                new ConfigurationError(
                  'publishConfirmed: the channel is not in confirm mode, so no publish would be confirmed; call confirmSelect() on it first (or pass allowUnconfirmed: true for a windowed publish without confirms)',
                ),
              );
              return;
            }
          }
          if (inFlight < window && next === waiting.length) start(message);
          else waiting.push(message);
        },
        error: (error: unknown) => stop(error),
        complete: () => {
          sourceDone = true;
          if (!stopped && inFlight === 0 && next === waiting.length) subscriber.complete();
        },
      });

      return () => {
        stopped = true;
        upstream.unsubscribe();
        for (let i = head; i < slots.length; i++) {
          const slot = slots[i];
          slot?.subscription?.unsubscribe();
          slot?.waiting?.cancel(); // a message not written yet is dropped
        }
      };
    });
}

/** A message on its way: its bytes, how many times it was published, its result once known. */
interface Slot<M extends OutgoingMessage> {
  readonly message: M;
  readonly body: Uint8Array;
  attempts: number;
  result: PublishResult<M> | undefined;
  /** The publish() subscription, for a channel without the callback path. */
  subscription: Subscription | undefined;
  /** What drops the message while it waits to be written (callback path). */
  waiting: { cancel(): boolean } | undefined;
}

const SENT: PublishOutcome = { status: 'sent' };
