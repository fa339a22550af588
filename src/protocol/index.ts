/**
 * The pure AMQP 0-9-1 codec: spec-generated methods, content-header properties, field tables, the
 * incremental frame decoder and the pooled frame writer. No sockets, timers or RxJS.
 *
 * @module
 */

/** The error beside a message whose headers table was skipped (see `FrameHandler.onContent`). */
export {
  AmqpError,
  COMMAND_INVALID,
  ConfigurationError,
  EncodeError,
  FRAME_ERROR,
  FrameError,
  HeadersDecodeError,
  SYNTAX_ERROR,
  UNEXPECTED_FRAME,
} from '../errors.js';
export {
  Decimal,
  FIELD_TYPES,
  type FieldTable,
  type FieldType,
  type FieldTypeMap,
  type FieldValue,
  field,
  fieldTypesOf,
  TypedField,
} from './field-table.js';
export {
  type ContentMethod,
  DEFAULT_MAX_BODY_SIZE,
  FrameDecoder,
  type FrameDecoderOptions,
  type FrameHandler,
} from './frame-decoder.js';
export { FrameWriter, type FrameWriterOptions } from './frame-writer.js';
export * from './generated.js';
export { MAX_TABLE_DEPTH } from './reader.js';
