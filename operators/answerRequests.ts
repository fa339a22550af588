import {
  catchError,
  concatMap,
  defer,
  EMPTY,
  map,
  mergeMap,
  Observable,
  type OperatorFunction,
  take,
  throwIfEmpty,
} from 'rxjs';
import {
  type BasicProperties,
  ConfigurationError,
  type Delivery,
  type PublishTarget,
  probeOf,
  withinDelivery,
} from '../src/index.js';
import {
  type FailurePolicy,
  failurePolicyOf,
  type HandlerResult,
  maxDeliveriesOf,
  settleFailed,
  toObservable,
} from './ackOnSuccess.js';

/** Options of {@link answerRequests}. */
export interface AnswerRequestsOptions<R> {
  /** How many requests are handled at once (`mergeMap` semantics). Default 1. Keep `prefetch` at least as high. */
  concurrency?: number;
  /**
   * Turns a result into the reply body. Default: strings and bytes as they are, `undefined` as an empty
   * body, anything else `JSON.stringify`-ed. If it throws, the request counts as failed.
   */
  encode?: (result: R) => Uint8Array | string;
  /**
   * The reply's `contentType`. Default: `'application/json'` for results the default `encode`
   * JSON-encodes, none otherwise.
   */
  contentType?: string;
  /**
   * How a request whose handler (or `encode`) failed is settled (see `FailurePolicy` for the AMQP
   * method each sends). Default `'reject'`: basic.reject without requeue (a client waiting for the
   * answer is better told by its timeout than kept waiting for a retry).
   */
  onError?: FailurePolicy;
  /** With `onError: 'retry'`, the most deliveries of one request (see `ackOnSuccess`). Default 20. */
  maxDeliveries?: number;
  /** With `onError: 'requeue'`, whether a redelivered request is requeued again (basic.nack). Default true; false rejects it (basic.reject). */
  requeueRedelivered?: boolean;
  /** Called after a failed request was settled, with the error: the place for logging. If it throws, the stream errors. */
  onFailure?: (error: unknown, request: Delivery) => void;
}

/**
 * The server side of RPC: handles each request delivery with `handler`, publishes the result to the
 * request's `replyTo` through the default exchange (with the request's `correlationId`, so that the
 * client, e.g. `Channel.request`, matches it), acknowledges the request once the reply has been
 * published, and emits the result.
 *
 * A request without `replyTo` has nobody to answer: it is rejected (basic.reject) without requeue (to the queue's
 * dead-letter exchange, if any) and nothing is emitted. When the handler fails (throws, rejects, errors,
 * or its Observable completes without a value) or `encode` throws, no reply is sent, the request is
 * settled by `onError` like in `ackOnSuccess`, `onFailure` is called, and the stream goes on: the client
 * gets no answer (give its requests a timeout). When publishing the reply errors (its channel has
 * closed), the stream errors and the request is left unsettled, for the broker to deliver again.
 *
 * The handler may return a value, a Promise or an Observable (its first value is the result). Up to
 * `concurrency` requests run at once, results are emitted as they finish. On unsubscription, running
 * handlers are unsubscribed and their requests left unsettled. A drain with `prefetched: 'return'`
 * gives each request still waiting for a slot back to its queue when its turn comes
 * (`returnForDrain()`), unanswered.
 *
 * @param channel Where the replies are published. With direct reply-to (`amq.rabbitmq.reply-to`) any
 *   channel works, the one consuming the requests included.
 * @param handler Computes the answer to one request.
 * @param options `concurrency`, `encode`, `contentType`, failure policy and `onFailure` callback.
 *
 * @example
 * ```ts
 * import { answerRequests } from 'rxamqp/operators';
 *
 * channel.consume('rpc.fib', { prefetch: 8 }).pipe(
 *   answerRequests(channel, (req) => ({ fib: fib(req.json<{ n: number }>().n) }), {
 *     concurrency: 8,
 *     onFailure: (error, req) => log.warn({ error, id: req.properties.correlationId }, 'rpc failed'),
 *   }),
 * ).subscribe();
 *
 * // client, elsewhere:
 * other.request('', 'rpc.fib', JSON.stringify({ n: 30 }), {}, { timeoutMs: 5_000 })
 *   .subscribe((reply) => console.log(reply.json()));
 * ```
 */
export function answerRequests<R>(
  channel: Pick<PublishTarget, 'publish'>,
  handler: (request: Delivery) => HandlerResult<R>,
  options: AnswerRequestsOptions<R> = {},
): OperatorFunction<Delivery, R> {
  const concurrency = options.concurrency ?? 1;
  if (!(concurrency >= 1) || (!Number.isInteger(concurrency) && concurrency !== Infinity)) {
    throw new ConfigurationError(
      `answerRequests: concurrency must be a positive integer, got ${concurrency}`,
    );
  }
  const policy = failurePolicyOf('answerRequests', options.onError, 'reject');
  const requeueRedelivered = options.requeueRedelivered ?? true;
  const maxDeliveries = maxDeliveriesOf('answerRequests', options.maxDeliveries);
  const { encode, contentType, onFailure } = options;
  const reply = (result: R): { body: Uint8Array | string; json: boolean } => {
    if (encode !== undefined) return { body: encode(result), json: false };
    if (typeof result === 'string' || result instanceof Uint8Array) return { body: result, json: false };
    if (result === undefined) return { body: '', json: false };
    return { body: JSON.stringify(result), json: true };
  };
  return (source) =>
    source.pipe(
      mergeMap((request) => {
        // A drain with `prefetched: 'return'` gives back what has not started: not answered here.
        if (request.returnForDrain() === true) return EMPTY;
        const { replyTo, correlationId } = request.properties;
        if (replyTo === undefined || replyTo === '') {
          request.reject({ requeue: false });
          return EMPTY;
        }
        // In the request's trace context when the connection traces: the handler, the subscription
        // to its result and the reply that follows.
        const answer$ = defer(() => toObservable(handler(request)));
        const traced$ =
          probeOf(request) === undefined
            ? answer$
            : new Observable<R>((subscriber) => withinDelivery(request, () => answer$.subscribe(subscriber)));
        return traced$.pipe(
          take(1),
          throwIfEmpty(),
          map((result) => ({ result, ...reply(result) })),
          catchError((error: unknown) => {
            settleFailed(request, policy, requeueRedelivered, maxDeliveries);
            onFailure?.(error, request);
            return EMPTY;
          }),
          concatMap(({ result, body, json }) => {
            const type = contentType ?? (json ? 'application/json' : undefined);
            const properties: BasicProperties = {
              ...(correlationId === undefined ? {} : { correlationId }),
              ...(type === undefined ? {} : { contentType: type }),
            };
            return channel.publish('', replyTo, body, properties).pipe(
              take(1),
              map(() => {
                request.ack();
                return result;
              }),
            );
          }),
        );
      }, concurrency),
    );
}
