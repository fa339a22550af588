/**
 * Fake messages: what a test says about a message (body as text, JSON or bytes, properties, delivery
 * fields), and what a fake channel has published.
 *
 * @module
 */

import type { PublishOutcome, ReturnedMessage } from '../../client/types.js';
import { utf8Decode, utf8Encode } from '../../protocol/bytes.js';
import type { BasicProperties } from '../../protocol/generated.js';

/**
 * A message body as a test writes it: a string (sent as UTF-8), bytes, or any other value, sent as
 * its JSON.
 *
 * @example
 * ```ts
 * const bodies: FakeBody[] = ['text', new Uint8Array([0xff]), { id: 1 }, [1, 2], 42];
 * ```
 */
export type FakeBody = string | Uint8Array | number | boolean | null | object;

/**
 * A message to deliver. Every field has a default: an empty body, no properties, the channel's next
 * delivery tag, not redelivered, the default exchange, routing key `'test'`.
 *
 * @example
 * ```ts
 * const init: FakeMessageInit = {
 *   body: { id: 1 },
 *   properties: { contentType: 'application/json', replyTo: 'amq.rabbitmq.reply-to' },
 *   redelivered: true,
 * };
 * ```
 */
export interface FakeMessageInit {
  /** The body: a string as UTF-8, bytes as they are, anything else as JSON. */
  readonly body?: FakeBody;
  readonly properties?: BasicProperties;
  /** Default: the channel's next tag (1, 2, ...). */
  readonly deliveryTag?: number;
  readonly redelivered?: boolean;
  readonly exchange?: string;
  readonly routingKey?: string;
  readonly consumerTag?: string;
  readonly messageCount?: number;
  /** Received without acknowledgement: settled from the start, and settling it sends nothing. */
  readonly noAck?: boolean;
}

/**
 * How a test names a message in a values map: a string body, bytes, or a {@link FakeMessageInit}
 * (for a JSON body, give it as `{ body: value }`).
 *
 * @example
 * ```ts
 * const values: Record<string, FakeMessage> = { a: 'text', b: { body: { id: 2 } }, c: new Uint8Array([1]) };
 * ```
 */
export type FakeMessage = string | Uint8Array | FakeMessageInit;

/**
 * A message a fake channel published (written to the broker), as `published$` and `published`
 * report it. `body` is a plain `Uint8Array` (whatever the publisher passed: a Node `Buffer` is
 * copied), and `text` is the body decoded as UTF-8, for assertions.
 *
 * @example
 * ```ts
 * expect(channel.published.map((p) => [p.routingKey, p.text])).toEqual([['reply-1', 'HELLO']]);
 * ```
 */
export interface PublishedMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Uint8Array;
  readonly text: string;
  readonly properties: BasicProperties | undefined;
  readonly mandatory: boolean;
}

/**
 * @internal The outcome of a publish the fake broker returns: 312 NO_ROUTE with the message, as
 * RabbitMQ returns an unroutable mandatory message.
 */
export function returnedOutcome(
  seq: number,
  message: PublishedMessage,
): Extract<PublishOutcome, { readonly status: 'returned' }> {
  const returned: ReturnedMessage = {
    replyCode: 312,
    replyText: 'NO_ROUTE',
    exchange: message.exchange,
    routingKey: message.routingKey,
    properties: message.properties ?? {},
    body: message.body,
  };
  return { status: 'returned', seq, returned };
}

/**
 * Builds a {@link PublishedMessage} to expect (a string body as UTF-8, another value as JSON).
 *
 * @example
 * ```ts
 * expectObservable(channel.published$).toBe('--p', {
 *   p: published('', 'reply-1', 'HELLO', { properties: { correlationId: 'c1' } }),
 * });
 * ```
 */
export function published(
  exchange: string,
  routingKey: string,
  body: FakeBody,
  options: { properties?: BasicProperties; mandatory?: boolean } = {},
): PublishedMessage {
  const bytes = plainBytes(toBytes(body));
  return {
    exchange,
    routingKey,
    body: bytes,
    text: utf8Decode(bytes),
    properties: options.properties,
    mandatory: options.mandatory ?? false,
  };
}

/** @internal A body as bytes. */
export function toBytes(body: FakeBody | undefined): Uint8Array {
  if (body === undefined) return new Uint8Array(0);
  if (typeof body === 'string') return utf8Encode(body);
  if (body instanceof Uint8Array) return body;
  return utf8Encode(JSON.stringify(body));
}

/**
 * @internal A plain `Uint8Array` (a copy of a Node `Buffer` or another subclass), so that published
 * bodies compare equal whatever the publisher encoded them with.
 */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes);
}

/** @internal A values-map entry as a message init. */
export function toInit(message: FakeMessage): FakeMessageInit {
  return typeof message === 'string' || message instanceof Uint8Array ? { body: message } : message;
}
