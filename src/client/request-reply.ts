/**
 * Request/reply over RabbitMQ's direct reply-to: one reply consumer per channel, started with the
 * first request and kept for the channel's life; replies are matched to requests by correlation id.
 *
 * @module
 */
import { Observable, type Subscriber, type Subscription, timeout } from 'rxjs';
import { utf8Encode } from '../protocol/bytes.js';
import type { BasicProperties } from '../protocol/generated.js';
import { DIRECT_REPLY_TO } from './consumers.js';
import type { Delivery } from './delivery.js';
import type { PublishCallback, PublishHandle } from './interfaces.js';

/** @internal What request/reply needs of its channel. */
export interface RequestHost {
  /** The channel's callback publish path (see `Channel.publishWith`). */
  publishWith<C>(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: BasicProperties,
    mandatory: boolean,
    context: C,
    done: PublishCallback<C>,
  ): PublishHandle | undefined;
  consume(queue: string, options: { noAck: true }): Observable<Delivery>;
  /** The error pending requests fail with when the reply consumer ends without one. */
  endedError(): Error;
}

/** Options of `Channel.request`. */
export interface RequestOptions {
  /** Give up after this many milliseconds (the request also expires in the queue then). */
  timeoutMs?: number;
  /** Return the request (the publish errors) when no queue is bound to receive it. */
  mandatory?: boolean;
}

/**
 * Correlation ids are unique per process and channel: a random prefix chosen once (no process id,
 * which browsers do not have), the time the channel's first request was made and a counter.
 */
const ID_PREFIX = Math.floor(Math.random() * 2 ** 40).toString(36);

/** A request's publish failed (a nack or a return leaves it waiting for its timeout, as before). */
function publishFailed(subscriber: Subscriber<Delivery>, _outcome: unknown, error?: Error): void {
  if (error !== undefined) subscriber.error(error);
}

/** @internal */
export class RequestReply {
  /** Pending requests by correlation id: the subscriber waiting for the reply. */
  private readonly requests = new Map<string, Subscriber<Delivery>>();
  private replyConsumer: Subscription | undefined;
  private counter = 0;
  private idPrefix: string | undefined;

  constructor(private readonly host: RequestHost) {}

  /** See `Channel.request`. */
  request(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    properties: BasicProperties,
    options: RequestOptions,
  ): Observable<Delivery> {
    const bytes = typeof body === 'string' ? utf8Encode(body) : body;
    const expiration =
      options.timeoutMs === undefined ? undefined : String(Math.max(0, Math.ceil(options.timeoutMs)));
    const mandatory = options.mandatory ?? false;
    // One Observable, one map entry and the properties per request; the publish goes through the
    // callback path (no inner Observable or closure).
    const reply$ = new Observable<Delivery>((subscriber) => {
      this.idPrefix ??= `${ID_PREFIX}.${Date.now().toString(36)}.`;
      const correlationId = this.idPrefix + (++this.counter).toString(36);
      this.requests.set(correlationId, subscriber);
      this.ensureReplyConsumer();
      const handle = this.host.publishWith(
        exchange,
        routingKey,
        bytes,
        expiration === undefined
          ? { ...properties, replyTo: DIRECT_REPLY_TO, correlationId }
          : { ...properties, replyTo: DIRECT_REPLY_TO, correlationId, expiration },
        mandatory,
        subscriber,
        publishFailed,
      );
      return () => {
        handle?.cancel();
        this.requests.delete(correlationId);
      };
    });
    return options.timeoutMs === undefined ? reply$ : reply$.pipe(timeout(options.timeoutMs));
  }

  /** Starts the direct reply-to consumer once: noAck, on this channel, kept for the channel's life. */
  private ensureReplyConsumer(): void {
    if (this.replyConsumer !== undefined && !this.replyConsumer.closed) return;
    // When the reply consumer ends (channel closed or failed), every pending request fails with it.
    const failAll = (error: Error): void => {
      const pending = [...this.requests.values()];
      this.requests.clear();
      for (const subscriber of pending) subscriber.error(error);
    };
    this.replyConsumer = this.host.consume(DIRECT_REPLY_TO, { noAck: true }).subscribe({
      next: (reply) => {
        const id = reply.properties.correlationId;
        const subscriber = id === undefined ? undefined : this.requests.get(id);
        if (subscriber === undefined) return; // abandoned or unknown: dropped
        this.requests.delete(id!);
        subscriber.next(reply);
        subscriber.complete();
      },
      error: (error: Error) => failAll(error),
      complete: () => failAll(this.host.endedError()),
    });
  }
}
