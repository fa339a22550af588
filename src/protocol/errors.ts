/**
 * Errors raised by the pure codec. Every failure to decode bytes from the wire or to encode a value for
 * it surfaces as one of these classes, never as an exception from Buffer internals.
 *
 * @module
 */

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

/**
 * Base class of every error rxamqp raises. `code` is a stable machine-readable string.
 *
 * @example
 * ```ts
 * try { decoder.push(bytes); } catch (e) { if (e instanceof AmqpError) console.error(e.code); }
 * ```
 */
export class AmqpError extends Error {
  /** A stable, machine-readable code such as `FRAME_TOO_LARGE`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * Raised by {@link FrameDecoder} when the bytes from the peer do not form valid AMQP 0-9-1 frames.
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
export class FrameError extends AmqpError {
  /** The AMQP reply code for the connection.close this error calls for. */
  readonly replyCode: number;
  /** The channel of the offending frame, when it was known. */
  readonly channel: number | undefined;

  constructor(replyCode: number, code: string, message: string, channel?: number) {
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
export class EncodeError extends AmqpError {}
