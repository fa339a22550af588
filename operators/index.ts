/**
 * `rxamqp/operators`: the RxJS operators users pipe deliveries and publishes through (settling,
 * concurrency, ack batching, decoding, confirm windows). One operator per file, each exported here.
 *
 * @example
 * ```ts
 * import { ackOnSuccess } from 'rxamqp/operators';
 *
 * channel.consume('orders', { prefetch: 20 }).pipe(
 *   ackOnSuccess((d) => handle(d.json()), { concurrency: 10 }),
 * ).subscribe();
 * ```
 *
 * @module
 */
export { ackAll } from './ackAll.js';
export {
  type AckOnSuccessOptions,
  ackOnSuccess,
  DEFAULT_MAX_DELIVERIES,
  type FailurePolicy,
  type HandlerResult,
} from './ackOnSuccess.js';
export { type AnswerRequestsOptions, answerRequests } from './answerRequests.js';
export { type BatchAckOptions, batchAck } from './batchAck.js';
export { type DecodedJson, type DecodeJsonOptions, decodeJson } from './decodeJson.js';
export { type NackAllOptions, nackAll } from './nackAll.js';
export {
  type NackPolicy,
  type OutgoingMessage,
  type PublishConfirmedOptions,
  type PublishResult,
  publishConfirmed,
} from './publishConfirmed.js';
export { type RejectAllOptions, rejectAll } from './rejectAll.js';
export {
  type ResumeOnConsumerTimeoutOptions,
  resumeOnConsumerTimeout,
} from './resumeOnConsumerTimeout.js';
export { type RetryOutcome, type RetryWithDelayOptions, retryWithDelay } from './retryWithDelay.js';
