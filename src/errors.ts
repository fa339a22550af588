/**
 * Every error class of rxamqp, in one module: one base class, {@link AmqpError}, with a typed `code`.
 * Each failure a user can see is one of these, carrying the protocol data that explains it. None of
 * them ever includes a password or other secret in its message, its properties or its `inspect`
 * output.
 *
 * @module
 */
import { isHardError, REPLY_CODES } from './protocol/constants.js';

/**
 * AMQP reply code for a malformed frame (size, frame-end, frame type, heartbeat).
 *
 * @example
 * ```ts
 * if (error.replyCode === FRAME_ERROR) console.log('501');
 * ```
 */
export const FRAME_ERROR = 501;
/**
 * AMQP reply code for a frame whose fields cannot be parsed.
 *
 * @example
 * ```ts
 * if (error.replyCode === SYNTAX_ERROR) console.log('502');
 * ```
 */
export const SYNTAX_ERROR = 502;
/**
 * AMQP reply code for a method the peer sent that the protocol does not define.
 *
 * @example
 * ```ts
 * if (error.replyCode === COMMAND_INVALID) console.log('503');
 * ```
 */
export const COMMAND_INVALID = 503;
/**
 * AMQP reply code for a frame that arrived out of order (content frames out of sequence).
 *
 * @example
 * ```ts
 * if (error.replyCode === UNEXPECTED_FRAME) console.log('505');
 * ```
 */
export const UNEXPECTED_FRAME = 505;

/** Codes of {@link FrameError}: what was wrong with the bytes from the peer. */
export type FrameErrorCode =
  | 'TRUNCATED_FIELD'
  | 'INTEGER_TOO_LARGE'
  | 'TRAILING_BYTES'
  | 'UNKNOWN_FIELD_TYPE'
  | 'TABLE_TOO_DEEP'
  | 'UNKNOWN_FRAME_TYPE'
  | 'PROTOCOL_MISMATCH'
  | 'FRAME_TOO_LARGE'
  | 'BAD_FRAME_END'
  | 'BAD_HEARTBEAT'
  | 'BAD_TUNE'
  | 'UNEXPECTED_FRAME'
  | 'UNEXPECTED_METHOD'
  | 'UNKNOWN_METHOD'
  | 'BAD_PROPERTY_FLAGS'
  | 'BODY_TOO_LARGE'
  | 'BODY_OVERRUN'
  | 'CHANNEL_ERROR';

/** Codes of {@link EncodeError}: why a value cannot go on the wire. */
export type EncodeErrorCode =
  | 'INVALID_VALUE'
  | 'VALUE_OUT_OF_RANGE'
  | 'STRING_TOO_LONG'
  | 'TABLE_TOO_DEEP'
  | 'FRAME_TOO_LARGE'
  | 'BODY_TOO_LARGE'
  | 'INVALID_METHOD'
  | 'NOT_CONTENT_METHOD';

/** Codes of {@link ConnectionClosedError}. */
export type ConnectionClosedCode =
  | 'SERVER_CLOSED'
  | 'CONNECTION_LOST'
  | 'HEARTBEAT_TIMEOUT'
  | 'PROTOCOL_ERROR'
  | 'CONNECT_TIMEOUT'
  | 'CLIENT_CLOSED'
  | 'TLS_HANDSHAKE_FAILED'
  | 'CREDENTIALS_UNAVAILABLE';

/** Codes of {@link ChannelClosedError}. */
export type ChannelClosedCode = 'SERVER_CLOSED' | 'CHANNEL_CLOSED' | 'CONNECTION_CLOSED';

/** Codes of {@link PublisherError}. */
export type PublisherErrorCode =
  | 'DISCONNECTED'
  | 'BUFFER_FULL'
  | 'BUFFER_TIMEOUT'
  | 'PUBLISHER_CLOSED'
  | 'CONNECTION_ENDED';

/** Codes of {@link MqError} (`rxamqp/mq`). */
export type MqErrorCode =
  | 'MQ_NOT_A_SENDER'
  | 'MQ_NOT_A_RECEIVER'
  | 'MQ_SEND_FAILED'
  | 'MQ_CLOSED'
  | 'MQ_BACKEND_MISSING'
  | 'MQ_CONNECTION';

/**
 * Every `code` an rxamqp error can carry: narrow on it after `instanceof AmqpError`.
 *
 * @example
 * ```ts
 * function retryable(e: unknown): boolean {
 *   return e instanceof AmqpError && (e.code === 'CONNECTION_LOST' || e.code === 'HEARTBEAT_TIMEOUT');
 * }
 * ```
 */
export type ErrorCode =
  | FrameErrorCode
  | EncodeErrorCode
  | ConnectionClosedCode
  | ChannelClosedCode
  | PublisherErrorCode
  | 'CHANNEL_UNAVAILABLE'
  | 'PUBLISH_NACKED'
  | 'CONNECTION_BLOCKED'
  | 'BLOCKED_TIMEOUT'
  | 'CONSUMER_CANCELLED'
  | 'AUTHENTICATION_FAILED'
  | 'INVALID_CONFIGURATION'
  | 'CONFIRM_TAG'
  | 'HEADERS_UNREADABLE'
  | 'NO_BROKER'
  | 'DRAINING'
  | MqErrorCode;

/**
 * Base class of every error rxamqp raises. `code` is a stable machine-readable string; each subclass
 * narrows it to its own codes.
 *
 * @example
 * ```ts
 * try { decoder.push(bytes); } catch (e) { if (e instanceof AmqpError) console.error(e.code); }
 * ```
 */
export class AmqpError<C extends ErrorCode = ErrorCode> extends Error {
  /** A stable, machine-readable code such as `FRAME_TOO_LARGE`. */
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * Raised by the codec's `FrameDecoder` (`rxamqp/protocol`) when the bytes from the peer do not form valid AMQP 0-9-1 frames.
 * `replyCode` is the reply code the connection closes with (501 frame error, 502 syntax error,
 * 503 command invalid, 505 unexpected frame). After a `FrameError` the decoder accepts no more input.
 *
 * @example
 * ```ts
 * try {
 *   decoder.push(chunk);
 * } catch (e) {
 *   if (e instanceof FrameError) sendConnectionClose(e.replyCode, e.message);
 * }
 * ```
 */
export class FrameError extends AmqpError<FrameErrorCode> {
  /** The AMQP reply code for the connection.close this error calls for. */
  readonly replyCode: number;
  /** The channel of the offending frame, when it was known. */
  readonly channel: number | undefined;

  constructor(replyCode: number, code: FrameErrorCode, message: string, channel?: number) {
    super(code, message);
    this.replyCode = replyCode;
    this.channel = channel;
  }
}

/**
 * Raised when a value cannot be encoded for the wire: a short string over 255 bytes, a number out of
 * the range of its field, a field table value of an unsupported type, a frame larger than frame_max, a
 * body larger than the configured maximum. Nothing is written when it is raised.
 *
 * @example
 * ```ts
 * try {
 *   writer.writePublish(1, '', 'x'.repeat(300), body);
 * } catch (e) {
 *   if (e instanceof EncodeError) console.error(e.message); // routing key is longer than 255 bytes
 * }
 * ```
 */
export class EncodeError extends AmqpError<EncodeErrorCode> {}

/**
 * A message arrived whose `headers` table cannot be decoded (an unknown field type tag, a value
 * truncated inside the table, nesting deeper than 32). Such a "poison" message does not fail the
 * connection: the table's length is known, so the decoder skips it, decodes the other properties and
 * the body, and hands the message over with `properties.headers` undefined and this error beside it.
 * `raw` holds the table's bytes as they were on the wire (without the 4-byte length), to log, park in
 * a dead-letter store or decode by other means; `cause` is the {@link FrameError} that describes the
 * problem. Only the headers table is treated this way: anything else malformed is a FrameError.
 *
 * @example
 * ```ts
 * const handler: FrameHandler = {
 *   onMethod: () => {},
 *   onHeartbeat: () => {},
 *   onContent: (channel, method, properties, body, headersError) => {
 *     if (headersError !== undefined) {
 *       console.warn(headersError.message, headersError.raw.length, (headersError.cause as FrameError).code);
 *       return; // e.g. reject the delivery instead of processing it
 *     }
 *     process(properties, body);
 *   },
 * };
 * ```
 */
export class HeadersDecodeError extends AmqpError<'HEADERS_UNREADABLE'> {
  /** The headers table's bytes as on the wire, without its 4-byte length prefix. */
  readonly raw: Uint8Array;

  constructor(raw: Uint8Array, cause: FrameError) {
    super('HEADERS_UNREADABLE', `the message's headers table cannot be decoded: ${cause.message}`, {
      cause,
    });
    this.raw = raw;
  }
}

/** What the protocol says about a close: the reply and the method that caused it. */
export interface CloseReason {
  /** The AMQP reply code, such as 404 or 320. */
  readonly replyCode: number;
  /** The text the peer gave, such as `NOT_FOUND - no queue 'jobs' in vhost '/'`. */
  readonly replyText: string;
  /** The class of the method that caused the close, or 0. */
  readonly classId: number;
  /** The method that caused the close, or 0. */
  readonly methodId: number;
}

function describeReply(reason: CloseReason): string {
  const name = REPLY_CODES[reason.replyCode]?.name;
  // RabbitMQ's texts start with the reply name already ("NOT_FOUND - no queue ..."): say it once.
  const named = name === undefined || reason.replyText.startsWith(name) ? '' : ` ${name}`;
  return `${reason.replyCode}${named}${reason.replyText ? ` ${reason.replyText}` : ''}`;
}

/**
 * Who ended a connection or channel: the broker (a close method), the client (`close()` or
 * unsubscribing), or the network (socket error, end of stream, missed heartbeats, a corrupt stream).
 */
export type CloseInitiator = 'server' | 'client' | 'network';

/**
 * The connection ended other than by the client closing it: the broker closed it (a hard error such
 * as 320 CONNECTION_FORCED, 501 FRAME_ERROR, 530 NOT_ALLOWED), the network failed, heartbeats were
 * missed, or the peer sent bytes that are not AMQP. Every pending and later operation on the connection
 * and its channels fails with this error.
 *
 * `code` tells the cases apart: `SERVER_CLOSED` (see `replyCode`), `CONNECTION_LOST` (socket closed or
 * failed; see `cause`), `HEARTBEAT_TIMEOUT`, `PROTOCOL_ERROR` (see `cause`, a FrameError),
 * `CONNECT_TIMEOUT`, `CLIENT_CLOSED` (the client closed it while the operation was pending).
 *
 * @example
 * ```ts
 * connect(url).subscribe({
 *   error: (e) => {
 *     if (e instanceof ConnectionClosedError && e.replyCode === ReplyCode.CONNECTION_FORCED) {
 *       console.log('an operator closed the connection');
 *     }
 *   },
 * });
 * ```
 */
export class ConnectionClosedError extends AmqpError<ConnectionClosedCode> {
  /** The reply code of the close, when there was a close method (or a FrameError's code). */
  readonly replyCode: number | undefined;
  readonly replyText: string | undefined;
  readonly classId: number | undefined;
  readonly methodId: number | undefined;
  readonly initiator: CloseInitiator;

  constructor(
    code: ConnectionClosedCode,
    message: string,
    options: { initiator: CloseInitiator; reason?: CloseReason; cause?: unknown },
  ) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.initiator = options.initiator;
    this.replyCode = options.reason?.replyCode;
    this.replyText = options.reason?.replyText;
    this.classId = options.reason?.classId;
    this.methodId = options.reason?.methodId;
  }

  /** The error for a connection.close the broker sent. */
  static fromServer(reason: CloseReason): ConnectionClosedError {
    return new ConnectionClosedError(
      'SERVER_CLOSED',
      `the broker closed the connection: ${describeReply(reason)}`,
      {
        initiator: 'server',
        reason,
      },
    );
  }
}

/**
 * A channel was closed: by the broker for a soft error (403 ACCESS_REFUSED, 404 NOT_FOUND,
 * 405 RESOURCE_LOCKED, 406 PRECONDITION_FAILED, ...), by the client, or because its connection ended
 * (then `cause` is the {@link ConnectionClosedError}). Only that channel's pending and later operations
 * fail; sibling channels keep working after a soft error. `closedAt` is the stack of where the channel
 * was closed, so that an operation on a closed channel points at the code that closed it.
 *
 * @example
 * ```ts
 * channel.queueDeclare('jobs', { passive: true }).subscribe({
 *   error: (e) => {
 *     if (e instanceof ChannelClosedError && e.replyCode === 404) console.log('no such queue');
 *   },
 * });
 * ```
 */
export class ChannelClosedError extends AmqpError<ChannelClosedCode> {
  readonly channel: number;
  readonly replyCode: number | undefined;
  readonly replyText: string | undefined;
  readonly classId: number | undefined;
  readonly methodId: number | undefined;
  readonly initiator: CloseInitiator;
  /** Where the channel was closed (a stack trace), for errors raised by later use of the channel. */
  readonly closedAt: string | undefined;

  constructor(
    code: ChannelClosedCode,
    message: string,
    options: {
      channel: number;
      initiator: CloseInitiator;
      reason?: CloseReason;
      cause?: unknown;
      closedAt?: string;
    },
  ) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.channel = options.channel;
    this.initiator = options.initiator;
    this.replyCode = options.reason?.replyCode;
    this.replyText = options.reason?.replyText;
    this.classId = options.reason?.classId;
    this.methodId = options.reason?.methodId;
    this.closedAt = options.closedAt;
  }

  /** The error for a channel.close the broker sent. */
  static fromServer(channel: number, reason: CloseReason, closedAt?: string): ChannelClosedError {
    return new ChannelClosedError(
      'SERVER_CLOSED',
      `the broker closed channel ${channel}: ${describeReply(reason)}`,
      {
        channel,
        initiator: 'server',
        reason,
        ...(closedAt === undefined ? {} : { closedAt }),
      },
    );
  }

  /** A copy for an operation attempted after the close, pointing at where the channel closed. */
  forLaterUse(operation: string): ChannelClosedError {
    const e = new ChannelClosedError(
      'CHANNEL_CLOSED',
      `${operation} on channel ${this.channel}, which is closed (${this.message})${this.closedAt === undefined ? '' : `\nchannel closed at:\n${this.closedAt}`}`,
      {
        channel: this.channel,
        initiator: this.initiator,
        cause: this,
        ...(this.closedAt === undefined ? {} : { closedAt: this.closedAt }),
        ...(this.replyCode === undefined
          ? {}
          : {
              reason: {
                replyCode: this.replyCode,
                replyText: this.replyText ?? '',
                classId: this.classId ?? 0,
                methodId: this.methodId ?? 0,
              },
            }),
      },
    );
    return e;
  }
}

/**
 * A publish the broker answered with basic.nack (it could not take responsibility for the message),
 * raised by the `publishConfirmed` operator under its default nack policy.
 *
 * @example
 * ```ts
 * messages$.pipe(publishConfirmed(ch)).subscribe({
 *   error: (e) => { if (e instanceof PublishNackedError) console.error('nacked after', e.attempts, 'attempts'); },
 * });
 * ```
 */
export class PublishNackedError extends AmqpError<'PUBLISH_NACKED'> {
  /** The sequence number of the last attempt. */
  readonly seq: number;
  /** How many times it was published. */
  readonly attempts: number;

  constructor(exchange: string, routingKey: string, seq: number, attempts: number) {
    super(
      'PUBLISH_NACKED',
      `the broker nacked the publish to exchange '${exchange}' with routing key '${routingKey}' (sequence ${seq}, after ${attempts} attempt${attempts === 1 ? '' : 's'})`,
    );
    this.seq = seq;
    this.attempts = attempts;
  }
}

/**
 * A publish could not be written because the broker blocks the connection (a memory or disk alarm,
 * announced by connection.blocked): `code` is `CONNECTION_BLOCKED` with `whenBlocked: 'fail'`, or
 * `BLOCKED_TIMEOUT` when the broker stayed blocked longer than `blockedTimeout`. Nothing was sent.
 *
 * @example
 * ```ts
 * ch.publish('', 'jobs', 'payload').subscribe({
 *   error: (e) => {
 *     if (e instanceof PublishBlockedError) console.warn('broker alarm:', e.reason, '- try later');
 *   },
 * });
 * ```
 */
export class PublishBlockedError extends AmqpError<'CONNECTION_BLOCKED' | 'BLOCKED_TIMEOUT'> {
  /** The broker's reason for blocking (e.g. `low on memory`), when it gave one. */
  readonly reason: string | undefined;

  constructor(code: 'CONNECTION_BLOCKED' | 'BLOCKED_TIMEOUT', message: string, reason: string | undefined) {
    super(code, message);
    this.reason = reason;
  }
}

/**
 * The broker cancelled a consumer with basic.cancel (consumer_cancel_notify): its queue was deleted,
 * a classic mirrored queue failed over, or (RabbitMQ 4.3 and later, quorum queues) the consumer held a
 * delivery unacknowledged longer than the queue's consumer timeout. The delivery stream of that
 * consumer errors with this; the channel stays open.
 *
 * AMQP 0-9-1's basic.cancel carries no reason, so `heldUnsettled` says what the client saw: true when
 * the channel still held unsettled deliveries at the cancel, which is the consumer timeout's form
 * (RabbitMQ then requeues them and ignores their late acks). {@link isConsumerTimeout} is true for
 * such a cancel, and for RabbitMQ 3.x's form of the timeout (a 406 channel close).
 *
 * @example
 * ```ts
 * ch.consume('jobs').subscribe({
 *   error: (e) => e instanceof ConsumerCancelledError && console.log(`consumer ${e.consumerTag} was cancelled`),
 * });
 * ```
 */
export class ConsumerCancelledError extends AmqpError<'CONSUMER_CANCELLED'> {
  readonly consumerTag: string;
  readonly queue: string;
  /**
   * True when the channel held unsettled deliveries when the broker cancelled the consumer: the form
   * of RabbitMQ 4.3's consumer timeout (a queue deleted while deliveries were held looks the same).
   */
  readonly heldUnsettled: boolean;

  constructor(consumerTag: string, queue: string, heldUnsettled = false) {
    super(
      'CONSUMER_CANCELLED',
      heldUnsettled
        ? `the broker cancelled consumer ${consumerTag} of queue ${queue} while it held unacknowledged deliveries (a consumer timeout, or was the queue deleted?)`
        : `the broker cancelled consumer ${consumerTag} of queue ${queue} (was the queue deleted?)`,
    );
    this.consumerTag = consumerTag;
    this.queue = queue;
    this.heldUnsettled = heldUnsettled;
  }
}

/** RabbitMQ's text for a consumer timeout: "delivery acknowledgement on channel 1 timed out. ...". */
const CONSUMER_TIMEOUT_TEXT = /delivery acknowledgement on channel \d+ timed out/;

/**
 * True when `error` (or an error in its `cause` chain) is RabbitMQ's delivery acknowledgement
 * timeout (`consumer_timeout`): a delivery was held unacknowledged too long. Both of its forms:
 *
 * - RabbitMQ 3.x to 4.2 (and 4.3 with `consumer_timeout_response = close_channel`): the broker closes
 *   the channel with 406 PRECONDITION_FAILED, `delivery acknowledgement on channel N timed out...`;
 *   the consumer stream errors with that {@link ChannelClosedError};
 * - RabbitMQ 4.3 and later: the broker cancels the consumer with basic.cancel and keeps the channel;
 *   the consumer stream errors with a {@link ConsumerCancelledError} whose `heldUnsettled` is true.
 *
 * Either way the unacknowledged deliveries go back to the queue and are delivered again; a consumer
 * started again (the `resumeOnConsumerTimeout` operator does it) gets them.
 *
 * @example
 * ```ts
 * ch.consume('jobs').subscribe({
 *   error: (e) => {
 *     if (isConsumerTimeout(e)) log.warn('a handler held a message past consumer_timeout');
 *   },
 * });
 * ```
 */
export function isConsumerTimeout(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    if (e instanceof ConsumerCancelledError) return e.heldUnsettled;
    if (
      e instanceof ChannelClosedError &&
      e.replyCode === 406 &&
      CONSUMER_TIMEOUT_TEXT.test(e.replyText ?? '')
    ) {
      return true;
    }
    e = e.cause;
  }
  return false;
}

/**
 * The broker refused the credentials (wrong user name or password, or a SASL mechanism it does not
 * offer). The password never appears in the message, the properties or the stack.
 *
 * @example
 * ```ts
 * connect('amqp://guest:wrong@localhost').subscribe({
 *   error: (e) => e instanceof AuthenticationError && console.error(e.message),
 * });
 * ```
 */
export class AuthenticationError extends AmqpError<'AUTHENTICATION_FAILED'> {
  /** The SASL mechanism that was tried. */
  readonly mechanism: string;
  /** The reply code of the broker's close (403 ACCESS_REFUSED), when it sent one. */
  readonly replyCode: number | undefined;

  constructor(message: string, options: { mechanism: string; replyCode?: number; cause?: unknown }) {
    super(
      'AUTHENTICATION_FAILED',
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.mechanism = options.mechanism;
    this.replyCode = options.replyCode;
  }
}

/**
 * A connection URL or option is invalid (unknown scheme, bad port, unparsable number, unreadable
 * certificate file...). The URL in the message has its password replaced by `***`.
 *
 * @example
 * ```ts
 * try {
 *   parseUrl('http://localhost');
 * } catch (e) {
 *   if (e instanceof ConfigurationError) console.error(e.message);
 * }
 * ```
 */
export class ConfigurationError extends AmqpError<'INVALID_CONFIGURATION'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_CONFIGURATION', message, options);
  }
}

/**
 * A publish the publisher could not send: `code` is `DISCONNECTED` (no connection and
 * `whileDisconnected: 'fail'`), `BUFFER_FULL` (`maxBuffered` messages were already held),
 * `BUFFER_TIMEOUT` (no connection came within `bufferTimeout`), `PUBLISHER_CLOSED` (`close()` was
 * called before it went out) or `CONNECTION_ENDED` (the connection Observable ended: recovery gave up
 * or the connection was closed). The message was not sent (except, with `republish`, an earlier copy
 * published before a connection was lost, which the broker may have kept).
 *
 * @example
 * ```ts
 * publisher.publish('', 'jobs', 'x').subscribe({
 *   error: (e) => e instanceof PublisherError && e.code === 'BUFFER_TIMEOUT' && console.warn('broker down'),
 * });
 * ```
 */
export class PublisherError extends AmqpError<PublisherErrorCode> {
  constructor(code: PublisherErrorCode, message: string, cause?: unknown) {
    super(code, message, cause === undefined ? undefined : { cause });
  }
}

/**
 * Thrown for a confirm the broker should never send: a delivery tag that was never published, or a
 * single confirm of a publish already confirmed. The client turns it into a protocol error: it closes
 * the connection with 503, and the application sees a `ConnectionClosedError` coded `PROTOCOL_ERROR`.
 *
 * @example
 * ```ts
 * try {
 *   smoother.ack(frame.deliveryTag, frame.multiple);
 * } catch (e) {
 *   if (e instanceof ConfirmTagError) connectionProtocolError(503, e.message);
 *   else throw e;
 * }
 * ```
 */
export class ConfirmTagError extends AmqpError<'CONFIRM_TAG'> {
  /** The delivery tag of the offending confirm. */
  readonly deliveryTag: number;
  /** Whether the offending confirm had `multiple` set. */
  readonly multiple: boolean;

  constructor(message: string, deliveryTag: number, multiple: boolean) {
    super('CONFIRM_TAG', message);
    this.deliveryTag = deliveryTag;
    this.multiple = multiple;
  }
}

/** True when a reply code closes the whole connection (a hard error). Re-exported for convenience. */
export { isHardError };

/**
 * @internal True when `error` (or an error it was caused by) is the loss of a connection: a
 * `ConnectionClosedError` the client did not cause.
 */
export function causedByConnectionLoss(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    if (e instanceof ConnectionClosedError) return e.initiator !== 'client';
    e = e.cause;
  }
  return false;
}

/**
 * `brokerForTests` (`rxamqp/testing`) found no broker: `AMQP_URL` was not set, nothing answered at the
 * local address, no Docker daemon answered for testcontainers (or starting the container failed, see
 * `cause`), and the embedded broker was not allowed as a fallback. The message says how to get one.
 *
 * @example
 * ```ts
 * brokerForTests().catch((e) => { if (e instanceof NoBrokerError) console.error(e.message); });
 * ```
 */
export class NoBrokerError extends AmqpError<'NO_BROKER'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NO_BROKER', message, options);
  }
}

/**
 * A `consume()` or a publish attempted while its connection or publisher is draining (see
 * `Connection.drain` and `Publisher.drain`): nothing was sent. A drain refuses new consumers from its
 * start, and new publishes once the deliveries handed out have been settled (until then the handlers
 * finishing them may still publish), or from its start with `publishes: 'refuse'`.
 *
 * @example
 * ```ts
 * ch.publish('', 'jobs', 'x').subscribe({
 *   error: (e) => { if (e instanceof DrainingError) log.info('shutting down: not published'); },
 * });
 * ```
 */
export class DrainingError extends AmqpError<'DRAINING'> {
  constructor(message: string) {
    super('DRAINING', message);
  }
}

/**
 * An error of `rxamqp/mq`, the queue interface over AMQP and MQTT: `MQ_NOT_A_SENDER` /
 * `MQ_NOT_A_RECEIVER` (a queue used in the role it was not made for), `MQ_SEND_FAILED` (a message was
 * not sent or not taken: a nack, a return, a best-effort send while disconnected, the connection
 * closed before the broker answered; `cause` says which), `MQ_CLOSED` (the connection is closed: by
 * the client, or its retries ran out), `MQ_BACKEND_MISSING` (an `mqtt://` URL
 * without the optional `mqtt` package installed), `MQ_CONNECTION` (a connection error of the MQTT
 * backend, on `errors$`; `cause` holds mqtt.js's error). Invalid names and options are
 * `ConfigurationError`s.
 *
 * @example
 * ```ts
 * queue.send('hello').subscribe({
 *   error: (e) => { if (e instanceof MqError && e.code === 'MQ_SEND_FAILED') log.warn(e.message); },
 * });
 * ```
 */
export class MqError extends AmqpError<MqErrorCode> {
  constructor(code: MqErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
