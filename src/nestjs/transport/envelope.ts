/**
 * How a NestJS packet (`{ pattern, data, id? }` and its replies) travels in an AMQP message, and how
 * a routing key is matched against a handler's pattern (AMQP topic semantics).
 *
 * The envelope is the one place that maps raw messages to packets, so that producers that are not
 * Nest (a plain JSON body, the pattern in the routing key) can talk to `@EventPattern` and
 * `@MessagePattern` handlers (nestjs/nest#11536).
 *
 * @module
 */

import type {
  ConsumerDeserializer,
  ConsumerSerializer,
  ProducerDeserializer,
  ProducerSerializer,
} from '@nestjs/microservices';
import type { BasicProperties } from '../../protocol/generated.js';
import { topicMatch } from '../../topology/topic.js';

/**
 * A message as the envelope sees it: its body, properties, and where the broker routed it from.
 *
 * @example
 * ```ts
 * const decode = (m: AmqpMessage) => ({ pattern: m.routingKey, data: new TextDecoder().decode(m.body) });
 * ```
 */
export interface AmqpMessage {
  /** The raw body. */
  readonly body: Uint8Array;
  /** The AMQP properties (`replyTo`, `correlationId`, `headers`, ...). */
  readonly properties: BasicProperties;
  /** The routing key it was published with. */
  readonly routingKey: string;
  /** The exchange it was published to (`''`: straight to the queue). */
  readonly exchange: string;
}

/**
 * What the envelope makes of an incoming message: a Nest request (with `id`) or event (without).
 *
 * @example
 * ```ts
 * const event: IncomingPacket = { pattern: 'orders.created', data: { id: 1 } };
 * const request: IncomingPacket = { pattern: 'sum', data: [1, 2], id: 'c0ffee' };
 * ```
 */
export interface IncomingPacket {
  /** The pattern the handler is looked up by (a string, or an object pattern). */
  readonly pattern: unknown;
  /** What the handler receives as its payload. */
  readonly data: unknown;
  /** Set for a request (`@MessagePattern` with a reply); undefined for an event. */
  readonly id?: string | undefined;
  /** Out-of-band values (a trace id, say) set by the client's dispatch hook. */
  readonly metadata?: Record<string, string> | undefined;
}

/**
 * A packet the client sends: a request (with `id`) or an event.
 *
 * @example
 * ```ts
 * const encode = (p: OutgoingPacket) => ({ body: JSON.stringify(p.data), properties: { type: p.routingKey } });
 * ```
 */
export interface OutgoingPacket {
  readonly pattern: unknown;
  readonly data: unknown;
  readonly id?: string | undefined;
  readonly metadata?: Record<string, string> | undefined;
  /** The routing key the client publishes with: the pattern as a string. */
  readonly routingKey: string;
}

/**
 * One reply to a request, as Nest's clients read them: a `response` (several for a streamed one), an
 * `err`, and `isDisposed` on the last.
 *
 * @example
 * ```ts
 * const last: ReplyPacket = { id: 'c0ffee', response: 3, isDisposed: true };
 * const failed: ReplyPacket = { id: 'c0ffee', err: { status: 'error', message: 'no' }, isDisposed: true };
 * ```
 */
export interface ReplyPacket {
  readonly id?: string | undefined;
  readonly response?: unknown;
  readonly err?: unknown;
  readonly isDisposed?: boolean | undefined;
  readonly status?: string | undefined;
}

/**
 * A message to publish, as an envelope encodes it.
 *
 * @example
 * ```ts
 * const message: EncodedMessage = { body: '{"id":1}', properties: { contentType: 'application/json' } };
 * ```
 */
export interface EncodedMessage {
  /** A string is sent as UTF-8. */
  readonly body: Uint8Array | string;
  /** Properties to send (the transport adds `correlationId`, `replyTo`, `expiration` where needed). */
  readonly properties?: BasicProperties;
  /** The routing key to publish with, instead of the pattern (client side, exchange mode). */
  readonly routingKey?: string;
}

/**
 * Maps AMQP messages to Nest packets and back, on both sides. The server uses `decode` (incoming
 * requests and events) and `encodeReply`; the client uses `encode` and `decodeReply`. Any of them may
 * return a Promise. A `decode` that throws settles the message as undecodable: rejected without
 * requeue (dead-lettered when its queue has a dead-letter exchange).
 *
 * @example
 * ```ts
 * // Start from a built-in envelope and replace one direction:
 * const envelope: TransportEnvelope = {
 *   ...jsonEnvelope(),
 *   decode: (m) => ({ pattern: m.properties.type ?? m.routingKey, data: JSON.parse(Buffer.from(m.body).toString()) }),
 * };
 * ```
 */
export interface TransportEnvelope {
  /** Server: an incoming message as a request (`id` set) or an event. */
  decode(message: AmqpMessage): IncomingPacket | Promise<IncomingPacket>;
  /** Server: one reply packet as a message; undefined sends nothing for this packet. */
  encodeReply(reply: ReplyPacket): EncodedMessage | undefined | Promise<EncodedMessage | undefined>;
  /** Client: a request or event as a message. */
  encode(packet: OutgoingPacket): EncodedMessage | Promise<EncodedMessage>;
  /** Client: a reply message as a reply packet. */
  decodeReply(message: AmqpMessage): ReplyPacket | Promise<ReplyPacket>;
}

/**
 * Options of {@link jsonEnvelope}: Nest's own serializer and deserializer interfaces.
 *
 * @example
 * ```ts
 * jsonEnvelope({ serializer: { serialize: (packet) => ({ ...packet, sentAt: Date.now() }) } });
 * ```
 */
export interface JsonEnvelopeOptions {
  /**
   * Applied to outgoing packets before JSON: the server's replies (a `ConsumerSerializer`) or the
   * client's requests and events (a `ProducerSerializer`). An `options` object it returns is merged
   * into the message properties, as Nest's RMQ record serializer does.
   */
  readonly serializer?: ConsumerSerializer | ProducerSerializer;
  /**
   * Applied to incoming parsed bodies instead of the default mapping: the server's requests and
   * events (a `ConsumerDeserializer`, called with `{ channel: routingKey, routingKey, properties }`)
   * or the client's replies (a `ProducerDeserializer`).
   */
  readonly deserializer?: ConsumerDeserializer | ProducerDeserializer;
}

const JSON_PROPERTIES: BasicProperties = Object.freeze({ contentType: 'application/json' });
const decoder = new TextDecoder();

/** @internal The body parsed as JSON, or as text when it is not JSON (as Nest's RMQ transport does). */
export function parseBody(body: Uint8Array): unknown {
  const text = decoder.decode(body);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The only keys a Nest reply packet has: anything else is a foreign payload, taken as the response. */
const REPLY_KEYS = new Set(['id', 'err', 'response', 'isDisposed', 'status']);

/** @internal An error as JSON can carry it: an Error's own JSON is `{}`, so its name and message are sent. */
export function errorForWire(error: unknown): unknown {
  if (error instanceof Error) return { status: 'error', name: error.name, message: error.message };
  return error;
}

/** A serializer's result split into the packet and the `options` Nest's record serializers add. */
async function serialized(
  serializer: JsonEnvelopeOptions['serializer'],
  packet: object,
): Promise<{ value: unknown; properties: BasicProperties | undefined }> {
  if (serializer === undefined) return { value: packet, properties: undefined };
  const out: unknown = await serializer.serialize(packet as never);
  if (isRecord(out) && isRecord(out.options)) {
    const { options, ...rest } = out;
    return { value: rest, properties: options as BasicProperties };
  }
  return { value: out, properties: undefined };
}

/** The request id of a message that asks for a reply and names none in its body: its correlation id. */
function replyIdOf(message: AmqpMessage): string | undefined {
  const { replyTo, correlationId } = message.properties;
  return replyTo !== undefined && replyTo !== '' ? (correlationId ?? '') : undefined;
}

/**
 * Nest's JSON envelope, the default of the server and the client: bodies are JSON `{ pattern, data,
 * id? }`, replies JSON `{ id, response?, err?, isDisposed? }` (what Nest's RMQ client and server
 * send). A body that is not such a packet (a plain JSON body from another producer) is the `data`,
 * its pattern the routing key, and it is a request when it has a `replyTo` (its id the correlation
 * id). A reply that is not a reply packet is taken as the whole response.
 *
 * @example
 * ```ts
 * new RxAmqpServer({ url, queue: 'orders', envelope: jsonEnvelope({ deserializer: new MyDeserializer() }) });
 * ```
 */
export function jsonEnvelope(options: JsonEnvelopeOptions = {}): TransportEnvelope {
  const { serializer, deserializer } = options;
  return {
    async decode(message) {
      const parsed = parseBody(message.body);
      if (deserializer !== undefined) {
        const packet: unknown = await deserializer.deserialize(parsed, {
          channel: message.routingKey,
          routingKey: message.routingKey,
          properties: message.properties,
        });
        return packet as IncomingPacket;
      }
      if (isRecord(parsed) && parsed.pattern !== undefined) {
        const id = parsed.id;
        return {
          pattern: parsed.pattern,
          data: parsed.data,
          id: typeof id === 'string' ? id : typeof id === 'number' ? String(id) : undefined,
          metadata: isRecord(parsed.metadata) ? (parsed.metadata as Record<string, string>) : undefined,
        };
      }
      return { pattern: message.routingKey, data: parsed, id: replyIdOf(message) };
    },
    async encodeReply(reply) {
      const { value, properties } = await serialized(serializer, reply);
      return { body: JSON.stringify(value), properties: { ...JSON_PROPERTIES, ...properties } };
    },
    async encode(packet) {
      const { routingKey: _routingKey, ...wire } = packet;
      const { value, properties } = await serialized(serializer, wire);
      return { body: JSON.stringify(value), properties: { ...JSON_PROPERTIES, ...properties } };
    },
    async decodeReply(message) {
      const parsed = parseBody(message.body);
      if (deserializer !== undefined) {
        return (await deserializer.deserialize(parsed, { properties: message.properties })) as ReplyPacket;
      }
      if (
        isRecord(parsed) &&
        Object.keys(parsed).length > 0 &&
        Object.keys(parsed).every((k) => REPLY_KEYS.has(k))
      ) {
        return parsed as ReplyPacket;
      }
      return { response: parsed, isDisposed: true };
    },
  };
}

/**
 * The header by which {@link plainEnvelope} marks a reply that carries an error.
 *
 * @example
 * ```ts
 * const failed = reply.properties.headers?.[ERROR_HEADER] === true;
 * ```
 */
export const ERROR_HEADER = 'x-rxamqp-error';

/**
 * Plain bodies, for producers and consumers that are not Nest: the body is the data (JSON, or text
 * when it is not JSON), the pattern is the routing key, and a message with `replyTo` is a request
 * (its id the correlation id). A reply's body is the response itself, or the error with the
 * `x-rxamqp-error` header; one message per request (the last value of a streamed response is not
 * marked, so a plain requester reads the first reply only). The client publishes `data` as JSON with
 * the pattern as routing key.
 *
 * @example
 * ```ts
 * // Handlers for events that a Python service publishes to the 'orders' topic exchange as plain JSON:
 * new RxAmqpServer({ url, exchange: 'orders', queue: 'billing', envelope: plainEnvelope() });
 * // @EventPattern('order.*') onOrder(@Payload() order: Order) { ... }  // pattern = the routing key
 * ```
 */
export function plainEnvelope(): TransportEnvelope {
  return {
    decode: (message) => ({
      pattern: message.routingKey,
      data: parseBody(message.body),
      id: replyIdOf(message),
    }),
    encodeReply(reply) {
      if (reply.err !== undefined) {
        return {
          body: JSON.stringify(reply.err) ?? 'null',
          properties: { ...JSON_PROPERTIES, headers: { [ERROR_HEADER]: true } },
        };
      }
      // A bare end-of-stream marker has nothing to tell a plain requester.
      if (!('response' in reply)) return undefined;
      return { body: JSON.stringify(reply.response) ?? 'null', properties: JSON_PROPERTIES };
    },
    encode: (packet) => ({ body: JSON.stringify(packet.data) ?? 'null', properties: JSON_PROPERTIES }),
    decodeReply(message) {
      const value = parseBody(message.body);
      return message.properties.headers?.[ERROR_HEADER] === true
        ? { err: value, isDisposed: true }
        : { response: value, isDisposed: true };
    },
  };
}

// ---- topic matching -----------------------------------------------------------------------------

/**
 * Whether a pattern has AMQP topic wildcards: a `*` or `#` word.
 *
 * @example
 * ```ts
 * isTopicPattern('orders.*'); // true
 * isTopicPattern('orders.created'); // false
 * ```
 */
export function isTopicPattern(pattern: string): boolean {
  return pattern.split('.').some((word) => word === '*' || word === '#');
}

/**
 * Whether a routing key matches a binding key as RabbitMQ's topic exchange decides it (the embedded
 * broker's rules): words are separated by dots, `*` stands for exactly one word and `#` for zero or
 * more words; any other word must be equal. `''` has no words (`#` matches it, `*` does not).
 *
 * @example
 * ```ts
 * topicMatches('orders.*', 'orders.created'); // true
 * topicMatches('orders.*', 'orders.eu.created'); // false
 * topicMatches('orders.#', 'orders'); // true
 * topicMatches('#.created', 'orders.eu.created'); // true
 * ```
 */
export function topicMatches(pattern: string, routingKey: string): boolean {
  return topicMatch(pattern, routingKey);
}
