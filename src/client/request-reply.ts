/**
 * Request/reply over RabbitMQ's direct reply-to: one reply consumer per channel, started with the
 * first request and kept for the channel's life; replies are matched to requests by correlation id.
 *
 * @module
 */
import { Observable, type Subscription, timeout } from 'rxjs';
import type { BasicProperties } from '../protocol/generated.js';
import type { Delivery } from './delivery.js';
import type { PublishOptions, PublishOutcome } from './types.js';

/** @internal What request/reply needs of its channel. */
export interface RequestHost {
  publish(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    properties: BasicProperties,
    options: PublishOptions,
  ): Observable<PublishOutcome>;
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
 * which browsers do not have), the time and a counter.
 */
const ID_PREFIX = Math.floor(Math.random() * 2 ** 40).toString(36);

/** @internal */
export class RequestReply {
  /** Pending requests by correlation id. */
  private readonly requests = new Map<string, { answer(reply: Delivery): void; fail(error: Error): void }>();
  private replyConsumer: Subscription | undefined;
  private counter = 0;

  constructor(private readonly host: RequestHost) {}

  /** See `Channel.request`. */
  request(
    exchange: string,
    routingKey: string,
    body: Uint8Array | string,
    properties: BasicProperties,
    options: RequestOptions,
  ): Observable<Delivery> {
    const reply$ = new Observable<Delivery>((subscriber) => {
      const correlationId = `${ID_PREFIX}.${Date.now().toString(36)}.${(++this.counter).toString(36)}`;
      this.requests.set(correlationId, {
        answer: (reply) => {
          subscriber.next(reply);
          subscriber.complete();
        },
        fail: (error) => subscriber.error(error),
      });
      this.ensureReplyConsumer();
      const publication = this.host
        .publish(
          exchange,
          routingKey,
          body,
          {
            ...properties,
            replyTo: 'amq.rabbitmq.reply-to',
            correlationId,
            ...(options.timeoutMs === undefined
              ? {}
              : { expiration: String(Math.max(0, Math.ceil(options.timeoutMs))) }),
          },
          options.mandatory === undefined ? {} : { mandatory: options.mandatory },
        )
        .subscribe({ error: (error: unknown) => subscriber.error(error) });
      return () => {
        publication.unsubscribe();
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
      for (const request of pending) request.fail(error);
    };
    this.replyConsumer = this.host.consume('amq.rabbitmq.reply-to', { noAck: true }).subscribe({
      next: (reply) => {
        const id = reply.properties.correlationId;
        const request = id === undefined ? undefined : this.requests.get(id);
        if (request === undefined) return; // abandoned or unknown: dropped
        this.requests.delete(id!);
        request.answer(reply);
      },
      error: (error: Error) => failAll(error),
      complete: () => failAll(this.host.endedError()),
    });
  }
}
