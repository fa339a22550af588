/**
 * The typed errors of the client. Every failure a user can see is one of these classes (or a codec
 * {@link FrameError} / {@link EncodeError}), carrying the protocol data that explains it. None of them
 * ever includes a password or other secret in its message, its properties or its `inspect` output.
 *
 * @module
 */
import { AmqpError } from './protocol/errors.js';
import { isHardError, REPLY_CODES } from './protocol/generated.js';

export { AmqpError, EncodeError, FrameError } from './protocol/errors.js';

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
export class ConnectionClosedError extends AmqpError {
  /** The reply code of the close, when there was a close method (or a FrameError's code). */
  readonly replyCode: number | undefined;
  readonly replyText: string | undefined;
  readonly classId: number | undefined;
  readonly methodId: number | undefined;
  readonly initiator: CloseInitiator;

  constructor(
    code: string,
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
export class ChannelClosedError extends AmqpError {
  readonly channel: number;
  readonly replyCode: number | undefined;
  readonly replyText: string | undefined;
  readonly classId: number | undefined;
  readonly methodId: number | undefined;
  readonly initiator: CloseInitiator;
  /** Where the channel was closed (a stack trace), for errors raised by later use of the channel. */
  readonly closedAt: string | undefined;

  constructor(
    code: string,
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
export class PublishNackedError extends AmqpError {
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
export class PublishBlockedError extends AmqpError {
  /** The broker's reason for blocking (e.g. `low on memory`), when it gave one. */
  readonly reason: string | undefined;

  constructor(code: 'CONNECTION_BLOCKED' | 'BLOCKED_TIMEOUT', message: string, reason: string | undefined) {
    super(code, message);
    this.reason = reason;
  }
}

/**
 * The broker cancelled a consumer: its queue was deleted, or (for classic mirrored queues) it failed
 * over, and the broker told the client with basic.cancel (consumer_cancel_notify). The delivery stream
 * of that consumer errors with this; the channel stays open.
 *
 * @example
 * ```ts
 * ch.consume('jobs').subscribe({
 *   error: (e) => e instanceof ConsumerCancelledError && console.log(`consumer ${e.consumerTag} was cancelled`),
 * });
 * ```
 */
export class ConsumerCancelledError extends AmqpError {
  readonly consumerTag: string;
  readonly queue: string;

  constructor(consumerTag: string, queue: string) {
    super(
      'CONSUMER_CANCELLED',
      `the broker cancelled consumer ${consumerTag} of queue ${queue} (was the queue deleted?)`,
    );
    this.consumerTag = consumerTag;
    this.queue = queue;
  }
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
export class AuthenticationError extends AmqpError {
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
export class ConfigurationError extends AmqpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_CONFIGURATION', message, options);
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
